"""What to measure: a sweep over models and quant variants × GPU layers × threads, and the tests
(pp / tg / depth / chat) run in each configuration.

`SweepSpec` is what a user asks for; `plan_llama_sweep` / `plan_ollama_sweep` turn it into
concrete configurations, resolving model names and quant variants through the catalog and
refusing bad input with `SweepInputError` (one line, meant for the user).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lollma_tui.core.bench.protocol import BenchTest
from lollma_tui.core.models.catalog import (
    Catalog,
    ModelGroup,
    ModelVariant,
    UnreadableModel,
    default_model_dirs,
    scan_models,
)
from lollma_tui.core.models.gguf_header import GGUFError, GGUFHeader, read_gguf_header
from lollma_tui.core.models.quant_types import normalize_quant
from lollma_tui.core.paths import exists, user_path
from lollma_tui.core.settings import AUTO, MAX_THREADS, REPACK_CHOICES, BackendKind

DEFAULT_QUESTION = "explain quantum entanglement"
DEFAULT_CHAT_TOKENS = 128
DEFAULT_N_PROMPT = 512
DEFAULT_N_GEN = 128
DEFAULT_REPETITIONS = 5
"""llama-bench's defaults for -p, -n and -r."""
LLAMA_DEFAULT_BATCH = 2048
"""llama-bench's -b default; Ollama's own default (512) is kept for Ollama runs."""
OLLAMA_DEFAULT_BATCH = 512

GpuLayersChoice = int | Literal["auto"]
"""A layer count, -1 for all layers, or "auto" (the most that fit in free memory)."""


class SweepInputError(ValueError):
    """Bad input (a missing or unreadable model, an unknown quant): one line for the user."""


@dataclass(frozen=True, slots=True)
class SweepSpec:
    models: tuple[str, ...]
    """GGUF paths or names (llama.cpp), or tags (Ollama)."""
    quants: tuple[str, ...] | Literal["all"] | None = None
    """None: the given file or tag only; "all": every variant found; or a list ("Q4_K_M")."""
    gpu_layers: tuple[GpuLayersChoice, ...] = (AUTO,)
    threads: tuple[int, ...] | None = None
    """None: physical cores (llama.cpp), the server's choice (Ollama)."""
    n_prompt: tuple[int, ...] = (DEFAULT_N_PROMPT,)
    n_gen: tuple[int, ...] = (DEFAULT_N_GEN,)
    n_depth: tuple[int, ...] = (0,)
    repetitions: int = DEFAULT_REPETITIONS
    n_batch: int | None = None
    n_ubatch: int = 512
    flash_attn: bool = False
    kv_cache_type: str = "f16"
    """llama.cpp's K and V cache type (f16, q8_0, q4_0, f32)."""
    repack: tuple[str, ...] = ("auto",)
    """llama.cpp's repacked weights per configuration: auto, on, off (a list sweeps them)."""
    chat: bool = True
    question: str = DEFAULT_QUESTION
    chat_tokens: int | None = None
    """Reply length for the chat test; default: the first -n value, else 128."""
    backend: BackendKind = BackendKind.LLAMA_CPP
    ollama_host: str | None = None
    openai_base_url: str | None = None
    openai_api_key_env: str | None = None
    model_dirs: tuple[Path, ...] = ()
    """Searched before the default model folders."""
    warmup: bool = True
    check_fit: bool = True
    """Skip configurations the fit estimator says cannot fit in free memory."""
    seed: int = 1

    def validate(self) -> None:
        if not self.models:
            raise SweepInputError("no model given")
        if self.quants == ():
            raise SweepInputError("--quants: name at least one quantization (Q4_K_M,Q8_0), or all")
        if self.repetitions < 1:
            raise SweepInputError(f"repetitions must be 1 or more, not {self.repetitions}")
        for name, values in (("-p", self.n_prompt), ("-n", self.n_gen), ("-d", self.n_depth)):
            if any(v < 0 for v in values):
                raise SweepInputError(f"{name} values must be 0 or more")
        if self.threads is not None and any(not 1 <= t <= MAX_THREADS for t in self.threads):
            raise SweepInputError(f"thread counts must be between 1 and {MAX_THREADS}")
        for layers in self.gpu_layers:
            if layers != AUTO and (not isinstance(layers, int) or layers < -1):
                raise SweepInputError(f"GPU layers must be a count, -1 (all) or auto, not {layers!r}")
        if not self.gpu_layers:
            raise SweepInputError("no GPU layer count given")
        bad = [r for r in self.repack if r not in REPACK_CHOICES]
        if bad or not self.repack:
            given = ", ".join(bad) or "nothing"
            raise SweepInputError(f"--repack takes {', '.join(REPACK_CHOICES)}, not {given}")
        if (self.n_batch is not None and self.n_batch < 1) or self.n_ubatch < 1:
            raise SweepInputError("batch sizes must be 1 or more")
        if not self.tests() and not self.chat:
            raise SweepInputError("nothing to measure: every -p and -n is 0 and the chat test is off")
        if self.chat and not self.question.strip():
            raise SweepInputError("the chat question is empty")
        if self.chat_tokens is not None and self.chat_tokens < 2:
            raise SweepInputError("the chat reply needs 2 tokens or more to give a speed")
        if self.backend == BackendKind.OPENAI and not self.chat:
            raise SweepInputError(
                "an OpenAI-compatible server is measured by the chat test only (TTFT, tok/s): drop --no-chat"
            )
        if self.backend == BackendKind.OLLAMA and any(self.n_depth):
            raise SweepInputError(
                "-d is not available with Ollama: there is no raw-token API, so the prompt is the depth"
            )

    @property
    def batch(self) -> int:
        if self.n_batch is not None:
            return self.n_batch
        return OLLAMA_DEFAULT_BATCH if self.backend == BackendKind.OLLAMA else LLAMA_DEFAULT_BATCH

    @property
    def reply_tokens(self) -> int:
        if self.chat_tokens is not None:
            return self.chat_tokens
        return next((g for g in self.n_gen if g > 1), DEFAULT_CHAT_TOKENS)

    def tests(self) -> tuple[BenchTest, ...]:
        """llama-bench's order: every pp test at every depth, then every tg test."""
        if self.backend == BackendKind.OPENAI:
            return ()  # no raw-token API: the chat row is all there is
        found: list[BenchTest] = []
        for depth in dict.fromkeys(self.n_depth):
            found += [BenchTest(n_prompt=p, n_depth=depth) for p in dict.fromkeys(self.n_prompt) if p > 0]
        for depth in dict.fromkeys(self.n_depth):
            found += [BenchTest(n_gen=g, n_depth=depth) for g in dict.fromkeys(self.n_gen) if g > 0]
        return tuple(found)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """One file (llama.cpp) or tag (Ollama) to benchmark."""

    ref: str
    name: str
    quant: str
    size_bytes: int
    header: GGUFHeader | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"{self.name} {self.quant}".strip()


@dataclass(frozen=True, slots=True)
class Configuration:
    """One fresh worker: a model file at a GPU layer count and thread count."""

    model: ModelChoice
    gpu_layers: GpuLayersChoice
    threads: int | None
    repack: str = "auto"
    on_server: bool = False
    """The server's own flags set layers and threads (an OpenAI-compatible server)."""

    def label(self, resolved_layers: int | None = None) -> str:
        if self.on_server:
            return self.model.label
        layers = gpu_layers_label(self.gpu_layers) if resolved_layers is None else resolved_layers
        threads = ""
        if self.threads:
            threads = f" · {self.threads} thread{'s' if self.threads != 1 else ''}"
        repack = f" · repack {self.repack}" if self.repack != "auto" else ""
        return f"{self.model.label} · ngl {layers}{threads}{repack}"


def gpu_layers_label(choice: GpuLayersChoice) -> str:
    """How a GPU-layers choice is written: "auto", "all" (-1), or the count."""
    if choice == AUTO:
        return "auto"
    return "all" if choice == -1 else str(choice)


@dataclass(frozen=True, slots=True)
class SweepPlan:
    spec: SweepSpec
    configurations: tuple[Configuration, ...]
    tests: tuple[BenchTest, ...]

    @property
    def steps_per_configuration(self) -> int:
        """Timed runs: each test's repetitions, plus the chat test's."""
        per_test = len(self.tests) * self.spec.repetitions
        if self.spec.backend == BackendKind.OLLAMA:
            # One request measures a pp and a tg figure at once.
            per_test = len(ollama_pairs(self.spec)) * self.spec.repetitions
        return per_test + (self.spec.repetitions if self.spec.chat else 0)

    @property
    def total_steps(self) -> int:
        return len(self.configurations) * self.steps_per_configuration


def ollama_pairs(spec: SweepSpec) -> tuple[tuple[int, int], ...]:
    """(prompt tokens, tokens to generate) per Ollama request set; one request gives both figures."""
    prompts = [p for p in dict.fromkeys(spec.n_prompt)] or [0]
    gens = [g for g in dict.fromkeys(spec.n_gen)] or [0]
    pairs = [(p, g) for p in prompts for g in gens if p > 0 or g > 0]
    return tuple(pairs)


def default_thread_count() -> int:
    from lollma_tui.core.backends.llamacpp_worker import default_threads

    return default_threads()


def _configurations(spec: SweepSpec, models: Sequence[ModelChoice]) -> tuple[Configuration, ...]:
    threads: tuple[int | None, ...]
    if spec.threads:
        threads = tuple(dict.fromkeys(spec.threads))
    elif spec.backend == BackendKind.LLAMA_CPP:
        threads = (default_thread_count(),)
    else:
        threads = (None,)
    # Ollama decides repacking for itself: one configuration, not one per value.
    repacks = tuple(dict.fromkeys(spec.repack)) if spec.backend == BackendKind.LLAMA_CPP else ("auto",)
    return tuple(
        Configuration(model, layers, count, repack)
        for model in models
        for layers in dict.fromkeys(spec.gpu_layers)
        for count in threads
        for repack in repacks
    )


# --- llama.cpp: files ------------------------------------------------------------------------


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _looks_like_path(ref: str) -> bool:
    return ref.lower().endswith(".gguf") or "/" in ref or "\\" in ref or exists(user_path(ref))


def _read_header(path: Path) -> GGUFHeader:
    if not path.is_file():
        raise SweepInputError(f"model not found: {path}")
    try:
        return read_gguf_header(path)
    except GGUFError as error:
        raise SweepInputError(str(error)) from None
    except OSError as error:
        raise SweepInputError(f"cannot read {path}: {error.strerror or error}") from None


def _choice(group: ModelGroup, variant: ModelVariant) -> ModelChoice:
    assert variant.path is not None
    header = variant.header or _read_header(variant.path)
    return ModelChoice(str(variant.path), group.name, variant.quant, variant.size_bytes, header)


def _pick_variants(
    group: ModelGroup,
    start: ModelVariant | None,
    quants: tuple[str, ...] | Literal["all"] | None,
    unreadable: Sequence[UnreadableModel] = (),
) -> list[ModelVariant]:
    """The variants to measure; `unreadable`: the scan's broken files, said where one of them
    is this model's (it was left out of `--quants all` without a word, or "no Q4_0 file")."""
    broken = _broken_siblings(group, unreadable)
    if quants == "all":
        if broken:
            names = "; ".join(f"{b.path.name}: {b.reason}" for b in broken)
            raise SweepInputError(f"cannot read {names} — --quants picks the others")
        return list(group.variants)
    if quants is None:
        if start is not None:
            return [start]
        if len(group.variants) == 1:
            return [group.variants[0]]
        have = ", ".join(group.quants)
        raise SweepInputError(
            f"{group.name} comes in {len(group.variants)} quantizations ({have}); "
            "pick with --quants Q4_K_M,… or --quants all"
        )
    picked: list[ModelVariant] = []
    for quant in quants:
        variant = group.variant(quant)
        if variant is None:
            wanted = normalize_quant(quant) or quant
            for bad in broken:
                if _squash(wanted) in _squash(bad.path.name):
                    raise SweepInputError(f"cannot read {bad.path.name}: {bad.reason}")
            raise SweepInputError(f"{group.name} has no {wanted} file (found: {', '.join(group.quants)})")
        picked.append(variant)
    return picked


def _broken_siblings(group: ModelGroup, unreadable: Sequence[UnreadableModel]) -> list[UnreadableModel]:
    """Unreadable files beside the group's own and named like it."""
    folders = {path.parent for variant in group.variants for path in variant.paths}
    name = _squash(group.name)
    return [u for u in unreadable if u.path.parent in folders and name and name in _squash(u.path.name)]


def _extra_files() -> list[Path]:
    from lollma_tui.core.models.demo import DEMOS, demo_model_path, demo_model_ready

    return [demo_model_path(demo) for demo in DEMOS.values() if demo_model_ready(demo)]


def resolve_llama_models(spec: SweepSpec, *, search_dirs: Iterable[Path] | None = None) -> list[ModelChoice]:
    """Files for each model reference, with their quant variants when asked for.

    A path is checked (it must be a readable GGUF) and its folder is searched for its siblings
    in other quantizations; a name is looked up in `spec.model_dirs` and the default folders.
    """
    chosen: list[ModelChoice] = []
    by_name: Catalog | None = None
    for ref in spec.models:
        if _looks_like_path(ref):
            path = user_path(ref).absolute()  # the bench worker runs in another folder
            header = _read_header(path)
            if spec.quants is None:
                chosen.append(
                    ModelChoice(
                        str(path), header.name or path.stem, header.quantization, header.file_size, header
                    )
                )
                continue
            catalog = scan_models([path.parent, *spec.model_dirs], [path])
            found = catalog.find(path)
            if found is None:
                raise SweepInputError(f"could not read {path} as a model")
            group, variant = found
            picked = _pick_variants(group, variant, spec.quants, catalog.unreadable)
            chosen += [_choice(group, v) for v in picked]
            continue
        if by_name is None:
            dirs = list(search_dirs) if search_dirs is not None else [*spec.model_dirs, *default_model_dirs()]
            by_name = scan_models(dirs, _extra_files())
        group, start = _find_by_name(by_name, ref)
        chosen += [_choice(group, v) for v in _pick_variants(group, start, spec.quants, by_name.unreadable)]
    # The same file asked for twice is measured once.
    unique = {c.ref: c for c in chosen}
    return list(unique.values())


def _find_by_name(catalog: Catalog, name: str) -> tuple[ModelGroup, ModelVariant | None]:
    needle = _squash(name)
    if not needle:
        raise SweepInputError(f"not a model name: {name!r}")
    groups: list[tuple[ModelGroup, list[ModelVariant]]] = []
    for group in catalog.groups:
        files = [v for v in group.variants if any(needle in _squash(p.name) for p in v.paths)]
        if files or needle in _squash(group.name):
            groups.append((group, files))
    if not groups:
        raise SweepInputError(f"model not found: {name} (no GGUF named like it in the model folders)")
    if len(groups) > 1:
        names = ", ".join(g.name for g, _ in groups[:5])
        raise SweepInputError(f"{name!r} matches {len(groups)} models: {names}; give a path instead")
    group, files = groups[0]
    return group, files[0] if len(files) == 1 else None


def plan_llama_sweep(spec: SweepSpec, *, search_dirs: Iterable[Path] | None = None) -> SweepPlan:
    spec.validate()
    models = resolve_llama_models(spec, search_dirs=search_dirs)
    return SweepPlan(spec, _configurations(spec, models), spec.tests())


# --- Ollama: tags ----------------------------------------------------------------------------


def resolve_ollama_models(
    spec: SweepSpec, installed: Sequence[tuple[str, int, str, str, str, str]]
) -> list[ModelChoice]:
    """Tags for each model reference; `installed` is /api/tags as (name, size, digest, family,
    parameter size, quantization) rows."""
    from lollma_tui.core.models.ollama_tags import group_ollama_models

    records = [
        {
            "name": name,
            "size": size,
            "digest": digest,
            "details": {"family": family, "parameter_size": params, "quantization_level": quant},
        }
        for name, size, digest, family, params, quant in installed
    ]
    catalog = group_ollama_models(records)
    chosen: list[ModelChoice] = []
    for ref in spec.models:
        found = catalog.find(ref)
        if found is None:
            names = ", ".join(name for name, *_ in installed[:6]) or "none"
            raise SweepInputError(f"Ollama has no model {ref} (installed: {names})")
        group, variant = found
        for picked in _pick_variants(group, variant, spec.quants):
            tag = ref if picked is variant and spec.quants is None else picked.ref
            chosen.append(ModelChoice(tag, group.name, picked.quant, picked.size_bytes))
    unique = {c.ref: c for c in chosen}
    return list(unique.values())


def plan_ollama_sweep(spec: SweepSpec, models: Sequence[ModelChoice]) -> SweepPlan:
    return SweepPlan(spec, _configurations(spec, models), spec.tests())


def plan_openai_sweep(spec: SweepSpec, models: Sequence[ModelChoice]) -> SweepPlan:
    """One configuration per model id: the server fixes everything else."""
    return SweepPlan(spec, tuple(Configuration(m, AUTO, None, on_server=True) for m in models), ())

"""Step one of a swap: will the target fit, and what does "auto" GPU layers mean right now?

Pure: the caller reads the GGUF header and the free memory; this decides. llama-cpp-python has
no automatic layer fitting (reference/backends.md §C.2), so "auto" is resolved here with our own
estimator; Ollama fits models itself, and an OpenAI-compatible server's memory cannot be seen
from here, so their targets pass through untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lollma_tui.core import formatting as fmt
from lollma_tui.core.backends.base import LoadedModel
from lollma_tui.core.backends.describe import model_label
from lollma_tui.core.models.catalog import HeaderCache, load_problem
from lollma_tui.core.models.fit import (
    FitParams,
    FitStatus,
    MemoryEstimate,
    auto_gpu_layers,
    check_fit,
    estimate_memory,
    memory_profile,
)
from lollma_tui.core.models.gguf_header import GGUFError, GGUFHeader
from lollma_tui.core.paths import user_path
from lollma_tui.core.session.budget import MemoryBudget
from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings

CPU_ONLY_BUILD_NOTE = (
    "this llama.cpp build is CPU-only: GPU layers are ignored and every layer runs on the CPU"
)


@dataclass(frozen=True, slots=True)
class LoadPlan:
    requested: LoadSettings
    settings: LoadSettings
    """What the backend is given: "auto" GPU layers resolved to a count where memory is known."""
    estimate: MemoryEstimate | None = None
    """Predicted memory for `settings` (llama.cpp targets only)."""
    notes: tuple[str, ...] = ()
    refusal: str | None = None
    """Why loading is pointless (does not fit, unreadable file); None when it may go ahead."""
    short_of_memory: bool = False
    """Refused because the estimate does not fit the free memory, which an estimate may get
    wrong (/force loads it anyway)."""
    unreadable: bool = False
    """Refused because the file is not a GGUF that can be loaded (damaged, cut short, gone)."""

    @property
    def go(self) -> bool:
        return self.refusal is None


_WHAT_TO_CHOOSE: dict[BackendKind, str] = {
    BackendKind.LLAMA_CPP: "a GGUF file",
    BackendKind.OLLAMA: "an Ollama model",
}


def target_label(settings: LoadSettings) -> str:
    """How a target is named in messages: a GGUF's file name, a server's model id as it is
    shown (`describe.model_label`)."""
    if settings.backend is BackendKind.LLAMA_CPP:
        return Path(settings.model).name or "(no model)"
    return model_label(settings.model.strip()) or "(no model)"


def expand_home(settings: LoadSettings) -> LoadSettings:
    """`settings` with a llama.cpp model path's "~" expanded: no shell is there to do it."""
    if settings.backend is BackendKind.LLAMA_CPP and settings.model.startswith("~"):
        return settings.with_changes(model=os.path.expanduser(settings.model))
    return settings


OLLAMA_PLACES_NOTE = (
    "GPU layers: Ollama places them (the 0 came with the CPU-only llama.cpp build;"
    " /ngl 0 keeps the model on the CPU)"
)


def layers_for_ollama(
    target: LoadSettings, current: BackendKind, gpu_offload: bool | None
) -> tuple[LoadSettings, tuple[str, ...]]:
    """`target`, moving from a llama.cpp built for the CPU only to Ollama: its 0 GPU layers were
    no choice, so Ollama places the layers itself, as when the app starts on it; and the note
    that says so (the drawer showed 0, and nothing said it was not what loaded)."""
    from_cpu_only = current is BackendKind.LLAMA_CPP and gpu_offload is False
    if target.backend is BackendKind.OLLAMA and from_cpu_only and target.n_gpu_layers == 0:
        return target.with_changes(n_gpu_layers=AUTO), (OLLAMA_PLACES_NOTE,)
    return target, ()


def looks_like_gguf_path(model: str) -> bool:
    text = model.strip()
    return text.lower().endswith(".gguf") or text.startswith(("/", "./", "~"))


def plan_load(
    requested: LoadSettings,
    header: GGUFHeader | GGUFError | None,
    budget: MemoryBudget | None,
    *,
    gpu_offload: bool | None = None,
) -> LoadPlan:
    """Decide how to load `requested`.

    `header` is the target GGUF's header (or why it could not be read; None for Ollama),
    `budget` the free memory once the current model is unloaded (None: unknown, nothing is
    checked), `gpu_offload` whether the llama.cpp build can offload (None: not known yet).
    """
    if requested.backend is BackendKind.OPENAI:
        # The server's memory is not visible from here: no fit check, nothing to resolve. An
        # empty model id is the backend's to settle (a server with one model serves that one).
        return LoadPlan(requested, requested, notes=("fit not checked: the model runs on the server",))
    if not requested.model.strip():
        what = _WHAT_TO_CHOOSE[requested.backend]
        return LoadPlan(requested, requested, refusal=f"choose {what} first (/model NAME)")
    if requested.backend is BackendKind.OLLAMA:
        if looks_like_gguf_path(requested.model):
            return LoadPlan(
                requested,
                requested,
                refusal=(
                    f"{requested.model} is a file; Ollama loads installed models by name "
                    "(e.g. llama3.2:1b). Use /backend llama.cpp for GGUF files"
                ),
            )
        return LoadPlan(requested, requested)
    if isinstance(header, GGUFError):
        return LoadPlan(
            requested, requested, refusal=f"{target_label(requested)}: {header.reason}", unreadable=True
        )
    if header is None:
        return LoadPlan(requested, requested, notes=("the GGUF header was not read: fit not checked",))
    return _plan_gguf(requested, header, budget, gpu_offload)


def _plan_gguf(
    requested: LoadSettings, header: GGUFHeader, budget: MemoryBudget | None, gpu_offload: bool | None
) -> LoadPlan:
    profile = memory_profile(header)
    cpu_only_build = gpu_offload is False
    notes: list[str] = []
    settings = requested
    if cpu_only_build and requested.n_gpu_layers != 0:
        # Every layer runs on the CPU whatever is asked: planned as what will load, a change of
        # GPU layers alone reloads nothing.
        settings = requested.with_changes(n_gpu_layers=0)
        if requested.n_gpu_layers != AUTO:
            notes.append(CPU_ONLY_BUILD_NOTE)
    if budget is None:
        params = FitParams.from_settings(settings)
        if settings.n_gpu_layers == AUTO:
            # Unknown memory: leave "auto" to the worker and estimate the CPU-only case.
            params = FitParams.from_settings(settings, n_gpu_layers=0)
        notes.append("free memory unknown: fit not checked")
        estimate = estimate_memory(profile, params)
        refusal = _known_load_failure(settings)
        return LoadPlan(requested, settings, estimate, tuple(notes) + estimate.notes, refusal)

    free_vram = None if cpu_only_build else budget.free_vram
    if settings.n_gpu_layers == AUTO:
        layers = auto_gpu_layers(profile, FitParams.from_settings(settings), free_vram, budget.free_ram)
        if layers is None:
            # Nothing fits even on the CPU alone: say by how much, at 0 layers.
            verdict = check_fit(
                profile, FitParams.from_settings(settings, n_gpu_layers=0), None, budget.free_ram
            )
            return LoadPlan(
                requested,
                settings,
                verdict.estimate,
                verdict.notes,
                _shortfall_text(verdict.estimate, budget),
                short_of_memory=True,
            )
        settings = settings.with_changes(n_gpu_layers=layers)
        notes.append(_auto_note(layers, profile.n_layer, free_vram))

    params = FitParams.from_settings(settings)
    verdict = check_fit(profile, params, free_vram, budget.free_ram)
    notes.extend(verdict.notes)
    if verdict.status is FitStatus.FITS:
        refusal = _known_load_failure(settings)
        return LoadPlan(requested, settings, verdict.estimate, tuple(notes), refusal)
    asked = estimate_memory(profile, params)
    reason = _shortfall_text(asked, MemoryBudget(budget.free_ram, free_vram))
    if verdict.status is FitStatus.FITS_WITH_LAYERS:
        count = "all" if verdict.gpu_layers > profile.n_layer else str(verdict.gpu_layers)
        reason += f"; it {verdict.message} (/ngl {count} or /ngl auto)"
    return LoadPlan(requested, settings, asked, tuple(notes), reason, short_of_memory=True)


def _auto_note(layers: int, n_layer: int, free_vram: int | None) -> str:
    if free_vram is None:
        return "auto GPU layers → 0 (no GPU)"
    if layers > n_layer:
        return f"auto GPU layers → all {n_layer + 1} (the model fits in VRAM)"
    return f"auto GPU layers → {layers} of {n_layer + 1} (what fits in {fmt.size(free_vram)} free VRAM)"


def _shortfall_text(estimate: MemoryEstimate, budget: MemoryBudget) -> str:
    parts = []
    if budget.free_vram is not None and estimate.n_gpu_layers and estimate.vram_total > budget.free_vram:
        parts.append(
            f"VRAM short by {fmt.size(estimate.vram_total - budget.free_vram)} "
            f"(needs {fmt.size(estimate.vram_total)}, {fmt.size(budget.free_vram)} free)"
        )
    if budget.free_ram is not None and estimate.ram_total > budget.free_ram:
        parts.append(
            f"RAM short by {fmt.size(estimate.ram_total - budget.free_ram)} "
            f"(needs {fmt.size(estimate.ram_total)}, {fmt.size(max(0, budget.free_ram))} free)"
        )
    text = "does not fit: " + ", ".join(parts) if parts else "does not fit"
    kv = estimate.gpu_kv + estimate.cpu_kv
    weights = estimate.gpu_weights + estimate.cpu_weights_mapped + estimate.cpu_weights_loaded
    if kv > weights:
        # 206 GiB for a 135M model, said with nothing else, read as a broken estimate.
        text += f" · most of it is the KV cache for ctx {estimate.n_ctx} ({fmt.size(kv)}): /ctx N lowers it"
    return text


def _known_load_failure(settings: LoadSettings) -> str | None:
    # llama.cpp refuses a quantized V cache without flash attention when it builds the context,
    # after reading the whole model: cheaper to say so now.
    if settings.kv_cache_type not in ("f16", "f32") and not settings.flash_attn:
        return f"kv_cache_type {settings.kv_cache_type} needs flash attention (/set flash_attn on)"
    return None


def reclaimable_memory(header: GGUFHeader | GGUFError, loaded: LoadedModel) -> tuple[int, int]:
    """(RAM, VRAM) a loaded model frees when it is unloaded, as far as we can tell.

    Only llama.cpp's, whose worker is ours and exits on unload (nothing for a server's model or
    an unreadable header). Mapped weights are left out: they are page cache, which free-RAM
    figures count as available.
    """
    if isinstance(header, GGUFError) or loaded.settings.backend is not BackendKind.LLAMA_CPP:
        return 0, 0
    params = FitParams.from_settings(loaded.settings, n_gpu_layers=loaded.n_gpu_layers)
    estimate = estimate_memory(header, params)
    return estimate.ram_total - estimate.cpu_weights_mapped, estimate.vram_total


def notes_after_load(loaded: LoadedModel, plan: LoadPlan) -> list[str]:
    """The loaded model's own notes, and the CPU-only build's when GPU layers were asked for."""
    notes = list(loaded.notes)
    if (
        loaded.settings.backend is BackendKind.LLAMA_CPP
        and not loaded.gpu_offload_supported
        and plan.settings.n_gpu_layers != 0
    ):
        notes.append(CPU_ONLY_BUILD_NOTE)
    return notes


def read_header(headers: HeaderCache, model: str) -> GGUFHeader | GGUFError:
    """The model file's header (cached), or why it cannot be read."""
    path = user_path(model)
    try:
        header = headers.read(path)
    except GGUFError as error:
        return error
    except OSError as error:
        return GGUFError(path, f"cannot read: {error.strerror or error}")
    problem = load_problem(path, headers)
    return header if problem is None else GGUFError(path, problem)

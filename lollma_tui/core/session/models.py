"""Picking a model or a quantization by name, against a catalog of GGUF files or Ollama tags.

Pure functions over `Catalog`; the session builds the catalog for the active backend (a scan of
model folders for llama.cpp, `group_ollama_models` over /api/tags for Ollama).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lollma_tui.core.models.catalog import Catalog, ModelGroup, ModelVariant
from lollma_tui.core.models.gguf_header import split_parts
from lollma_tui.core.models.ollama_tags import group_ollama_models
from lollma_tui.core.models.quant_types import normalize_quant
from lollma_tui.core.paths import is_dir, is_file, user_path
from lollma_tui.core.settings import BackendKind, LoadSettings

if TYPE_CHECKING:
    from lollma_tui.core.backends.ollama_models import OllamaModel
    from lollma_tui.core.backends.openai_extras import ServedModel

_LISTED = 6
"""Candidates named in an ambiguity message before "…"."""


class ModelChoiceError(ValueError):
    """A model or quantization the user named cannot be used; the message says why and what can."""


class NoModelMatchError(ModelChoiceError):
    """Nothing in the catalog matches the name at all (a server may still know it: Ollama pulls)."""


class SkippedModelError(NoModelMatchError):
    """Only files the scan left out match the name: the message says why each is no model."""


@dataclass(frozen=True, slots=True)
class ModelChoice:
    ref: str
    """What the backend loads: a GGUF path or an Ollama tag."""
    group: ModelGroup | None
    variant: ModelVariant | None
    note: str = ""


def ollama_catalog(models: Iterable[OllamaModel]) -> Catalog:
    """Installed Ollama models (from `OllamaBackend.list_models`) grouped by quantization."""
    records: list[dict[str, Any]] = [
        {
            "model": m.name,
            "size": m.size_bytes,
            "digest": m.digest,
            "details": {
                "family": m.family,
                "parameter_size": m.parameter_size,
                "quantization_level": m.quantization,
            },
        }
        for m in models
    ]
    return group_ollama_models(records)


def openai_catalog(models: Iterable[ServedModel]) -> Catalog:
    """An OpenAI-compatible server's models (`OpenAIBackend.list_models`), one group per id.

    Servers name models freely ("qwen2.5-7b-instruct", a file path, "org/model@q4_k_m"), so
    ids are not grouped into quantizations; the quantization shown is the one the server reports
    (LM Studio) or the one the id spells.
    """
    from lollma_tui.core.backends.openai_request import quant_in_names

    groups = tuple(
        ModelGroup(
            name=model.id,
            architecture=model.architecture or "",
            parameter_label="",
            variants=(
                ModelVariant(
                    quant=model.quantization or quant_in_names(model.id) or "not reported",
                    size_bytes=0,
                    tags=(model.id,),
                ),
            ),
        )
        for model in models
    )
    return Catalog(groups)


def variant_label(variant: ModelVariant) -> str:
    """A variant's own name: its file name, or its most specific tag."""
    if variant.path is not None:
        return variant.path.name
    return variant.tags[0] if variant.tags else variant.quant


def model_names(catalog: Catalog) -> tuple[str, ...]:
    """Names a user can type after /model: each model's name and each variant's own name."""
    names: dict[str, None] = {}
    for group in catalog.groups:
        names[group.name] = None
        for variant in group.variants:
            names[variant_label(variant)] = None
    return tuple(names)


def quant_variants(catalog: Catalog, ref: str) -> tuple[ModelVariant, ...]:
    """The quantizations of `ref`'s model in `catalog` (`ref` itself included); () if unknown."""
    found = catalog.find(ref)
    return found[0].variants if found else ()


def settings_for_quant(settings: LoadSettings, quant: str, catalog: Catalog) -> LoadSettings:
    """`settings` with the model swapped for its variant in `quant` ("Q8_0", "q8_0", "fp16"…)."""
    wanted = normalize_quant(quant)
    if wanted is None:
        raise ModelChoiceError(f"{quant!r} is not a quantization name (e.g. Q4_K_M, Q8_0, F16)")
    found = catalog.find(settings.model)
    if found is None:
        where = "the model folders" if settings.backend is BackendKind.LLAMA_CPP else "Ollama's model list"
        raise ModelChoiceError(
            f"{_short(settings.model)} is not in {where}, so its other quantizations are unknown"
        )
    group, current = found
    if current.quant == wanted:
        return settings  # another copy of this quant (in another folder) is no change
    variant = group.variant(wanted)
    if variant is None:
        have = ", ".join(group.quants)
        hint = ""
        if settings.backend is BackendKind.OLLAMA:
            hint = " (/pull the tag that has it)"
        elif settings.backend is BackendKind.LLAMA_CPP:
            hint = " (/quantize makes it, best from an F16, BF16 or F32 file)"
        raise ModelChoiceError(f"{group.name} has no {wanted} variant here; available: {have}{hint}")
    if variant == current:
        return settings
    return settings.with_changes(model=variant.ref)


def resolve_model(query: str, catalog: Catalog, *, prefer_quant: str | None = None) -> ModelChoice:
    """The model a user means by `query`: a path, a tag, or part of a name.

    An exact path or tag wins. Otherwise every model whose name, file name or tag contains the
    query (any case) is a candidate; one model must remain. When several of its quantizations
    match, `prefer_quant` (the current one) is taken if present, else the smallest file.
    """
    text = query.strip()
    if not text:
        raise ModelChoiceError("name a model: a GGUF path, an Ollama tag, or part of a model's name")
    exact = catalog.find(text)
    if exact is not None:
        return ModelChoice(exact[1].ref, exact[0], exact[1])
    if looks_like_path(text) and is_file(user_path(text)):
        # Any file named by its path: an Ollama blob is a GGUF without the suffix, and the load
        # reads the header and says what is wrong with one that is not. Absolute: the worker
        # that loads it runs in another folder. A split model loads from its first part.
        return ModelChoice(str(split_parts(user_path(text).absolute())[0]), None, None)

    needle = text.lower()
    by_group: dict[int, list[ModelVariant]] = {}
    for index, group in enumerate(catalog.groups):
        group_hit = needle in group.name.lower()
        hits = [v for v in group.variants if needle in _variant_words(v)]
        if group_hit or hits:
            by_group[index] = hits or list(group.variants)
    if not by_group:
        skipped = _skipped_files(needle, catalog)
        if skipped:
            # The file is there: "no model matches" sent the user looking for it.
            raise SkippedModelError(f"{text!r} is no model that can be loaded: {skipped}")
        known = ", ".join(g.name for g in catalog.groups[:_LISTED]) or "none found"
        more = "…" if len(catalog.groups) > _LISTED else ""
        raise NoModelMatchError(f"no model matches {text!r} (models: {known}{more})")
    if len(by_group) > 1:
        exact_name = [i for i in by_group if catalog.groups[i].name.lower() == needle]
        if len(exact_name) != 1:
            names = [catalog.groups[i].name for i in by_group]
            listed = ", ".join(names[:_LISTED]) + ("…" if len(names) > _LISTED else "")
            raise ModelChoiceError(f"{text!r} matches {len(names)} models: {listed}")
        by_group = {exact_name[0]: by_group[exact_name[0]]}
    ((index, variants),) = by_group.items()
    group = catalog.groups[index]
    if len(variants) == 1:
        return ModelChoice(variants[0].ref, group, variants[0])
    preferred = normalize_quant(prefer_quant) if prefer_quant else None
    chosen = next((v for v in variants if v.quant == preferred), None)
    if chosen is None:
        chosen = min(variants, key=lambda v: v.size_bytes)
    # Copies in one quant are told apart by their folders: "took Q4_1 (also: Q4_1)" said nothing.
    copied = sum(v.quant == chosen.quant for v in variants) > 1
    others = ", ".join(
        _variant_name(v, copied and v.quant == chosen.quant) for v in variants if v is not chosen
    )
    took = _variant_name(chosen, copied)
    return ModelChoice(chosen.ref, group, chosen, f"{group.name}: took {took} (also: {others})")


def _variant_name(variant: ModelVariant, where: bool) -> str:
    if not where:
        return variant.quant
    return f"{variant.quant} in {Path(variant.ref).parent}" if looks_like_path(variant.ref) else variant.ref


def _skipped_files(needle: str, catalog: Catalog) -> str:
    """Why the files named like `needle` that the scan left out are no models, if any are."""
    reasons = [f"{u.path} ({u.reason})" for u in catalog.unreadable if needle in u.path.name.lower()]
    reasons += [
        f"{p} (a vision projector, not a chat model)" for p in catalog.projectors if needle in p.name.lower()
    ]
    shown = "; ".join(reasons[:_LISTED])
    return shown + ("…" if len(reasons) > _LISTED else "")


def _variant_words(variant: ModelVariant) -> str:
    return " ".join([*(p.name for p in variant.paths), *variant.tags]).lower()


def missing_file(text: str) -> str | None:
    """Why `text`, written as a path, names no file to load; None when it is not a path or
    names one."""
    if not looks_like_path(text):
        return None
    path = user_path(text)
    if is_dir(path):
        return f"{text} is a folder: name a .gguf file in it"
    return None if is_file(path) else f"no file at {text}"


def _short(model: str) -> str:
    return Path(model).name if looks_like_path(model) else model


def looks_like_path(model: str) -> bool:
    return os.sep in model or model.lower().endswith(".gguf")

"""The drawer's Model and Quant lists for one backend, built from a catalog, without widgets.

A model ref is what `LoadSettings.model` holds: a GGUF path for llama.cpp, a tag for Ollama, a
model id for an OpenAI-compatible server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lollma_tui.core import formatting as fmt
from lollma_tui.core.models.catalog import Catalog, ModelGroup, ModelVariant
from lollma_tui.core.settings import BackendKind

NO_MODEL = -1
"""The value of the only entry of an empty list."""

Options = list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """One entry of the model list: a catalog group, or a model the catalog lacks."""

    label: str
    variants: tuple[ModelVariant, ...]

    def index_of(self, ref: str) -> int | None:
        return next((i for i, v in enumerate(self.variants) if v.ref == ref or ref in v.tags), None)

    def variant_labels(self) -> tuple[str, ...]:
        quants = [v.quant for v in self.variants]
        origins = [_origin(v, in_folder=False) for v in self.variants]
        return tuple(
            _variant_label(v, ambiguous=quants.count(v.quant) > 1, same_name=origins.count(origin) > 1)
            for v, origin in zip(self.variants, origins, strict=True)
        )


def _variant_label(variant: ModelVariant, *, ambiguous: bool, same_name: bool) -> str:
    parts = [variant.quant]
    if variant.size_bytes:
        parts.append(fmt.size(variant.size_bytes))
    if ambiguous:
        # Two files (or tags) in one quantization: tell them apart by where they come from, and
        # by the folder too when the file names are the same.
        parts.append(_origin(variant, in_folder=same_name))
    return " · ".join(p for p in parts if p)


def _origin(variant: ModelVariant, *, in_folder: bool) -> str:
    if variant.tags:
        return variant.tags[0]
    path = variant.path
    if path is None:
        return ""
    if not in_folder:
        return path.name
    folder = str(path.parent)
    home = str(Path.home())
    if folder == home or folder.startswith(home + "/"):
        folder = "~" + folder[len(home) :]
    return f"{path.name} in {folder}"


def _group_label(group: ModelGroup) -> str:
    label = group.parameter_label
    if not label or label.lower() in group.name.lower():
        return group.name
    return f"{group.name} {label}"


def _loose_variant(ref: str, backend: BackendKind) -> ModelVariant:
    from lollma_tui.core.backends.openai_request import quant_in_names

    quant = quant_in_names(Path(ref).name if backend == BackendKind.LLAMA_CPP else ref) or "unknown"
    if backend != BackendKind.LLAMA_CPP:
        # An Ollama tag or a server's model id: a name, not a path.
        return ModelVariant(quant=quant, size_bytes=0, tags=(ref,))
    return ModelVariant(quant=quant, size_bytes=0, paths=(Path(ref),))


def n_layers_of(variant: ModelVariant | None) -> int | None:
    """Repeating layers from the GGUF header; None for Ollama tags and unknown files."""
    header = variant.header if variant is not None else None
    return (header.block_count or None) if header is not None else None


def n_ctx_train_of(variant: ModelVariant | None) -> int | None:
    header = variant.header if variant is not None else None
    return header.context_length if header is not None else None


@dataclass(frozen=True, slots=True)
class ModelMenu:
    catalog: Catalog | None
    choices: tuple[ModelChoice, ...]

    @classmethod
    def build(cls, catalog: Catalog | None, backend: BackendKind, keep: tuple[str, ...] = ()) -> ModelMenu:
        """The catalog's groups, plus an entry for each ref in `keep` that the catalog lacks, so
        the model in use stays selectable even when no scan found it."""
        groups = catalog.groups if catalog is not None else ()
        menu = cls(catalog, tuple(ModelChoice(_group_label(group), group.variants) for group in groups))
        extra: list[ModelChoice] = []
        for ref in dict.fromkeys(keep):
            if ref and menu.locate(ref) is None and not any(c.index_of(ref) is not None for c in extra):
                name = Path(ref).name if backend == BackendKind.LLAMA_CPP else ref
                extra.append(ModelChoice(f"{name} (not scanned)", (_loose_variant(ref, backend),)))
        return cls(catalog, menu.choices + tuple(extra)) if extra else menu

    def locate(self, ref: str) -> tuple[int, int] | None:
        """(model index, quant index) of `ref`, or None."""
        for index, choice in enumerate(self.choices):
            found = choice.index_of(ref)
            if found is not None:
                return index, found
        # The catalog also knows other spellings of a path, and tags without ":latest".
        hit = self.catalog.find(ref) if self.catalog is not None and ref else None
        if hit is not None:
            for index, choice in enumerate(self.choices):
                if hit[1] in choice.variants:
                    return index, choice.variants.index(hit[1])
        return None

    def variant(self, ref: str) -> ModelVariant | None:
        found = self.locate(ref)
        return self.choices[found[0]].variants[found[1]] if found else None

    def same_model(self, ref: str, other: str) -> bool:
        """Whether two refs are variants of one model (both known to the menu)."""
        at, other_at = self.locate(ref), self.locate(other)
        return at is not None and other_at is not None and at[0] == other_at[0]

    def options(self, ref: str) -> tuple[tuple[Options, int], tuple[Options, int]]:
        """(options, value) of the model list, and of the quant list of `ref`'s model."""
        located = self.locate(ref)
        model_options = [(choice.label, index) for index, choice in enumerate(self.choices)]
        if located is None:
            # The value must be one of the options: offer a placeholder entry for "none yet".
            if model_options:
                placeholder = "choose a model"
            else:
                placeholder = "no models found" if self.catalog is not None else "no model list"
            return ([(placeholder, NO_MODEL), *model_options], NO_MODEL), ([("—", NO_MODEL)], NO_MODEL)
        model = (model_options, located[0])
        labels = self.choices[located[0]].variant_labels()
        return model, ([(label, index) for index, label in enumerate(labels)], located[1])

    def first_ref(self) -> str:
        return self.choices[0].variants[0].ref if self.choices else ""

    def ref_for_model(self, index: int, current: str, applied: str) -> str | None:
        """The ref to load when model `index` is picked while `current` is drafted: None when
        `current` already belongs to it. Back to the model in effect means its own file; for
        another model the same quantization if it has one, so the comparison is like with like."""
        if not 0 <= index < len(self.choices):
            return None
        choice = self.choices[index]
        if choice.index_of(current) is not None:
            return None
        applied_index = choice.index_of(applied)
        if applied_index is not None:
            return choice.variants[applied_index].ref
        quant = self.variant(current)
        same_quant = next((v for v in choice.variants if quant and v.quant == quant.quant), None)
        return (same_quant or choice.variants[0]).ref

    def ref_for_quant(self, current: str, index: int) -> str | None:
        """The ref of quant `index` of `current`'s model; None if that is `current` itself."""
        located = self.locate(current)
        if located is None:
            return None
        variants = self.choices[located[0]].variants
        if not 0 <= index < len(variants) or variants[index].ref == current:
            return None
        return variants[index].ref

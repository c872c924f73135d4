"""Group Ollama tags into models with quantization variants, like the GGUF catalog does.

Ollama spells the quantization at the end of the tag (``llama3.2:1b-instruct-q4_K_M``,
``…-q8_0``, ``…-fp16``); tags without one (``llama3.2:1b``, ``:latest``) are aliases of some
other tag, which the digest tells.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lollma_tui.core.models.catalog import Catalog, ModelGroup, ModelVariant, UnreadableModel
from lollma_tui.core.models.quant_types import normalize_quant

_SIZE_WORD = re.compile(r"^(?:\d+x)?\d+(?:\.\d+)?[kmbt]$|^e\d+b$|^a\d+(?:\.\d+)?b$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TagParts:
    """``namespace/model:size-flavour-quant`` taken apart."""

    model: str
    tag: str
    size: str
    """"1b", "8x7b", "" when the tag has no size word."""
    flavour: str
    """What is left: "instruct", "text", "it-qat"... or ""."""
    quant: str | None
    """Canonical quantization ("Q4_K_M", "F16") when the tag names one."""

    @property
    def name(self) -> str:
        return f"{self.model}:{self.tag}"


def parse_tag(name: str) -> TagParts:
    """Split an Ollama model name into model, size, flavour and quantization."""
    model, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        model, tag = name, "latest"
    words = tag.split("-")
    quant = None
    if words[-1]:
        quant = normalize_quant(words[-1])
        if quant is not None:
            words = words[:-1]
    size = next((w for w in words if _SIZE_WORD.match(w)), "")
    rest = [w for w in words if w and w != size and w.lower() != "latest"]
    return TagParts(model, tag, size.lower(), "-".join(rest).lower(), quant)


@dataclass(frozen=True, slots=True)
class _Entry:
    parts: TagParts
    digest: str
    size: int
    family: str
    parameter_size: str
    quant: str


def _field(record: Mapping[str, Any], key: str) -> Any:
    return record.get(key)


def _entry(record: Mapping[str, Any]) -> _Entry | str:
    name = _field(record, "model") or _field(record, "name")
    if not isinstance(name, str) or not name:
        return "record has no model name"
    details = _field(record, "details") or {}
    if not isinstance(details, Mapping):
        details = {}
    parts = parse_tag(name)
    level = details.get("quantization_level")
    quant = parts.quant or (normalize_quant(level) if isinstance(level, str) and level else None)
    size = _field(record, "size")
    digest = _field(record, "digest")
    return _Entry(
        parts=parts,
        digest=digest if isinstance(digest, str) and digest else f"name:{name}",
        size=size if isinstance(size, int) else 0,
        family=str(details.get("family") or ""),
        parameter_size=str(details.get("parameter_size") or ""),
        quant=quant or (str(level).upper() if level else "unknown"),
    )


def group_ollama_models(records: Iterable[Mapping[str, Any]]) -> Catalog:
    """Group /api/tags records (dicts with name/model, size, digest, details) into a Catalog.

    Tags that differ only in their quantization word form one group. An alias without a
    quantization word joins the variant with the same digest; otherwise it becomes a variant of
    the one group with its model name, family and size, or its own group when that is ambiguous.
    Records use the model name as the variant's ref; `UnreadableModel.path` holds the record's
    name (or "?") for records that cannot be used.
    """
    unreadable: list[UnreadableModel] = []
    explicit: list[_Entry] = []
    aliases: list[_Entry] = []
    for record in records:
        entry = _entry(record)
        if isinstance(entry, str):
            label = record.get("name") or record.get("model") or "?"
            unreadable.append(UnreadableModel(Path(str(label)), entry))
        elif entry.parts.quant is not None:
            explicit.append(entry)
        else:
            aliases.append(entry)

    # group key -> digest -> entries (the first one names the variant)
    groups: dict[tuple[str, str, str, str, str], dict[str, list[_Entry]]] = {}
    for entry in explicit:
        groups.setdefault(_key(entry), {}).setdefault(entry.digest, []).append(entry)

    for entry in sorted(aliases, key=lambda e: e.parts.name):
        home = next((key for key, by_digest in groups.items() if entry.digest in by_digest), None)
        if home is None:
            same_model = [key for key in groups if key[:3] == _key(entry)[:3]]
            same_flavour = [key for key in same_model if key[4] == entry.parts.flavour]
            candidates = same_flavour or same_model
            home = candidates[0] if len(candidates) == 1 else _key(entry)
        groups.setdefault(home, {}).setdefault(entry.digest, []).append(entry)

    built = [_make_group(key, by_digest) for key, by_digest in groups.items()]
    built.sort(key=lambda g: g.name.lower())
    return Catalog(tuple(built), tuple(unreadable))


def _key(entry: _Entry) -> tuple[str, str, str, str, str]:
    parts = entry.parts
    return (parts.model, entry.family, entry.parameter_size, parts.size, parts.flavour)


def _make_group(key: tuple[str, str, str, str, str], by_digest: dict[str, list[_Entry]]) -> ModelGroup:
    model, family, parameter_size, size, flavour = key
    variants = []
    for entries in by_digest.values():
        # Tags that name a quantization first, then aliases, each alphabetically.
        entries = sorted(entries, key=lambda e: (e.parts.quant is None, e.parts.name))
        first = entries[0]
        variants.append(
            ModelVariant(
                quant=first.quant,
                size_bytes=first.size,
                tags=tuple(e.parts.name for e in entries),
                digest=None if first.digest.startswith("name:") else first.digest,
            )
        )
    variants.sort(key=lambda v: (v.size_bytes, v.quant, v.ref))
    suffix = "-".join(w for w in (size, flavour) if w)
    return ModelGroup(
        name=f"{model}:{suffix}" if suffix else model,
        architecture=family,
        parameter_label=parameter_size,
        variants=tuple(variants),
    )

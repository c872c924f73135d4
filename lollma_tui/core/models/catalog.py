"""Find GGUF files in model folders and group them into models with quantization variants.

Everything here takes its folders as arguments; `default_model_dirs` is the one place that
knows where people keep models, so tests never see the developer's real folders.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lollma_tui.core.models.gguf_header import (
    SPLIT_NAME,
    GGUFError,
    GGUFHeader,
    merge_split_headers,
    read_gguf_header,
    split_parts,
)
from lollma_tui.core.models.quant_types import FILE_TYPE_IDS, GGML_TYPE_IDS, normalize_quant

if TYPE_CHECKING:
    from lollma_tui.core.models.header_store import Entry

_QUANT_WORDS = frozenset(name.lower() for name in (*FILE_TYPE_IDS, *GGML_TYPE_IDS)) | {"fp16", "fp32", "gguf"}
_NON_CHAT_ARCHS = frozenset({"clip", "mmproj"})


@dataclass(frozen=True, slots=True)
class UnreadableModel:
    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class ModelVariant:
    """One quantization of a model: GGUF file(s) for llama.cpp, or an Ollama tag."""

    quant: str
    size_bytes: int
    paths: tuple[Path, ...] = ()
    """GGUF parts, first part first (llama.cpp is given the first)."""
    header: GGUFHeader | None = field(default=None, compare=False, repr=False)
    """Merged over all parts for split models."""
    tags: tuple[str, ...] = ()
    """Ollama names for this digest: the most specific tag first, aliases after."""
    digest: str | None = None

    @property
    def path(self) -> Path | None:
        return self.paths[0] if self.paths else None

    @property
    def ref(self) -> str:
        """What a backend loads: the first GGUF path, or the Ollama tag."""
        if self.paths:
            return str(self.paths[0])
        return self.tags[0] if self.tags else ""


@dataclass(frozen=True, slots=True)
class ModelGroup:
    """One model (same architecture, base name and parameter count) in several quantizations."""

    name: str
    architecture: str
    parameter_label: str
    """Humanised parameter count as Ollama writes it: "270M", "1.2B", "8x7B"."""
    variants: tuple[ModelVariant, ...]
    parameter_count: int | None = None

    @property
    def quants(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.quant for v in self.variants))

    def variant(self, quant: str) -> ModelVariant | None:
        """The variant in `quant` ("Q8_0", "q8_0", "fp16"...), or None."""
        wanted = normalize_quant(quant) or quant.upper()
        return next((v for v in self.variants if v.quant == wanted), None)


@dataclass(frozen=True, slots=True)
class Catalog:
    groups: tuple[ModelGroup, ...] = ()
    unreadable: tuple[UnreadableModel, ...] = ()
    projectors: tuple[Path, ...] = ()
    """Vision projector files (mmproj), found but not chat models."""

    def find(self, ref: str | os.PathLike[str]) -> tuple[ModelGroup, ModelVariant] | None:
        """The group and variant for a GGUF path (any part of a split model) or an Ollama tag."""
        text = os.fspath(ref)
        tag = _full_tag(text)
        path = Path(text)
        for group in self.groups:
            for variant in group.variants:
                if path in variant.paths or tag in (_full_tag(t) for t in variant.tags):
                    return group, variant
        if _looks_like_tag(text):
            return None
        # Slower: the same file by another spelling (relative path, symlink).
        path_key = _path_key(path)
        for group in self.groups:
            for variant in group.variants:
                if any(_path_key(p) == path_key for p in variant.paths):
                    return group, variant
        return None

    def variant_for_path(self, path: str | os.PathLike[str]) -> ModelVariant | None:
        found = self.find(path)
        return found[1] if found else None

    def same_model_in_quant(self, ref: str | os.PathLike[str], quant: str) -> ModelVariant | None:
        """For "/quant Q8_0": the variant of `ref`'s model in another quantization, if present."""
        found = self.find(ref)
        return found[0].variant(quant) if found else None


def _looks_like_tag(text: str) -> bool:
    return ":" in text and "/" not in text.split(":", 1)[0] and not text.lower().endswith(".gguf")


def _full_tag(text: str) -> str:
    name, sep, tag = text.rpartition(":")
    if not sep or "/" in tag:
        return f"{text}:latest"
    return f"{name}:{tag}"


def _path_key(path: Path) -> str:
    # realpath, not resolve(): on Python 3.11 and 3.12 a symlink loop raises RuntimeError there.
    return os.path.realpath(path)


def _not_a_model(header: GGUFHeader) -> str | None:
    """Why a GGUF that llama.cpp's tools make is no chat model on its own, if it is not."""
    if header.get("general.type") == "adapter" or header.get("adapter.type") is not None:
        return "a LoRA adapter, not a model on its own"
    if header.tensor_count == 0:
        return "a vocabulary only, no weights"
    return None


# --- where models live ----------------------------------------------------------------------


def default_model_dirs(
    *,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    data_dir: Path | None = None,
) -> tuple[Path, ...]:
    """Folders searched by default: our data folder, ~/models, the Hugging Face hub cache and
    LM Studio's folders. Pass `env`, `home` and `data_dir` to look somewhere else (tests)."""
    environ = os.environ if env is None else env
    home_dir = Path.home() if home is None else home
    if data_dir is None:
        from lollma_tui.core import paths

        data_dir = paths.data_dir()
    hf_home = environ.get("HF_HUB_CACHE") or (
        str(Path(environ["HF_HOME"]) / "hub") if environ.get("HF_HOME") else None
    )
    hub = Path(hf_home) if hf_home else home_dir / ".cache" / "huggingface" / "hub"
    return (
        data_dir / "models",
        home_dir / "models",
        hub,
        home_dir / ".lmstudio" / "models",
        home_dir / ".cache" / "lm-studio" / "models",
    )


def find_gguf_files(dirs: Iterable[Path]) -> list[Path]:
    """Every ``*.gguf`` under `dirs`, following symlinks (the HF cache is made of them) once.

    Missing folders are skipped, hidden folders (``.locks``, ``.git``) are not entered, and a
    file reached twice (two folders, two snapshots of one blob) is listed once, by the first path.
    """
    found: list[Path] = []
    seen_files: set[str] = set()
    seen_dirs: set[str] = set()
    for root in dirs:
        for path in _walk(Path(root), seen_dirs):
            key = _path_key(path)
            if key not in seen_files:
                seen_files.add(key)
                found.append(path)
    return found


def _walk(root: Path, seen_dirs: set[str]) -> Iterator[Path]:
    try:
        real = os.path.realpath(root)
        if real in seen_dirs or not os.path.isdir(real):
            return
        seen_dirs.add(real)
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    subdirs: list[Path] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        if is_dir:
            subdirs.append(Path(entry.path))
        elif entry.name.lower().endswith(".gguf"):
            # Broken symlinks are listed too: the scan reports them as unreadable.
            yield Path(entry.path)
    for sub in subdirs:
        yield from _walk(sub, seen_dirs)


# --- reading headers ------------------------------------------------------------------------


class HeaderCache:
    """Parsed headers (or their errors) by path, reused while size and mtime are unchanged.

    With a `store` file the headers outlive the process: it is read here (call from a thread)
    and written by `save()`, so the next start only re-reads files that changed.
    """

    def __init__(self, store: Path | None = None) -> None:
        self._store = store
        self._entries: dict[str, Entry] = {}
        self.dropped: tuple[tuple[str, str], ...] = ()
        """Stored entries left out as damaged: (path key, reason); those files are read again."""
        if store is not None:
            from lollma_tui.core.models.header_store import load_store

            stored = load_store(store)
            self._entries, self.dropped = stored.entries, stored.dropped
        self._dirty = False

    def read(self, path: Path) -> GGUFHeader:
        key = _path_key(path)
        try:
            info = os.stat(path)
        except OSError:
            info = None
        # Only regular files are remembered: a missing file may appear, a folder is cheap to refuse.
        identity = (
            (info.st_size, info.st_mtime_ns, info.st_ino) if info and stat.S_ISREG(info.st_mode) else None
        )
        cached = self._entries.get(key)
        if identity is not None and cached is not None and cached[0] == identity:
            result = cached[1]
        else:
            try:
                result = read_gguf_header(path)
            except GGUFError as error:
                result = error
            # A read the system refused is tried again: chmod or a mount changes no identity.
            if identity is not None and not (isinstance(result, GGUFError) and result.transient):
                self._entries[key] = (identity, result)
                self._dirty = True
        if isinstance(result, GGUFError):
            raise result
        return result

    def save(self) -> None:
        """Write the store, if any and if a header was read; files that are gone are dropped.
        A store that cannot be written only costs the next start its head start."""
        if self._store is None or not self._dirty:
            return
        from lollma_tui.core.models.header_store import save_entries

        kept = {key: entry for key, entry in self._entries.items() if os.path.exists(key)}
        with contextlib.suppress(OSError):
            save_entries(self._store, kept)
            self._dirty = False

    def __len__(self) -> int:
        return len(self._entries)


Reader = Callable[[Path], GGUFHeader]


def scan_models(
    dirs: Iterable[Path],
    extra_paths: Iterable[Path] = (),
    *,
    cache: HeaderCache | None = None,
) -> Catalog:
    """Find and read every GGUF under `dirs`, plus `extra_paths` (files), and group them."""
    files: list[Path] = []
    known: set[str] = set()
    # The same file may come twice: named as an extra (the model in use, a demo model) and
    # found in a folder, or as two extras (the demo model in use is both).
    for path in [*(Path(p) for p in extra_paths), *find_gguf_files(dirs)]:
        key = _path_key(path)
        if key not in known:
            known.add(key)
            files.append(path)
    return build_catalog(files, cache=cache)


def load_problem(path: Path, cache: HeaderCache | None = None) -> str | None:
    """Why the GGUF at `path` is no chat model that can be loaded (a projector, an adapter, a
    split model with a part missing or damaged), or None. Asked before the model in use is
    unloaded for it: llama.cpp's own refusal came after, and the old model loaded again."""
    catalog = build_catalog(split_parts(path), cache=cache)
    if catalog.groups:
        return None
    if catalog.unreadable:
        return catalog.unreadable[0].reason
    return "a vision projector (mmproj), not a chat model" if catalog.projectors else None


def build_catalog(files: Iterable[Path], *, cache: HeaderCache | None = None) -> Catalog:
    """Read the given GGUF files and group them. Never raises for a bad file."""
    read: Reader = cache.read if cache is not None else read_gguf_header
    unreadable: list[UnreadableModel] = []
    projectors: list[Path] = []

    singles, splits = _split_sets(files)
    read_sets: list[tuple[tuple[Path, ...], GGUFHeader] | UnreadableModel] = []
    for path in singles:
        result = _read_one(path, read)
        read_sets.append(UnreadableModel(path, result) if isinstance(result, str) else ((path,), result))
    read_sets.extend(_read_split(split, read) for split in splits)

    by_key: dict[tuple[str, str, str, int], list[tuple[tuple[Path, ...], GGUFHeader]]] = {}
    for item in read_sets:
        if isinstance(item, UnreadableModel):
            unreadable.append(item)
            continue
        parts, header = item
        if (header.architecture or "") in _NON_CHAT_ARCHS:
            projectors.append(parts[0])
            continue
        other = _not_a_model(header)
        if other is not None:
            unreadable.append(UnreadableModel(parts[0], other))
            continue
        try:
            # The views the groups show are computed here, per file (they are cached).
            key = _group_key(header, parts[0])
            _ = header.quantization, parameter_label(header.parameter_count)
        except Exception as error:
            unreadable.append(UnreadableModel(parts[0], _unexpected(error)))
            continue
        by_key.setdefault(key, []).append((parts, header))

    groups = [_make_group(members) for members in by_key.values()]
    groups.sort(key=lambda g: (g.name.lower(), g.parameter_count or 0))
    return Catalog(tuple(groups), tuple(unreadable), tuple(projectors))


@dataclass(frozen=True, slots=True)
class _SplitSet:
    parts: dict[int, Path]
    """Part number (1-based, from the file name) → path."""
    count: int


def _read_one(path: Path, read: Reader) -> GGUFHeader | str:
    """The header, or why there is none."""
    try:
        return read(path)
    except GGUFError as error:
        return error.reason
    except OSError as error:
        return f"cannot read: {error.strerror or error}"
    except Exception as error:  # one file's surprise must not empty the catalog
        return _unexpected(error)


def _unexpected(error: Exception) -> str:
    return f"cannot read: {type(error).__name__}: {str(error)[:200]}"


def _split_sets(files: Iterable[Path]) -> tuple[list[Path], list[_SplitSet]]:
    singles: list[Path] = []
    sets: dict[tuple[str, str, int], dict[int, Path]] = {}
    for path in files:
        match = SPLIT_NAME.match(path.name)
        if match is None:
            singles.append(path)
            continue
        key = (str(path.parent), match["base"], int(match["count"]))
        sets.setdefault(key, {})[int(match["index"])] = path
    return singles, [_SplitSet(parts, key[2]) for key, parts in sets.items()]


def _read_split(split: _SplitSet, read: Reader) -> tuple[tuple[Path, ...], GGUFHeader] | UnreadableModel:
    parts, count = split.parts, split.count
    first = parts[min(parts)]
    missing = [i for i in range(1, count + 1) if i not in parts]
    if missing:
        listed = ", ".join(str(i) for i in missing)
        return UnreadableModel(first, f"split model is missing part {listed} of {count}")
    headers = []
    for index in range(1, count + 1):
        result = _read_one(parts[index], read)
        if isinstance(result, str):
            return UnreadableModel(first, f"part {index} of {count}: {result}")
        headers.append(result)
    if any(h.split_count != count for h in headers):
        return UnreadableModel(first, f"file names say {count} parts but the headers disagree")
    return tuple(parts[i] for i in range(1, count + 1)), merge_split_headers(headers)


def _clean_name(text: str) -> str:
    """Lower-case words of a model name without quantization words or separators."""
    # Underscores stay inside words: they belong to quantization names (Q4_K_M).
    words = [w for w in re.split(r"[\s.\-]+", text.lower()) if w]
    return " ".join(w for w in words if w not in _QUANT_WORDS)


def _display_name(header: GGUFHeader, path: Path) -> str:
    if header.name:
        return header.name
    stem = path.name[: -len(".gguf")] if path.name.lower().endswith(".gguf") else path.stem
    match = SPLIT_NAME.match(path.name)
    if match:
        stem = match["base"]
    kept = re.split(r"([\s.\-]+)", stem)
    # Drop trailing quantization words ("-Q4_K_M", ".f16") but keep the rest as written.
    while kept and (kept[-1].lower() in _QUANT_WORDS or not kept[-1].strip("-. ")):
        kept.pop()
    return "".join(kept) or stem


def _group_key(header: GGUFHeader, path: Path) -> tuple[str, str, str, int]:
    name = _clean_name(_display_name(header, path))
    return (header.architecture or "", name, (header.finetune or "").lower(), header.parameter_count)


def parameter_label(count: int) -> str:
    """Parameter count the way Ollama prints it: 494.03M, 1.2B, 8.0B, 70B."""
    for scale, unit, decimals in ((1e9, "B", 1), (1e6, "M", 2), (1e3, "K", 2)):
        if count >= scale:
            value = count / scale
            return f"{value:.0f}{unit}" if value.is_integer() else f"{value:.{decimals}f}{unit}"
    return str(count)


def _make_group(members: list[tuple[tuple[Path, ...], GGUFHeader]]) -> ModelGroup:
    variants = [
        ModelVariant(
            quant=header.quantization,
            size_bytes=header.file_size,
            paths=parts,
            header=header,
        )
        for parts, header in members
    ]
    variants.sort(key=lambda v: (v.size_bytes, v.quant, v.ref))
    parts, first = members[0]
    return ModelGroup(
        name=_display_name(first, parts[0]),
        architecture=first.architecture or "",
        parameter_label=first.size_label or parameter_label(first.parameter_count),
        variants=tuple(variants),
        parameter_count=first.parameter_count,
    )

"""Parsed GGUF headers kept on disk between runs, so a scan only reads files that changed.

Reading a header means walking every token string of the vocabulary (tens of ms for 150k+
tokens), so a folder of 100 models costs seconds on a first scan; with this file a later start
only stats the files. It is a cache: anything odd in it means reading files again, never an
error. A file that is not JSON, another version, or not a regular file is ignored as a whole;
an entry of any other shape than `encode_header` writes (wrong types, values out of range,
nesting) is left out alone, with its reason. JSON, not pickle: loading it runs no code.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lollma_tui.core.models.gguf_header import (
    SMALL_ARRAY_LIMIT,
    SUPPORTED_VERSIONS,
    VALUE_TYPE_NAMES,
    ArrayInfo,
    GGUFError,
    GGUFHeader,
    KVValue,
    Scalar,
    TensorInfo,
)
from lollma_tui.core.models.gguf_limits import MAX_ITEMS, MAX_STRING_BYTES, check_block_count
from lollma_tui.core.models.quant_types import GGML_TYPES
from lollma_tui.core.safe_files import read_regular_file, write_private_file

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_STORE_BYTES = 256 << 20
"""A store of a thousand large models is tens of MiB; anything bigger is not ours."""

Identity = tuple[int, int, int]
"""(size, mtime_ns, inode): a header is reused only while all three are unchanged."""

Entry = tuple[Identity, GGUFHeader | GGUFError]

_U64_MAX = (1 << 64) - 1
_I64_MIN = -(1 << 63)
_NON_FINITE = frozenset({"inf", "-inf", "nan"})


@dataclass(frozen=True, slots=True)
class StoredHeaders:
    """What a store file held that can be trusted, and what was left out and why."""

    entries: dict[str, Entry]
    dropped: tuple[tuple[str, str], ...] = ()
    """(path key, reason) of each entry left out; the file is read again instead."""
    problem: str | None = None
    """Why the whole file was left out, when it was."""


class _Damaged(ValueError):
    """One entry does not have the shape `encode_header` writes; the message says where."""


def _encode_value(value: KVValue) -> Any:
    if isinstance(value, ArrayInfo):
        return {"a": [value.element_type, value.length, value.offset]}
    if isinstance(value, tuple):
        return {"t": [_encode_scalar(v) for v in value]}
    return _encode_scalar(value)


def _encode_scalar(value: Scalar) -> Any:
    # JSON has no NaN or infinities; metadata floats rarely are, but must survive if they are.
    if isinstance(value, float) and not math.isfinite(value):
        return {"f": repr(value)}
    return value


def _int(raw: Any, where: str, low: int = 0, high: int = _U64_MAX) -> int:
    # type() is, not isinstance: JSON true/false must not pass as 1/0.
    if type(raw) is not int or not low <= raw <= high:
        raise _Damaged(f"{where}: expected an integer from {low} to {high}")
    return raw


def _str(raw: Any, where: str) -> str:
    if type(raw) is not str or len(raw) > MAX_STRING_BYTES:
        raise _Damaged(f"{where}: expected a string")
    return raw


def _list(raw: Any, where: str, limit: int) -> list[Any]:
    if type(raw) is not list or len(raw) > limit:
        raise _Damaged(f"{where}: expected a list of at most {limit} items")
    return raw


def _fields(raw: Any, where: str, count: int) -> list[Any]:
    if type(raw) is not list or len(raw) != count:
        raise _Damaged(f"{where}: expected a list of {count} items")
    return raw


def _decode_scalar(raw: Any, where: str) -> Scalar:
    if isinstance(raw, bool | float):
        return raw
    if type(raw) is int:
        return _int(raw, where, _I64_MIN)
    if type(raw) is str:
        return _str(raw, where)
    if type(raw) is dict and raw.keys() == {"f"} and raw["f"] in _NON_FINITE:
        return float(raw["f"])
    raise _Damaged(f"{where}: not a metadata value")


def _decode_value(raw: Any, where: str) -> KVValue:
    if type(raw) is dict and raw.keys() == {"a"}:
        element_type, length, offset = _fields(raw["a"], where, 3)
        if type(element_type) is not int or element_type not in VALUE_TYPE_NAMES:
            raise _Damaged(f"{where}: unknown array element type")
        return ArrayInfo(element_type, _int(length, where), _int(offset, where))
    if type(raw) is dict and raw.keys() == {"t"}:
        return tuple(_decode_scalar(v, where) for v in _list(raw["t"], where, SMALL_ARRAY_LIMIT))
    return _decode_scalar(raw, where)


def encode_header(header: GGUFHeader) -> dict[str, Any]:
    return {
        "path": str(header.path),
        "version": header.version,
        "kv": {key: _encode_value(value) for key, value in header.kv.items()},
        "tensors": [
            [t.name, t.ggml_type, list(t.shape), t.n_elements, t.n_bytes, t.offset, t.part]
            for t in header.tensors
        ],
        "alignment": header.alignment,
        "data_offset": header.data_offset,
        "file_size": header.file_size,
        "big_endian": header.big_endian,
        "parts": [str(p) for p in header.parts],
    }


def _decode_tensor(raw: Any, where: str) -> TensorInfo:
    name, kind, shape, n, size, offset, part = _fields(raw, where, 7)
    if type(kind) is not int or kind not in GGML_TYPES:
        raise _Damaged(f"{where}: unknown ggml type")
    dims = tuple(_int(d, f"{where}.shape") for d in _list(shape, f"{where}.shape", 4))
    numbers = (_int(value, where) for value in (n, size, offset, part))
    return TensorInfo(_str(name, where), kind, dims, *numbers)


def decode_header(raw: Any) -> GGUFHeader:
    """A header from its stored form; `ValueError` (naming the field) for any other shape."""
    if type(raw) is not dict:
        raise _Damaged("header: expected an object")
    try:
        kv_raw, tensors_raw = raw["kv"], raw["tensors"]
        if type(kv_raw) is not dict or len(kv_raw) > MAX_ITEMS:
            raise _Damaged("kv: expected an object")
        kv = {key: _decode_value(value, f"kv[{key[:80]!r}]") for key, value in kv_raw.items()}
        tensors = tuple(
            _decode_tensor(t, f"tensors[{i}]") for i, t in enumerate(_list(tensors_raw, "tensors", MAX_ITEMS))
        )
        version = raw["version"]
        if type(version) is not int or version not in SUPPORTED_VERSIONS:
            raise _Damaged("version: not a GGUF version")
        alignment = _int(raw["alignment"], "alignment", 1)
        if alignment & (alignment - 1):
            raise _Damaged("alignment: not a power of two")
        big_endian = raw["big_endian"]
        if type(big_endian) is not bool:
            raise _Damaged("big_endian: expected true/false")
        header = GGUFHeader(
            path=Path(_str(raw["path"], "path")),
            version=version,
            kv=kv,
            tensors=tensors,
            alignment=alignment,
            data_offset=_int(raw["data_offset"], "data_offset"),
            file_size=_int(raw["file_size"], "file_size"),
            big_endian=big_endian,
            parts=tuple(Path(_str(p, "parts")) for p in _list(raw["parts"], "parts", MAX_ITEMS)),
        )
    except KeyError as missing:
        raise _Damaged(f"missing field {missing}") from None
    problem = check_block_count(kv)
    if problem is not None:
        raise _Damaged(problem)
    return header


def _decode_entry(item: Any) -> Entry:
    if type(item) is not dict:
        raise _Damaged("expected an object")
    size, mtime_ns, inode = _fields(item.get("id"), "id", 3)
    identity = (_int(size, "id"), _int(mtime_ns, "id", _I64_MIN), _int(inode, "id"))
    if "error" in item:
        return identity, GGUFError(Path(), _str(item["error"], "error")[:1000])
    return identity, decode_header(item.get("header"))


def load_store(path: Path) -> StoredHeaders:
    """The entries of a store file that hold up; each damaged one is left out with its reason.

    Never raises: a store that cannot be read or parsed at all is an empty one (with `problem`).
    """
    try:
        document = json.loads(read_regular_file(path, MAX_STORE_BYTES))
    except FileNotFoundError:
        return StoredHeaders({})
    except (OSError, ValueError, RecursionError) as error:
        # RecursionError: JSON nested deeper than the parser's recursion limit.
        return StoredHeaders({}, problem=f"cannot use {path}: {type(error).__name__}: {str(error)[:200]}")
    if type(document) is not dict or document.get("version") != FORMAT_VERSION:
        return StoredHeaders({}, problem=f"cannot use {path}: not a header store of version {FORMAT_VERSION}")
    items = document.get("entries")
    if type(items) is not dict:
        return StoredHeaders({}, problem=f"cannot use {path}: no entries")
    entries: dict[str, Entry] = {}
    dropped: list[tuple[str, str]] = []
    for key, item in items.items():
        try:
            identity, result = _decode_entry(item)
        except (ValueError, TypeError) as error:  # one bad entry costs one re-read
            dropped.append((key, str(error)))
            continue
        if isinstance(result, GGUFError) and result.reason.startswith("cannot read:"):
            continue  # a refused read, stored by an older version: the file may be readable now
        if isinstance(result, GGUFError):
            result = GGUFError(Path(key), result.reason)
        entries[key] = (identity, result)
    for key, reason in dropped:
        log.info("header store: left out %r: %s", key[:200], reason)
    return StoredHeaders(entries, tuple(dropped))


def save_entries(path: Path, entries: Mapping[str, Entry]) -> None:
    """Replace the file atomically (a crash leaves the old one), readable by the user only:
    paths and names of the user's models are nobody else's business."""
    items: dict[str, Any] = {}
    for key, (identity, result) in entries.items():
        if isinstance(result, GGUFError):
            items[key] = {"id": list(identity), "error": result.reason}
        else:
            items[key] = {"id": list(identity), "header": encode_header(result)}
    document = json.dumps({"version": FORMAT_VERSION, "entries": items}, separators=(",", ":"))
    write_private_file(path, document)

"""Parsed GGUF headers kept on disk between runs, so a scan only reads files that changed.

Reading a header means walking every token string of the vocabulary (tens of ms for 150k+
tokens), so a folder of 100 models costs seconds on a first scan; with this file a later start
only stats the files. It is a cache: anything odd in it (another version, bad JSON, a wrong
shape) means starting empty, never an error. JSON, not pickle: loading it runs no code.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lollma_tui.core.models.gguf_header import ArrayInfo, GGUFError, GGUFHeader, KVValue, Scalar, TensorInfo

FORMAT_VERSION = 1

Identity = tuple[int, int, int]
"""(size, mtime_ns, inode): a header is reused only while all three are unchanged."""

Entry = tuple[Identity, GGUFHeader | GGUFError]


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


def _decode_scalar(raw: Any) -> Scalar:
    if isinstance(raw, dict):
        return float(raw["f"])
    if isinstance(raw, bool | int | float | str):
        return raw
    raise ValueError(f"not a metadata value: {raw!r}")


def _decode_value(raw: Any) -> KVValue:
    if isinstance(raw, dict) and "a" in raw:
        element_type, length, offset = raw["a"]
        return ArrayInfo(int(element_type), int(length), int(offset))
    if isinstance(raw, dict) and "t" in raw:
        return tuple(_decode_scalar(v) for v in raw["t"])
    return _decode_scalar(raw)


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


def decode_header(raw: Mapping[str, Any]) -> GGUFHeader:
    return GGUFHeader(
        path=Path(raw["path"]),
        version=int(raw["version"]),
        kv={str(key): _decode_value(value) for key, value in raw["kv"].items()},
        tensors=tuple(
            TensorInfo(
                str(name), int(kind), tuple(int(d) for d in shape), int(n), int(size), int(offset), int(part)
            )
            for name, kind, shape, n, size, offset, part in raw["tensors"]
        ),
        alignment=int(raw["alignment"]),
        data_offset=int(raw["data_offset"]),
        file_size=int(raw["file_size"]),
        big_endian=bool(raw["big_endian"]),
        parts=tuple(Path(p) for p in raw["parts"]),
    )


def load_entries(path: Path) -> dict[str, Entry]:
    """The stored entries by path key; empty when the file is missing or not ours to trust."""
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        return {}
    entries: dict[str, Entry] = {}
    for key, item in (document.get("entries") or {}).items():
        try:
            size, mtime_ns, inode = (int(v) for v in item["id"])
            result: GGUFHeader | GGUFError = (
                GGUFError(Path(key), str(item["error"])) if "error" in item else decode_header(item["header"])
            )
        except (KeyError, TypeError, ValueError):
            continue  # one bad entry costs one re-read
        entries[str(key)] = ((size, mtime_ns, inode), result)
    return entries


def save_entries(path: Path, entries: Mapping[str, Entry]) -> None:
    """Replace the file atomically (a crash leaves the old one), readable by the user only."""
    items: dict[str, Any] = {}
    for key, (identity, result) in entries.items():
        if isinstance(result, GGUFError):
            items[key] = {"id": list(identity), "error": result.reason}
        else:
            items[key] = {"id": list(identity), "header": encode_header(result)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".headers-", suffix=".json", dir=path.parent)
    try:
        # mkstemp made it 0600: paths and names of the user's models are nobody else's business.
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump({"version": FORMAT_VERSION, "entries": items}, file, separators=(",", ":"))
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise

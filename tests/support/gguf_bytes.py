"""GGUF files byte by byte, for shapes no writer library produces (hostile, broken, huge).

Little-endian GGUF v3: magic, version, tensor count, key/value count, the key/value entries,
the tensor infos, padding to the alignment, tensor data. `gguf_file` takes entries built with
`kv`/`kv_array`/`tensor_info` and lets a test lie about any count.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL = range(8)
STRING, ARRAY, UINT64, INT64, FLOAT64 = range(8, 13)
F32 = 0

_CODES = {
    UINT8: "B",
    INT8: "b",
    UINT16: "H",
    INT16: "h",
    UINT32: "I",
    INT32: "i",
    FLOAT32: "f",
    BOOL: "?",
    UINT64: "Q",
    INT64: "q",
    FLOAT64: "d",
}


def gguf_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def scalar(value_type: int, value: object) -> bytes:
    if value_type == STRING:
        assert isinstance(value, str | bytes)
        return gguf_string(value)
    return struct.pack("<" + _CODES[value_type], value)


def kv(key: str | bytes, value_type: int, value: object) -> bytes:
    return gguf_string(key) + struct.pack("<I", value_type) + scalar(value_type, value)


def array_payload(element_type: int, items: Sequence[object], length: int | None = None) -> bytes:
    """An array value (element type, length, elements); `length` may lie about the count."""
    body = b"".join(scalar(element_type, item) for item in items)
    return struct.pack("<IQ", element_type, len(items) if length is None else length) + body


def kv_array(
    key: str | bytes, element_type: int, items: Sequence[object], length: int | None = None
) -> bytes:
    return gguf_string(key) + struct.pack("<I", ARRAY) + array_payload(element_type, items, length)


def nested_array_kv(key: str, depth: int) -> bytes:
    """An array of one array of one array ... `depth` deep, the innermost empty."""
    payload = struct.pack("<IQ", UINT8, 0)
    for _ in range(depth - 1):
        payload = struct.pack("<IQ", ARRAY, 1) + payload
    return gguf_string(key) + struct.pack("<I", ARRAY) + payload


def tensor_info(name: str | bytes, shape: Sequence[int], ggml_type: int = F32, offset: int = 0) -> bytes:
    return (
        gguf_string(name)
        + struct.pack("<I", len(shape))
        + struct.pack(f"<{len(shape)}Q", *shape)
        + struct.pack("<IQ", ggml_type, offset)
    )


def gguf_file(
    kvs: Sequence[bytes] = (),
    tensors: Sequence[bytes] = (),
    *,
    data: bytes = b"",
    n_kv: int | None = None,
    n_tensors: int | None = None,
    alignment: int = 32,
) -> bytes:
    head = b"GGUF" + struct.pack(
        "<IQQ", 3, len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv
    )
    body = head + b"".join(kvs) + b"".join(tensors)
    if tensors:
        body += b"\0" * (-len(body) % alignment)
    return body + data


def small_model(
    *,
    arch: str = "llama",
    name: str = "Small",
    block_count: int | None = 2,
    tensor_names: Sequence[str] = ("blk.0.attn_q.weight", "blk.1.attn_q.weight"),
    extra_kvs: Sequence[bytes] = (),
    file_type: int | None = 0,
) -> bytes:
    """A readable model: a few F32 tensors of 32 floats each, laid out one after another."""
    kvs = [
        kv("general.architecture", STRING, arch),
        kv("general.name", STRING, name),
        kv(f"{arch}.embedding_length", UINT32, 32),
        kv(f"{arch}.attention.head_count", UINT32, 4),
        *extra_kvs,
    ]
    if block_count is not None:
        kvs.append(kv(f"{arch}.block_count", UINT64 if block_count >= 1 << 32 else UINT32, block_count))
    if file_type is not None:
        kvs.append(kv("general.file_type", UINT32, file_type))
    infos = [tensor_info(t, (32,), F32, 128 * i) for i, t in enumerate(tensor_names)]
    return gguf_file(kvs, infos, data=b"\0" * (128 * len(tensor_names)))

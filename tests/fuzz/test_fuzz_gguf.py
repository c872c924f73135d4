"""Fuzzing the GGUF header reader: any bytes give a header whose every view works, or a GGUFError.

Files are drawn as structure (keys of every value type, arrays that lie about their length,
nested arrays, tensor infos with odd names, dims and types) and then damaged (cut short, bytes
overwritten), so most cases get deep into the parser instead of failing at the magic.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

from fuzzing import ANY_TEXT, EDGE_INTS, fuzz
from gguf_bytes import ARRAY, STRING, gguf_string
from hypothesis import event, given, strategies as st

from lollma_tui.core.models.catalog import build_catalog
from lollma_tui.core.models.fit import FitParams, auto_gpu_layers, check_fit, estimate_memory, memory_profile
from lollma_tui.core.models.gguf_header import GGUFError, GGUFHeader, read_gguf_header
from lollma_tui.core.models.header_store import decode_header, encode_header

_CODES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
MEANINGFUL_KEYS = [
    "general.architecture",
    "general.name",
    "general.file_type",
    "general.alignment",
    "general.parameter_count",
    "llama.block_count",
    "llama.context_length",
    "llama.embedding_length",
    "llama.feed_forward_length",
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.attention.key_length",
    "llama.attention.sliding_window",
    "llama.attention.sliding_window_pattern",
    "llama.expert_count",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.merges",
    "tokenizer.chat_template",
    "split.count",
]
TENSOR_NAMES = [
    "token_embd.weight",
    "output.weight",
    "output_norm.weight",
    "blk.0.attn_q.weight",
    "blk.1.ffn_up.weight",
    "blk.².attn_q.weight",
    "blk.4095.x",
    "blk.4096.x",
    f"blk.{10**15}.x",
    "blk..x",
    "blk.-1.x",
]

keys = st.one_of(st.sampled_from(MEANINGFUL_KEYS), ANY_TEXT)
small_ints = st.one_of(st.integers(0, 70), EDGE_INTS)


def scalar(value_type: int) -> st.SearchStrategy[bytes]:
    if value_type == STRING:
        return st.one_of(ANY_TEXT.map(lambda t: gguf_string(t.encode("utf-8", "surrogatepass"))), st.binary())
    code = _CODES[value_type]
    size = struct.calcsize(code)
    return st.binary(min_size=size, max_size=size)


@st.composite
def array_payload(draw: st.DrawFn, depth: int = 0) -> bytes:
    element_type = draw(st.sampled_from([*_CODES, STRING, STRING, ARRAY, 13, 99]))
    count = draw(st.integers(0, 6))
    claimed = draw(st.one_of(st.just(count), st.just(count), st.just(count), small_ints))
    if element_type == ARRAY:
        items = [draw(array_payload(depth + 1)) for _ in range(count if depth < 4 else 0)]
    elif element_type in _CODES or element_type == STRING:
        items = [draw(scalar(element_type)) for _ in range(count)]
    else:
        items = [draw(st.binary(max_size=8))]
    return struct.pack("<IQ", element_type, claimed & (2**64 - 1)) + b"".join(items)


@st.composite
def kv_entry(draw: st.DrawFn) -> bytes:
    key = draw(keys).encode("utf-8", "surrogatepass")
    value_type = draw(st.sampled_from([*_CODES, STRING, ARRAY, ARRAY, 13]))
    if value_type == ARRAY:
        payload = draw(array_payload())
    elif value_type in _CODES or value_type == STRING:
        payload = draw(scalar(value_type))
    else:
        payload = draw(st.binary(max_size=8))
    return gguf_string(key) + struct.pack("<I", value_type) + payload


@st.composite
def tensor_entry(draw: st.DrawFn) -> bytes:
    name = draw(st.one_of(st.sampled_from(TENSOR_NAMES), ANY_TEXT)).encode("utf-8", "surrogatepass")
    sane_dims = st.lists(st.sampled_from([1, 2, 8, 32]), min_size=1, max_size=3)
    dims = draw(st.one_of(sane_dims, sane_dims, st.lists(small_ints, max_size=5)))
    ggml_type = draw(st.one_of(st.sampled_from([0, 0, 1, 1, 2, 8, 12, 30]), small_ints))
    offset = draw(st.one_of(st.sampled_from([0, 0, 32, 128]), small_ints))
    return (
        gguf_string(name)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d & (2**64 - 1)) for d in dims)
        + struct.pack("<IQ", ggml_type & (2**32 - 1), offset & (2**64 - 1))
    )


@st.composite
def gguf_bytes(draw: st.DrawFn) -> bytes:
    kvs = draw(st.lists(kv_entry(), max_size=8))
    tensors = draw(st.lists(tensor_entry(), max_size=6))
    # Mostly true counts and a known version, so that most cases get past the preamble.
    n_kv = draw(st.one_of(st.just(len(kvs)), st.just(len(kvs)), st.just(len(kvs)), small_ints))
    n_tensors = draw(st.one_of(st.just(len(tensors)), st.just(len(tensors)), small_ints))
    version = draw(st.sampled_from([3, 3, 3, 3, 2, 1, 4, 0x03000000]))
    body = b"GGUF" + struct.pack("<IQQ", version, n_tensors & (2**64 - 1), n_kv & (2**64 - 1))
    body += b"".join(kvs) + b"".join(tensors)
    body += (
        b"\0" * (-len(body) % 32)
        + b"\0" * draw(st.sampled_from([0, 512, 4096]))
        + draw(st.binary(max_size=64))
    )
    data = bytearray(body)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):  # damage: bytes overwritten
        if data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
    if draw(st.sampled_from([False, False, True])):  # damage: cut short
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


@st.composite
def plausible_model(draw: st.DrawFn) -> bytes:
    """A well-formed file whose meaningful keys hold values of any type and size: it reads, so
    the views the app computes from it (quantization, per-layer tables, fit) get the values."""
    arch = draw(st.sampled_from(["llama", "gemma3", "qwen2", "mamba", "clip"]))
    chosen = draw(st.lists(st.sampled_from(MEANINGFUL_KEYS), unique=True, max_size=12))
    kvs = [gguf_string("general.architecture") + struct.pack("<I", STRING) + gguf_string(arch)]
    for key in chosen:
        if key == "general.architecture":
            continue
        key = key.replace("llama.", f"{arch}.")
        value_type = draw(st.sampled_from([*_CODES, STRING, ARRAY, ARRAY]))
        if value_type == ARRAY:
            element = draw(st.sampled_from([*_CODES, STRING]))
            items = draw(st.lists(scalar(element), max_size=40))
            payload = struct.pack("<IQ", element, len(items)) + b"".join(items)
        elif value_type == STRING:
            payload = gguf_string(draw(ANY_TEXT).encode("utf-8", "surrogatepass"))
        else:
            payload = draw(scalar(value_type))
        kvs.append(gguf_string(key) + struct.pack("<I", value_type) + payload)
    names = draw(st.lists(st.sampled_from(TENSOR_NAMES), unique=True, max_size=8))
    tensors = [
        gguf_string(name) + struct.pack("<I", 2) + struct.pack("<QQ", 32, 2) + struct.pack("<IQ", 0, 256 * i)
        for i, name in enumerate(names)
    ]
    body = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)
    return body + b"\0" * (-len(body) % 32) + b"\0" * (256 * len(names))


def exercise(header: GGUFHeader) -> None:
    """Every view the app computes from a header, and the store's round trip."""
    _ = (header.quantization, header.name, header.architecture, header.vocab_size, header.merges_count)
    _ = (header.parameter_count, header.weight_bytes, header.layer_weight_bytes, header.other_weight_bytes)
    _ = (header.output_head_bytes, header.key_length, header.value_length, header.sliding_window_pattern)
    # Per-layer tables stay small whatever the file says (a per-layer array is at most 64 long).
    limit = max(header.block_count, 64)
    assert len(header.head_count_per_layer()) <= limit
    assert len(header.head_count_kv_per_layer()) <= limit
    assert len(header.layer_weight_bytes) <= 4096
    profile = memory_profile(header)
    params = FitParams(n_gpu_layers=-1, n_ctx=4096)
    estimate_memory(profile, params).components()
    check_fit(profile, params, free_vram=8 << 30, free_ram=16 << 30)
    auto_gpu_layers(profile, params, free_vram=8 << 30, free_ram=16 << 30)
    again = decode_header(encode_header(header))
    assert again.tensors == header.tensors


@given(data=gguf_bytes())
@fuzz
def test_any_file_reads_or_fails_with_a_reason(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.gguf"
        path.write_bytes(data)
        header: GGUFHeader | None = None
        try:
            header = read_gguf_header(path)
        except GGUFError as error:
            reason = error.reason
        if header is None:
            assert reason
            # The reason up to the first name or figure in it: a handful of kinds.
            event(f"refused: {reason.split(chr(39))[0].split('(')[0][:40].strip()}")
        else:
            event("read")
            exercise(header)
        catalog = build_catalog([path])
        assert len(catalog.groups) + len(catalog.unreadable) + len(catalog.projectors) == 1


@given(data=plausible_model())
@fuzz
def test_any_values_in_a_readable_file_plan_without_error(data: bytes) -> None:
    test_any_file_reads_or_fails_with_a_reason.hypothesis.inner_test(data)  # type: ignore[attr-defined]

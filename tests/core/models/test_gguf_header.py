"""The header reader against gguf.GGUFReader on the same files, and on broken files."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from gguf import GGUFEndian, GGUFReader, GGUFValueType, LlamaFileType
from gguf_model_writer import ModelSpec, write_model

from lollma_tui.core.models.gguf_header import (
    ArrayInfo,
    GGUFError,
    GGUFHeader,
    merge_split_headers,
    quick_check,
    read_gguf_header,
)
from lollma_tui.core.models.quant_types import GGML_TYPE_IDS

Q = GGML_TYPE_IDS


def _reader_kv(reader: GGUFReader) -> dict[str, Any]:
    """GGUFReader's key/value map in the shape ours uses: long arrays as (element type, length)."""
    kv: dict[str, Any] = {}
    for name, f in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        if f.types[0] == GGUFValueType.ARRAY:
            length = len(f.data)
            if f.types[1] != GGUFValueType.ARRAY and length <= 64:
                kv[name] = tuple(f.contents())
            else:
                kv[name] = ("array", int(f.types[1]), length)
        else:
            kv[name] = f.contents()
    return kv


def _our_kv(header: GGUFHeader) -> dict[str, Any]:
    return {
        key: ("array", v.element_type, v.length) if isinstance(v, ArrayInfo) else v
        for key, v in header.kv.items()
    }


def assert_same_as_reader(path: Path) -> GGUFHeader:
    header = read_gguf_header(path)
    reader = GGUFReader(path)
    assert header.version == reader.fields["GGUF.version"].contents()
    assert header.tensor_count == reader.fields["GGUF.tensor_count"].contents() == len(reader.tensors)
    assert _our_kv(header) == _reader_kv(reader)
    ours = [(t.name, t.ggml_type, t.shape, t.n_elements, t.n_bytes, t.offset) for t in header.tensors]
    theirs = [
        (
            t.name,
            int(t.tensor_type),
            tuple(int(d) for d in t.shape),
            int(t.n_elements),
            int(t.n_bytes),
            int(t.data_offset),
        )
        for t in reader.tensors
    ]
    assert ours == theirs
    assert header.data_offset == reader.data_offset
    assert header.alignment == reader.alignment
    assert header.file_size == len(reader.data) == path.stat().st_size
    return header


# --- agreement with GGUFReader --------------------------------------------------------------


def test_tiny_llama_matches_reader(tiny_gguf: Path) -> None:
    assert_same_as_reader(tiny_gguf)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"weight_type": "Q8_0", "file_type": int(LlamaFileType.MOSTLY_Q8_0)}, id="q8_0"),
        pytest.param(
            {"weight_type": "Q4_K", "n_embd": 256, "n_ff": 512, "file_type": 15, "tied": True}, id="q4_k-tied"
        ),
        pytest.param(
            {"n_head_kv": (2, 1, 0), "n_layer": 3, "sliding_window": 128, "key_length": 32}, id="per-layer"
        ),
        pytest.param({"merges": 500, "file_type": None, "chat_template": None}, id="merges-no-ftype"),
        pytest.param({"endian": GGUFEndian.BIG}, id="big-endian"),
    ],
)
def test_generated_models_match_reader(model_factory: Any, fields: dict[str, Any]) -> None:
    if isinstance(fields.get("weight_type"), str):
        from gguf import GGMLQuantizationType

        fields = {**fields, "weight_type": GGMLQuantizationType[fields["weight_type"]]}
    header = assert_same_as_reader(model_factory(**fields))
    assert header.big_endian == (fields.get("endian") == GGUFEndian.BIG)


def test_split_parts_match_reader_and_merge(tmp_path: Path) -> None:
    files = write_model(tmp_path / "split.gguf", ModelSpec(n_layer=3, split_max_tensors=8))
    assert len(files) > 1
    headers = [assert_same_as_reader(f) for f in files]
    merged = merge_split_headers(list(reversed(headers)))
    assert merged.parts == tuple(files)
    assert merged.split_count == len(files)
    assert merged.architecture == "llama"
    all_tensors = [t for f in files for t in GGUFReader(f).tensors]
    assert merged.weight_bytes == sum(int(t.n_bytes) for t in all_tensors)
    assert merged.file_size == sum(f.stat().st_size for f in files)
    assert [t.part for t in merged.tensors] == [i for i, h in enumerate(headers) for _ in h.tensors]
    assert merged.layer_weight_bytes == _reader_layer_bytes(all_tensors, 3)


def _reader_layer_bytes(tensors: list[Any], n_layer: int) -> tuple[int, ...]:
    sizes: dict[int, int] = defaultdict(int)
    for t in tensors:
        if t.name.startswith("blk."):
            sizes[int(t.name.split(".")[1])] += int(t.n_bytes)
    return tuple(sizes[i] for i in range(n_layer))


def test_properties_agree_with_reader(tiny_gguf: Path) -> None:
    header = read_gguf_header(tiny_gguf)
    reader = GGUFReader(tiny_gguf)

    def field(key: str) -> Any:
        return reader.fields[key].contents()

    arch = field("general.architecture")
    assert header.architecture == arch
    assert header.name == field("general.name")
    assert header.block_count == field(f"{arch}.block_count")
    assert header.context_length == field(f"{arch}.context_length")
    assert header.embedding_length == field(f"{arch}.embedding_length")
    assert header.feed_forward_length == field(f"{arch}.feed_forward_length")
    assert header.head_count == field(f"{arch}.attention.head_count")
    assert header.head_count_kv == field(f"{arch}.attention.head_count_kv")
    head_dim = field(f"{arch}.embedding_length") // field(f"{arch}.attention.head_count")
    assert header.key_length == header.value_length == head_dim
    assert header.vocab_size == len(reader.fields["tokenizer.ggml.tokens"].data)
    assert header.chat_template == field("tokenizer.chat_template")
    assert header.has_chat_template
    expected_quant = LlamaFileType(field("general.file_type")).name.removeprefix("MOSTLY_")
    assert header.quantization == expected_quant
    assert not header.quantization_guessed
    tensors = {t.name: t for t in reader.tensors}
    assert header.weight_bytes == sum(int(t.n_bytes) for t in reader.tensors)
    assert header.parameter_count == sum(int(t.n_elements) for t in reader.tensors)
    assert header.layer_weight_bytes == _reader_layer_bytes(list(reader.tensors), header.block_count)
    assert header.token_embedding_bytes == tensors["token_embd.weight"].n_bytes
    assert (
        header.output_head_bytes == tensors["output.weight"].n_bytes + tensors["output_norm.weight"].n_bytes
    )
    assert not header.tied_embeddings
    assert header.other_weight_bytes == 0


def test_tied_embeddings_reuse_token_embd(model_factory: Any) -> None:
    path = model_factory(tied=True)
    header = read_gguf_header(path)
    tensors = {t.name: t for t in GGUFReader(path).tensors}
    assert "output.weight" not in tensors
    assert header.tied_embeddings
    assert (
        header.output_head_bytes
        == tensors["token_embd.weight"].n_bytes + tensors["output_norm.weight"].n_bytes
    )


def test_per_layer_values_and_sliding_window(model_factory: Any) -> None:
    path = model_factory(n_layer=3, n_head_kv=(2, 1, 0), sliding_window=128, key_length=32)
    header = read_gguf_header(path)
    reader = GGUFReader(path)
    assert header.head_count_kv == tuple(reader.fields["llama.attention.head_count_kv"].contents())
    assert header.head_count_kv_per_layer() == (2, 1, 0)
    assert header.key_length == reader.fields["llama.attention.key_length"].contents()
    assert header.sliding_window == reader.fields["llama.attention.sliding_window"].contents()


def test_missing_file_type_is_guessed_from_weights(model_factory: Any) -> None:
    from gguf import GGMLQuantizationType

    path = model_factory(file_type=None, weight_type=GGMLQuantizationType.Q8_0)
    header = read_gguf_header(path)
    assert "general.file_type" not in GGUFReader(path).fields
    assert header.file_type is None
    assert header.quantization == "Q8_0"
    assert header.quantization_guessed


def test_stored_parameter_count_wins(model_factory: Any) -> None:
    header = read_gguf_header(model_factory(parameter_count=1_234_567))
    assert header.parameter_count == 1_234_567


def test_long_string_arrays_are_not_decoded(model_factory: Any) -> None:
    header = read_gguf_header(model_factory(n_vocab=300, merges=100))
    tokens = header.kv["tokenizer.ggml.tokens"]
    assert isinstance(tokens, ArrayInfo)
    assert (tokens.element_type_name, tokens.length) == ("string", 300)
    assert header.merges_count == 100


def test_reader_does_not_import_numpy_or_gguf(tiny_gguf: Path) -> None:
    code = (
        "import sys\n"
        "from lollma_tui.core.models.gguf_header import read_gguf_header\n"
        f"read_gguf_header({str(tiny_gguf)!r}).layer_weight_bytes\n"
        "print(sorted(m for m in ('numpy', 'gguf') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_demo_model_header(demo_gguf: Path) -> None:
    header = read_gguf_header(demo_gguf)
    assert header.architecture == "gemma3"
    assert header.quantization == "Q4_K_M"
    assert header.vocab_size == 262144
    embd = header.tensor("token_embd.weight")
    assert embd is not None
    assert embd.shape == (header.embedding_length, header.vocab_size)
    assert header.block_count == len(header.layer_weight_bytes) == 18
    assert header.tied_embeddings
    # The tensor table accounts for the whole file after the header, up to alignment padding.
    slack = header.file_size - header.data_offset - header.weight_bytes
    assert 0 <= slack < header.alignment * header.tensor_count


@pytest.mark.slow
def test_demo_model_agrees_with_llama_cpp(demo_gguf: Path) -> None:
    """llama.cpp's own reading of the file (vocab-only load) gives the same metadata."""
    code = (
        "import json, sys, llama_cpp\n"
        "llm = llama_cpp.Llama(sys.argv[1], vocab_only=True, verbose=False)\n"
        "print(json.dumps({'meta': llm.metadata, 'n_vocab': llm.n_vocab()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(demo_gguf)], capture_output=True, text=True, check=True
    )
    import json

    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    meta = theirs["meta"]
    header = read_gguf_header(demo_gguf)
    assert header.vocab_size == theirs["n_vocab"]
    assert header.architecture == meta["general.architecture"]
    assert str(header.file_type) == meta["general.file_type"]
    for key, value in header.kv.items():
        if isinstance(value, (int, str)) and not isinstance(value, bool) and key in meta:
            assert str(value) == meta[key], key


# --- broken files -------------------------------------------------------------------------


def _cut(source: Path, target: Path, length: int) -> Path:
    target.write_bytes(source.read_bytes()[:length])
    return target


def _error(path: Path) -> GGUFError:
    with pytest.raises(GGUFError) as caught:
        read_gguf_header(path)
    error = caught.value
    assert isinstance(error, ValueError)
    assert "\n" not in str(error)
    assert str(path) in str(error)
    return error


def _truncation_points(path: Path) -> list[tuple[int, str]]:
    reader = GGUFReader(path)
    tokens = reader.fields["tokenizer.ggml.tokens"]
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    tensor = reader.tensors[5]
    return [
        (2, "truncated in the file header"),
        (12, "truncated in the file header"),
        (tokens.offset + 300, f"truncated in key/value {keys.index(tokens.name) + 1} of {len(keys)}"),
        (tensor.field.offset + 3, f"truncated in tensor info 6 of {len(reader.tensors)} (file is"),
        (
            tensor.field.offset + 8 + len(tensor.name) + 2,
            f"truncated in tensor info 6 of {len(reader.tensors)} ('{tensor.name}')",
        ),
        (reader.data_offset, "tensor data past the end of the file"),
        (path.stat().st_size - 1, "tensor data past the end of the file: 'output.weight'"),
    ]


def test_truncated_files_say_where(tiny_gguf: Path, tmp_path: Path) -> None:
    for length, expected in _truncation_points(tiny_gguf):
        error = _error(_cut(tiny_gguf, tmp_path / f"cut-{length}.gguf", length))
        assert expected in error.reason, (length, error.reason)


def test_truncated_vocabulary_is_reported(tiny_gguf: Path, tmp_path: Path) -> None:
    tokens = GGUFReader(tiny_gguf).fields["tokenizer.ggml.tokens"]
    error = _error(_cut(tiny_gguf, tmp_path / "vocab.gguf", tokens.offset + 2000))
    assert "'tokenizer.ggml.tokens'" in error.reason


def test_bad_magic(tiny_gguf: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGML" + tiny_gguf.read_bytes()[4:])
    assert "not a GGUF file" in _error(bad).reason
    with pytest.raises(GGUFError, match="not a GGUF file"):
        quick_check(bad)


def test_zero_bytes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    assert "empty file" in _error(empty).reason


def test_directory_named_gguf(tmp_path: Path) -> None:
    folder = tmp_path / "x.gguf"
    folder.mkdir()
    assert "is a directory" in _error(folder).reason


def test_missing_file(tmp_path: Path) -> None:
    assert _error(tmp_path / "nope.gguf").reason == "file not found"


def _patched(source: Path, target: Path, offset: int, fmt: str, value: int) -> Path:
    data = bytearray(source.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("version", [1, 4, 0x0300])
def test_unsupported_version(tiny_gguf: Path, tmp_path: Path, version: int) -> None:
    path = _patched(tiny_gguf, tmp_path / "v.gguf", 4, "<I", version)
    assert "unsupported GGUF version" in _error(path).reason
    with pytest.raises(GGUFError, match="unsupported GGUF version"):
        quick_check(path)


@pytest.mark.parametrize(("offset", "what"), [(8, "tensor count"), (16, "key/value count")])
def test_implausible_counts(tiny_gguf: Path, tmp_path: Path, offset: int, what: str) -> None:
    path = _patched(tiny_gguf, tmp_path / "count.gguf", offset, "<Q", 1 << 40)
    assert f"implausible {what}" in _error(path).reason
    with pytest.raises(GGUFError, match=f"implausible {what}"):
        quick_check(path)


def test_tensor_offset_past_end(tiny_gguf: Path, tmp_path: Path) -> None:
    reader = GGUFReader(tiny_gguf)
    tensor = reader.tensors[-1]
    # The tensor info ends with its u64 offset: point it far beyond the file.
    info_end = tensor.field.offset + sum(int(p.nbytes) for p in tensor.field.parts)
    path = _patched(tiny_gguf, tmp_path / "far.gguf", info_end - 8, "<Q", 1 << 32)
    error = _error(path)
    assert "tensor data past the end of the file" in error.reason
    assert tensor.name in error.reason


def test_unknown_value_type(tiny_gguf: Path, tmp_path: Path) -> None:
    reader = GGUFReader(tiny_gguf)
    first = reader.fields["general.architecture"]
    key_len = int(first.parts[0][0])
    path = _patched(tiny_gguf, tmp_path / "type.gguf", first.offset + 8 + key_len, "<I", 99)
    assert "unknown value type 99" in _error(path).reason


def test_quick_check_accepts_good_files_and_is_only_a_preamble_check(tiny_gguf: Path, tmp_path: Path) -> None:
    quick_check(tiny_gguf)
    # Documented limit: tensor data past the end needs the full parse.
    cut = _cut(tiny_gguf, tmp_path / "cut.gguf", tiny_gguf.stat().st_size - 1)
    quick_check(cut)
    with pytest.raises(GGUFError):
        read_gguf_header(cut)
    for bad in (tmp_path / "missing.gguf", tmp_path):
        with pytest.raises(GGUFError):
            quick_check(bad)

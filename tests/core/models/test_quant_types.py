"""The hand-written type tables agree with the gguf package (and llama.cpp's own constants)."""

from __future__ import annotations

import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from lollma_tui.core.models.quant_types import (
    FILE_TYPE_NAMES,
    GGML_TYPES,
    normalize_quant,
    tensor_bytes,
)


def test_ggml_type_table_matches_gguf_quant_sizes() -> None:
    theirs = {int(t): (t.name, block, size) for t, (block, size) in GGML_QUANT_SIZES.items()}
    ours = {type_id: (t.name, t.block_size, t.type_size) for type_id, t in GGML_TYPES.items()}
    assert ours == theirs


def test_every_gguf_type_has_a_layout() -> None:
    missing = [t.name for t in GGMLQuantizationType if int(t) not in GGML_TYPES]
    assert missing == []


def test_file_type_names_match_llama_file_type() -> None:
    for member in LlamaFileType:
        if member is LlamaFileType.GUESSED:
            continue
        expected = member.name.removeprefix("MOSTLY_").removeprefix("ALL_")
        assert FILE_TYPE_NAMES.get(int(member)) == expected, member


def test_file_types_beyond_gguf_exist_in_llama_cpp() -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    known = {int(m) for m in LlamaFileType}
    for ftype, name in FILE_TYPE_NAMES.items():
        if ftype in known:
            continue
        assert getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}") == ftype


def test_tensor_bytes_uses_block_layout() -> None:
    # 4096 elements of Q4_K = 16 blocks of 144 bytes.
    assert tensor_bytes(int(GGMLQuantizationType.Q4_K), 4096) == 16 * 144
    assert tensor_bytes(int(GGMLQuantizationType.F16), 10) == 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("q4_K_M", "Q4_K_M"),
        ("Q8_0", "Q8_0"),
        ("fp16", "F16"),
        ("bf16", "BF16"),
        ("iq4_xs", "IQ4_XS"),
        ("Q4_K", "Q4_K"),
        ("instruct", None),
        ("1b", None),
        ("", None),
    ],
)
def test_normalize_quant(text: str, expected: str | None) -> None:
    assert normalize_quant(text) == expected

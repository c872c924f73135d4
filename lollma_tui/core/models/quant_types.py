"""ggml tensor types and llama.cpp file types, as plain tables.

Hand-written so that reading a GGUF header never imports numpy or the `gguf` package; the tests
check both tables against `gguf.GGML_QUANT_SIZES` and `gguf.LlamaFileType`.
"""

from __future__ import annotations

from typing import NamedTuple


class GGMLType(NamedTuple):
    name: str
    block_size: int
    """Elements per block."""
    type_size: int
    """Bytes per block."""


# ggml type id -> layout. Ids 4, 5, 31-33 and 36-38 are retired or were never file types.
GGML_TYPES: dict[int, GGMLType] = {
    0: GGMLType("F32", 1, 4),
    1: GGMLType("F16", 1, 2),
    2: GGMLType("Q4_0", 32, 18),
    3: GGMLType("Q4_1", 32, 20),
    6: GGMLType("Q5_0", 32, 22),
    7: GGMLType("Q5_1", 32, 24),
    8: GGMLType("Q8_0", 32, 34),
    9: GGMLType("Q8_1", 32, 40),
    10: GGMLType("Q2_K", 256, 84),
    11: GGMLType("Q3_K", 256, 110),
    12: GGMLType("Q4_K", 256, 144),
    13: GGMLType("Q5_K", 256, 176),
    14: GGMLType("Q6_K", 256, 210),
    15: GGMLType("Q8_K", 256, 292),
    16: GGMLType("IQ2_XXS", 256, 66),
    17: GGMLType("IQ2_XS", 256, 74),
    18: GGMLType("IQ3_XXS", 256, 98),
    19: GGMLType("IQ1_S", 256, 50),
    20: GGMLType("IQ4_NL", 32, 18),
    21: GGMLType("IQ3_S", 256, 110),
    22: GGMLType("IQ2_S", 256, 82),
    23: GGMLType("IQ4_XS", 256, 136),
    24: GGMLType("I8", 1, 1),
    25: GGMLType("I16", 1, 2),
    26: GGMLType("I32", 1, 4),
    27: GGMLType("I64", 1, 8),
    28: GGMLType("F64", 1, 8),
    29: GGMLType("IQ1_M", 256, 56),
    30: GGMLType("BF16", 1, 2),
    34: GGMLType("TQ1_0", 256, 54),
    35: GGMLType("TQ2_0", 256, 66),
    39: GGMLType("MXFP4", 32, 17),
    40: GGMLType("NVFP4", 64, 36),
    41: GGMLType("Q1_0", 128, 18),
}

GGML_TYPE_IDS: dict[str, int] = {t.name: type_id for type_id, t in GGML_TYPES.items()}

# general.file_type (llama_ftype) -> the name people put in file names and Ollama tags.
FILE_TYPE_NAMES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
    41: "Q2_0",
}

FILE_TYPE_IDS: dict[str, int] = {name: ftype for ftype, name in FILE_TYPE_NAMES.items()}

# Spellings seen in Ollama tags and file names that differ from the canonical names.
_ALIASES = {"FP16": "F16", "FP32": "F32", "FP64": "F64", "BFLOAT16": "BF16"}


def ggml_type_name(type_id: int) -> str:
    known = GGML_TYPES.get(type_id)
    return known.name if known is not None else f"type{type_id}"


def tensor_bytes(type_id: int, n_elements: int) -> int:
    """Bytes a tensor of `n_elements` takes in ggml type `type_id` (KeyError if unknown)."""
    layout = GGML_TYPES[type_id]
    return n_elements * layout.type_size // layout.block_size


def bytes_per_element(type_id: int) -> float:
    layout = GGML_TYPES[type_id]
    return layout.type_size / layout.block_size


def normalize_quant(text: str) -> str | None:
    """Canonical quantization name for `text` ("q4_k_m" → "Q4_K_M", "fp16" → "F16"), or None."""
    upper = text.strip().upper().replace("-", "_")
    upper = _ALIASES.get(upper, upper)
    if upper in FILE_TYPE_IDS or upper in GGML_TYPE_IDS:
        return upper
    return None

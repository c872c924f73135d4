"""The limits a GGUF header must stay within, far above any real model.

Any file in a models folder is read, so none may cost more than a bounded amount of time or
memory: the reader refuses a file past these with a reason, and the views computed from a
header (per-layer tables for fit planning) stay small whatever it says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

MAX_HEADER_BYTES: Final = 256 << 20
"""Bytes of header read into memory; real headers (262k-token vocabularies) are 5-20 MiB."""
MAX_STRING_BYTES: Final = 16 << 20
"""One decoded string (chat templates, the longest real ones, are tens of KiB)."""
MAX_ITEMS: Final = 4_000_000
"""Keys, tensors, strings walked and nested-array elements per file: the walk's total work.
Real files stay under 700k (Llama 3: 128k tokens and 280k merges)."""
MAX_ARRAY_DEPTH: Final = 3
"""Arrays inside arrays: no known model writes any, and each level is a Python call."""
MAX_NESTED_ELEMENTS: Final = 1 << 16
"""Elements over all arrays of arrays in one file (each is walked by a Python call)."""
MAX_LAYERS: Final = 4096
"""``block_count`` and ``blk.N`` indices: fit planning allocates per layer (the largest real
models have under 200)."""


def layer_index(name: str) -> int | None:
    """N for a tensor named ``blk.N.*`` (ASCII digits, N < MAX_LAYERS), else None.

    A larger N counts as a tensor outside the layers: per-layer tables stay MAX_LAYERS long
    at most, and llama.cpp refuses such a file with its own message when it is loaded.
    """
    if not name.startswith("blk."):
        return None
    index, _, _ = name[4:].partition(".")
    # str.isdigit() is true for "²" and other digits int() refuses.
    if not (index.isascii() and index.isdigit() and len(index) <= 6):
        return None
    value = int(index)
    return value if value < MAX_LAYERS else None


def check_block_count(kv: Mapping[str, object]) -> str | None:
    """Why the header's layer count cannot be planned with (None when it can)."""
    arch = kv.get("general.architecture")
    if isinstance(arch, str):
        count = kv.get(f"{arch}.block_count")
        if isinstance(count, int) and not isinstance(count, bool) and not 0 <= count <= MAX_LAYERS:
            return f"implausible {arch[:80]}.block_count {count} (at most {MAX_LAYERS} layers)"
    return None

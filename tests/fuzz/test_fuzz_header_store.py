"""Fuzzing the header store: any store file loads without raising, and what it keeps is usable.

Cases are a real store (written by a scan of small models) with places replaced by arbitrary
JSON values or removed, plus arbitrary documents and bytes.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fuzzing import fuzz, json_values, mutated_json
from gguf_bytes import STRING, UINT32, kv, kv_array, small_model
from hypothesis import event, given, strategies as st

from lollma_tui.core.models.catalog import HeaderCache, scan_models
from lollma_tui.core.models.fit import FitParams, check_fit, memory_profile
from lollma_tui.core.models.gguf_header import GGUFHeader
from lollma_tui.core.models.header_store import load_store


def _stored_document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "a.gguf").write_bytes(small_model(name="Alpha"))
        extra = [
            kv_array("llama.attention.head_count_kv", UINT32, [2, 1]),
            kv_array("tokenizer.ggml.tokens", STRING, [f"t{i}" for i in range(70)]),
            kv("x.inf", 6, float("inf")),
        ]
        (root / "b.gguf").write_bytes(small_model(name="Beta", extra_kvs=extra))
        (root / "c.gguf").write_bytes(b"GGUF broken")
        store = root / "headers.json"
        cache = HeaderCache(store)
        scan_models([root], cache=cache)
        cache.save()
        document: dict[str, Any] = json.loads(store.read_text())
        return document


STORED = _stored_document()


def check(content: bytes, *, in_hypothesis: bool = True) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "headers.json"
        store.write_bytes(content)
        loaded = load_store(store)
    if in_hypothesis:
        kept = f"kept {len(loaded.entries)}, dropped {len(loaded.dropped)}"
        event("ignored whole" if loaded.problem else kept)
    for _, result in loaded.entries.values():
        if isinstance(result, GGUFHeader):
            _ = (result.quantization, result.parameter_count, result.layer_weight_bytes, result.vocab_size)
            profile = memory_profile(result)
            check_fit(profile, FitParams(n_gpu_layers=-1), free_vram=8 << 30, free_ram=16 << 30)


@given(document=mutated_json(STORED, changes=4))
@fuzz
def test_a_damaged_store_loads_what_holds(document: Any) -> None:
    check(json.dumps(document).encode())


@given(content=st.one_of(json_values(max_leaves=30).map(lambda v: json.dumps(v).encode()), st.binary()))
@fuzz
def test_any_document_or_bytes_load_without_raising(content: bytes) -> None:
    check(content)


@pytest.mark.parametrize("depth", [500, 5000])
def test_nesting_near_and_past_the_parser_limit(depth: int) -> None:
    document = json.dumps(STORED)
    nested = document.replace('"kv":', '"kv": ' + "[" * depth + "]" * depth + ', "kv2":', 1)
    check(nested.encode(), in_hypothesis=False)

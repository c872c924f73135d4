"""Rows that do not fit a k-quant's 256-element blocks: llama.cpp writes those matrices in
another type, and the plan says which, how many, and how big the file really gets."""

from __future__ import annotations

import re
import shutil
from collections import Counter, namedtuple
from pathlib import Path

import pytest
from gguf_factory import TinyModelSpec, write_tiny_gguf

from lollma_tui.core.models.gguf_header import read_gguf_header
from lollma_tui.core.models.quantize import (
    QuantizeRefused,
    plan_quantization,
    plan_quantizations,
    quantize,
    space_needed,
)

DiskUsage = namedtuple("DiskUsage", "total used free")

ODD_SPEC = TinyModelSpec(n_embd=192, n_head=4, n_head_kv=2, n_ff=320, name="odd-llama")
"""Rows of 192 (n_embd) and 320 (n_ff): multiples of 32, not of 256."""


@pytest.fixture
def odd_source(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return write_tiny_gguf(folder / "odd-llama-f16.gguf", ODD_SPEC)


def matrix_types(path: Path) -> Counter[str]:
    return Counter(t.type_name for t in read_gguf_header(path).tensors if len(t.shape) >= 2)


@pytest.mark.parametrize(
    ("target", "written", "as_text"),
    [
        # Q6_K -> Q8_0 everywhere: the "Q6_K" file is the Q8_0 file.
        ("Q6_K", {"Q8_0": 16}, "Q8_0"),
        # Q4_K -> Q5_0; the mix's Q6_K (one attn_v, one ffn_down) and output.weight -> Q8_0.
        ("Q4_K_M", {"Q5_0": 13, "Q8_0": 3}, "Q5_0 (13) and Q8_0 (3)"),
        ("Q2_K", {"Q4_0": 15, "Q8_0": 1}, "Q4_0 (15) and Q8_0 (1)"),
        # Rows fit Q4_0's 32-element blocks: nothing to warn about (output.weight's Q6_K
        # falls back to Q8_0, which the estimate counts).
        ("Q4_0", {"Q4_0": 15, "Q8_0": 1}, None),
    ],
)
def test_the_plan_says_what_llama_cpp_writes_for_rows_that_do_not_fit(
    odd_source: Path, tmp_path: Path, target: str, written: dict[str, int], as_text: str | None
) -> None:
    plan = plan_quantization(odd_source, target)
    result = quantize(plan, threads=1, log_path=tmp_path / "q.log")
    assert matrix_types(result.output) == written
    warning = (
        f"16 of 16 matrices cannot be {target} (rows of 192 and 320 are not a multiple of 256): "
        f"llama.cpp writes them as {as_text}"
    )
    fallbacks = [w for w in plan.warnings if "cannot be" in w]
    assert fallbacks == ([warning] if as_text else [])
    # The estimate follows the types really written (it said ≈ 834 KiB for every type), and
    # errs on the high side, as the disk check wants.
    assert plan.estimated_bytes >= result.size_bytes
    assert plan.estimated_bytes == pytest.approx(result.size_bytes, rel=0.01)


def test_a_re_quantization_that_grows_the_file_says_so(odd_source: Path, tmp_path: Path) -> None:
    # SmolLM2's rows are 576 wide: its Q4_1 re-quantized to "Q4_K_M" (mostly Q5_0 and Q8_0)
    # came out bigger than the source, without a word (4.89 bits per weight < 5.0, said the table).
    q4_1 = quantize(plan_quantization(odd_source, "Q4_1"), log_path=tmp_path / "q.log").output
    plan = plan_quantization(q4_1, "Q4_K_M", output_dir=tmp_path, allow_requantize=True)
    bigger = [w for w in plan.warnings if "bigger than the source" in w]
    assert len(bigger) == 1 and "Q4_K_M cannot restore what Q4_1 lost" in bigger[0]
    result = quantize(plan, log_path=tmp_path / "q.log")
    assert result.size_bytes > q4_1.stat().st_size
    # And not where it shrinks.
    smaller = plan_quantization(q4_1, "Q4_0", output_dir=tmp_path, allow_requantize=True)
    assert not [w for w in smaller.warnings if "bigger" in w]


def test_needed_and_free_space_never_read_the_same(odd_source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "Q4_0 needs about 1.5 MiB, 1.5 MiB free": a few KiB short, rounded to one decimal.
    needed = space_needed(plan_quantization(odd_source, "Q4_0").estimated_bytes)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(1 << 40, 0, needed - 3000))
    with pytest.raises(QuantizeRefused) as refused:
        plan_quantization(odd_source, "Q4_0")
    match = re.search(r"needs about (.+), (.+) free$", str(refused.value))
    assert match is not None and match[1] != match[2]
    # Two files that fit one at a time, not together, one byte short.
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(1 << 40, 0, 1 << 40))
    both = sum(p.estimated_bytes for p in plan_quantizations(odd_source, ["Q4_0", "Q2_K"]))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(1 << 40, 0, space_needed(both) - 1))
    with pytest.raises(QuantizeRefused) as refused:
        plan_quantizations(odd_source, ["Q4_0", "Q2_K"])
    match = re.search(r"about (.+) needed, (.+) free$", str(refused.value))
    assert match is not None and match[1] != match[2]

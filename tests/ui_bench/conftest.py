"""Fixtures for the bench and quantize screen tests: real tiny GGUF models in their own folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gguf import LlamaFileType
from gguf_factory import SLOW_PREFILL_SPEC, TinyModelSpec, quantize_gguf, write_tiny_gguf

KQUANT_SPEC = TinyModelSpec(n_embd=256, n_ff=512)
"""k-quants need rows that are multiples of 256."""


@pytest.fixture(scope="session")
def bench_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one model in two quantizations: F16 and Q8_0 (made by llama.cpp)."""
    folder = tmp_path_factory.mktemp("bench-models")
    source = write_tiny_gguf(folder / "tiny-llama-f16.gguf", KQUANT_SPEC)
    quantize_gguf(source, folder / "tiny-llama-Q8_0.gguf", LlamaFileType.MOSTLY_Q8_0)
    return folder


@pytest.fixture(scope="session")
def f16_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("f16") / "tiny-llama-f16.gguf", KQUANT_SPEC)


@pytest.fixture
def source_copy(tmp_path: Path, f16_model: Path) -> Path:
    """A private copy of the F16 model: outputs land next to it, in this test's own folder."""
    folder = tmp_path / "models"
    folder.mkdir()
    return Path(shutil.copyfile(f16_model, folder / f16_model.name))


@pytest.fixture
def slow_source(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-layer model that takes a couple of seconds to quantize on one thread."""
    folder = tmp_path / "slow"
    folder.mkdir()
    return write_tiny_gguf(folder / "tiny-slow-f16.gguf", SLOW_PREFILL_SPEC)

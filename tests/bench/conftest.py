"""Fixtures for the bench and quantize tests: quant variants of the tiny model, made once with
our own quantizer, and the Ollama test server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gguf_factory import TinyModelSpec, write_tiny_gguf

# tests/ is on sys.path; importing the fixture here makes it available to this folder.
from ollama_server.fixtures import dead_ollama_host, ollama_server

from lollma_tui.core.models.quantize import plan_quantization, quantize

__all__ = ["dead_ollama_host", "ollama_server"]

KQUANT_SPEC = TinyModelSpec(n_embd=256, n_ff=512)
"""k-quants need rows that are multiples of 256."""


@pytest.fixture(scope="session")
def f16_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model in F16, alone in its folder (copy it before writing next to it)."""
    return write_tiny_gguf(tmp_path_factory.mktemp("f16") / "tiny-llama-f16.gguf", KQUANT_SPEC)


@pytest.fixture(scope="session")
def quant_dir(tmp_path_factory: pytest.TempPathFactory, f16_source: Path) -> Path:
    """A folder with the tiny model in F16, Q8_0 and Q4_K_M, the latter two made by `quantize`."""
    folder = tmp_path_factory.mktemp("quants")
    source = folder / f16_source.name
    shutil.copyfile(f16_source, source)
    for target in ("Q8_0", "Q4_K_M"):
        quantize(plan_quantization(source, target), log_path=folder.parent / "quantize.log")
    return folder


@pytest.fixture
def source_copy(tmp_path: Path, f16_source: Path) -> Path:
    """A private copy of the F16 model, so outputs land in this test's own folder."""
    folder = tmp_path / "models"
    folder.mkdir()
    return Path(shutil.copyfile(f16_source, folder / f16_source.name))

"""Fixtures for tests that quantize or bench: the k-quant-ready tiny model and variants of it made
by our own quantizer. Registered for the whole tree by `pytest_plugins` in tests/conftest.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gguf_factory import KQUANT_SPEC, write_tiny_gguf

from lollma_tui.core.models.quantize import plan_quantization, quantize


@pytest.fixture(scope="session")
def f16_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model in F16, alone in its folder (copy it before writing next to it)."""
    return write_tiny_gguf(tmp_path_factory.mktemp("f16") / "tiny-llama-f16.gguf", KQUANT_SPEC)


@pytest.fixture(scope="session")
def quantized_models(tmp_path_factory: pytest.TempPathFactory, f16_source: Path) -> Path:
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

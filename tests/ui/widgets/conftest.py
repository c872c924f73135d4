"""Real catalogs for the settings drawer: GGUF files on disk, and Ollama tag records."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import LlamaFileType
from gguf_factory import TinyModelSpec, quantize_gguf, write_tiny_gguf

from lollma_tui.core.models.catalog import Catalog, scan_models
from lollma_tui.core.models.fit import FitParams, estimate_memory
from lollma_tui.core.models.ollama_tags import group_ollama_models
from lollma_tui.core.settings import LoadSettings

MiB = 1 << 20
GiB = 1 << 30

WIDE_SPEC = TinyModelSpec(name="tiny-wide", n_layer=4, n_ctx_train=16384, seed=1)
"""A second model: more layers and a longer training context than tiny-llama."""


@pytest.fixture(scope="session")
def drawer_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("drawer-models")
    f16 = write_tiny_gguf(folder / "tiny-llama-F16.gguf")
    quantize_gguf(f16, folder / "tiny-llama-Q8_0.gguf", LlamaFileType.MOSTLY_Q8_0)
    write_tiny_gguf(folder / "tiny-wide-F16.gguf", WIDE_SPEC)
    return folder


@pytest.fixture(scope="session")
def llama_catalog(drawer_models: Path) -> Catalog:
    catalog = scan_models([drawer_models])
    # The drawer's tests lean on this shape; fail here, loudly, if the scan groups differently.
    assert [(g.name, g.quants) for g in catalog.groups] == [
        ("tiny-llama", ("Q8_0", "F16")),
        ("tiny-wide", ("F16",)),
    ]
    return catalog


def ollama_record(name: str, size: int, digest: str, quant: str) -> dict[str, object]:
    return {
        "model": name,
        "size": size,
        "digest": digest,
        "details": {"family": "llama", "parameter_size": "3.2B", "quantization_level": quant},
    }


@pytest.fixture(scope="session")
def ollama_catalog() -> Catalog:
    return group_ollama_models(
        [
            ollama_record("llama3.2:3b-instruct-q4_K_M", 2 * GiB, "a" * 64, "Q4_K_M"),
            ollama_record("llama3.2:3b-instruct-q8_0", 3 * GiB + 400 * MiB, "b" * 64, "Q8_0"),
            ollama_record("llama3.2:latest", 2 * GiB, "a" * 64, "Q4_K_M"),
        ]
    )


@pytest.fixture
def f16_path(drawer_models: Path) -> str:
    return str(drawer_models / "tiny-llama-F16.gguf")


@pytest.fixture
def q8_path(drawer_models: Path) -> str:
    return str(drawer_models / "tiny-llama-Q8_0.gguf")


@pytest.fixture
def tight_vram(llama_catalog: Catalog, f16_path: str) -> int:
    """Free VRAM that holds one layer of tiny-llama F16 (at default settings) but not two."""
    found = llama_catalog.find(f16_path)
    assert found is not None and found[1].header is not None
    header = found[1].header
    one = estimate_memory(header, FitParams.from_settings(LoadSettings(model=f16_path, n_gpu_layers=1)))
    two = estimate_memory(header, FitParams.from_settings(LoadSettings(model=f16_path, n_gpu_layers=2)))
    assert one.vram_total < two.vram_total
    return one.vram_total

"""Fixtures for the header, catalog and fit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gguf_model_writer import ModelSpec, write_model

from lollma_tui.core.models import catalog as catalog_module


@pytest.fixture
def model_factory(tmp_path: Path) -> Any:
    """Call with a file name and ModelSpec fields; returns the path of the first file."""

    def make(filename: str = "model.gguf", folder: Path | None = None, **fields: Any) -> Path:
        target = (folder or tmp_path) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_model(target, ModelSpec(**fields))[0]

    return make


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every header the catalog parses from a file, in order."""
    seen: list[Path] = []
    real = catalog_module.read_gguf_header

    def counting(path: Any) -> Any:
        seen.append(Path(path))
        return real(path)

    monkeypatch.setattr(catalog_module, "read_gguf_header", counting)
    return seen

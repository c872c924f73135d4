"""Fixtures for the screen tests: a real history store, and real tiny GGUF models in their own
folders for the bench and quantize screens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gguf import LlamaFileType
from gguf_factory import KQUANT_SPEC, SLOW_PREFILL_SPEC, quantize_gguf, write_tiny_gguf
from history_support import FakeClock

from lollma_tui.core.chat.store import ChatStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    opened = ChatStore.open(tmp_path / "screens" / "history.db", wall_clock=FakeClock())
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def bench_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one model in two quantizations: F16 and Q8_0 (made by llama.cpp)."""
    folder = tmp_path_factory.mktemp("bench-models")
    source = write_tiny_gguf(folder / "tiny-llama-f16.gguf", KQUANT_SPEC)
    quantize_gguf(source, folder / "tiny-llama-Q8_0.gguf", LlamaFileType.MOSTLY_Q8_0)
    return folder


@pytest.fixture
def slow_source(tmp_path: Path) -> Path:
    """A 4-layer model that takes a couple of seconds to quantize on one thread."""
    folder = tmp_path / "slow"
    folder.mkdir()
    return write_tiny_gguf(folder / "tiny-slow-f16.gguf", SLOW_PREFILL_SPEC)

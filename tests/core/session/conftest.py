"""Fixtures for the hot-swap tests: real backends (a llama.cpp worker on tiny GGUFs, Ollama on the
test server), a model folder holding the tiny model in F16 and Q8_0, and helpers to chat."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from gguf import LlamaFileType
from gguf_factory import quantize_gguf, write_tiny_gguf
from ollama_server import OllamaTestServer
from swap_support import GREEDY, Factory

from lollma_tui.core.backends.base import Backend
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.backends.ollama import OllamaBackend
from lollma_tui.core.session import ModelSession
from lollma_tui.core.settings import BackendKind, LoadSettings


@pytest.fixture(scope="session")
def swap_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder with tiny-llama in F16 and in Q8_0 (derived with llama_model_quantize)."""

    folder = tmp_path_factory.mktemp("quants")
    f16 = write_tiny_gguf(folder / "tiny-llama-F16.gguf")
    quantize_gguf(f16, folder / "tiny-llama-Q8_0.gguf", LlamaFileType.MOSTLY_Q8_0)
    return folder


@pytest.fixture
def tiny_f16(swap_models: Path) -> Path:
    return swap_models / "tiny-llama-F16.gguf"


@pytest.fixture
def tiny_q8(swap_models: Path) -> Path:
    return swap_models / "tiny-llama-Q8_0.gguf"


@pytest.fixture
def corrupt_gguf(tmp_path: Path, tiny_f16: Path) -> Path:
    """A download cut short: the header claims tensor data that is not there."""
    path = tmp_path / "corrupt.gguf"
    path.write_bytes(tiny_f16.read_bytes()[:200_000])
    return path


@pytest.fixture
def movable_gguf(tmp_path: Path, tiny_f16: Path) -> Path:
    """A private copy of the tiny model that a test may delete."""
    return Path(shutil.copy(tiny_f16, tmp_path / "movable-F16.gguf"))


@pytest.fixture
def llama_only(tmp_path: Path) -> Factory:
    def make(kind: BackendKind) -> Backend:
        assert kind is BackendKind.LLAMA_CPP, "this test only uses llama.cpp"
        return LlamaCppBackend(log_path=tmp_path / "llama.log")

    return make


@pytest.fixture
def both_backends(tmp_path: Path, ollama_server: OllamaTestServer) -> Factory:
    def make(kind: BackendKind) -> Backend:
        if kind is BackendKind.OLLAMA:
            return OllamaBackend(ollama_server.host, timeout_s=5.0, connect_timeout_s=2.0)
        return LlamaCppBackend(log_path=tmp_path / "llama.log")

    return make


@pytest.fixture
async def sessions() -> AsyncIterator[list[ModelSession]]:
    """Sessions a test made; closed afterwards so no worker outlives its test."""
    made: list[ModelSession] = []
    yield made
    for session in made:
        await session.close()


@pytest.fixture
def make_session(sessions: list[ModelSession]) -> Callable[..., ModelSession]:
    def make(factory: Factory, settings: LoadSettings, **kwargs: object) -> ModelSession:
        session = ModelSession(factory, settings, GREEDY, **kwargs)  # type: ignore[arg-type]
        sessions.append(session)
        return session

    return make

"""Shared fixtures: isolated user folders, and real GGUF models built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import LlamaFileType
from gguf_factory import SLOW_PREFILL_SPEC, TinyModelSpec, quantize_gguf, write_tiny_gguf

# Fixtures that tests in several folders need; their modules live in tests/support.
pytest_plugins = ["ollama_server.fixtures", "quant_fixtures", "sshd_fixtures"]


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests out of the developer's real config, history and logs."""
    for name in ("DATA", "STATE", "CONFIG"):
        folder = tmp_path / f"lollma-{name.lower()}"
        monkeypatch.setenv(f"LOLLMA_{name}_DIR", str(folder))
    # The demo model is assembled once per session into a shared cache folder.
    monkeypatch.setenv("LOLLMA_CACHE_DIR", str(session_cache))
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_gguf(models_dir: Path) -> Path:
    """A 2-layer random-weight llama with a chat template (about 3 MB)."""
    return write_tiny_gguf(models_dir / "tiny-llama-f16.gguf")


@pytest.fixture(scope="session")
def repacked_gguf(tiny_gguf: Path) -> Path:
    """The tiny llama in IQ4_NL: llama.cpp repacks it on every CPU it builds for (AVX2 and
    AVX-512, AMX Xeons included, ARM), and it runs there. Q4_0 is repacked too, but on AMX
    Xeons into the AMX buffer, whose matmul segfaults on this model (llama.cpp#20824)."""
    return quantize_gguf(
        tiny_gguf, tiny_gguf.with_name("tiny-llama-IQ4_NL.gguf"), LlamaFileType.MOSTLY_IQ4_NL
    )


@pytest.fixture(scope="session")
def tiny_gguf_no_template(models_dir: Path) -> Path:
    return write_tiny_gguf(models_dir / "tiny-llama-notemplate.gguf", TinyModelSpec(chat_template=None))


@pytest.fixture(scope="session")
def slow_gguf(models_dir: Path) -> Path:
    """Big enough that a long prompt takes seconds on one thread."""
    return write_tiny_gguf(models_dir / "tiny-slow-f16.gguf", SLOW_PREFILL_SPEC)


@pytest.fixture(scope="session")
def demo_gguf(session_cache: Path) -> Path:
    """The real Gemma 3 270M Q4_K_M base model from its demo package, assembled once."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LOLLMA_CACHE_DIR", str(session_cache))
    try:
        from lollma_tui.core.models.demo import GEMMA, ensure_demo_model

        return ensure_demo_model(GEMMA)
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 (the default demo), where its package installed it."""
    from lollma_tui.core.models.demo import SMOLLM2, ensure_demo_model

    return ensure_demo_model(SMOLLM2)

"""Fixtures for the backend tests: the Ollama and OpenAI-compatible test servers (real HTTP on
127.0.0.1) and backends on them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ollama_server import OllamaTestServer
from openai_server.fixtures import any_flavour_server, llama_server, make_openai_backend, real_openai_server

from lollma_tui.core.backends.ollama import OllamaBackend

make_backend = make_openai_backend

__all__ = ["any_flavour_server", "llama_server", "make_backend", "real_openai_server"]


@pytest.fixture
async def backend(ollama_server: OllamaTestServer) -> AsyncIterator[OllamaBackend]:
    """An OllamaBackend on the test server, with short timeouts so a hang fails fast."""
    instance = OllamaBackend(ollama_server.host, timeout_s=5.0, connect_timeout_s=2.0)
    yield instance
    await instance.close()

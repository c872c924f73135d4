"""Fixtures for the Ollama tests: the test server (real HTTP on 127.0.0.1) and a backend on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ollama_server import OllamaTestServer

from lollma_tui.core.backends.ollama import OllamaBackend


@pytest.fixture
async def backend(ollama_server: OllamaTestServer) -> AsyncIterator[OllamaBackend]:
    """An OllamaBackend on the test server, with short timeouts so a hang fails fast."""
    instance = OllamaBackend(ollama_server.host, timeout_s=5.0, connect_timeout_s=2.0)
    yield instance
    await instance.close()

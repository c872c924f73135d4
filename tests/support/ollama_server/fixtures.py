"""Pytest fixtures for the Ollama test server, registered for the whole tree by `pytest_plugins` in
tests/conftest.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from .server import OllamaTestServer, free_port


@pytest.fixture
def ollama_server() -> Iterator[OllamaTestServer]:
    """A fresh server with the default models and the scripted engine, stopped after the test."""
    with OllamaTestServer() as server:
        yield server


@pytest.fixture
def dead_ollama_host() -> str:
    """``127.0.0.1:PORT`` with nothing listening: what a client sees when Ollama is not running."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def silent_ollama_host() -> Iterator[str]:
    """``127.0.0.1:PORT`` where connections are taken and never answered: a wedged server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # the kernel completes the handshakes; no request is ever read
        yield f"127.0.0.1:{listener.getsockname()[1]}"

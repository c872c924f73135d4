"""Fixtures for the OpenAI-compatible backend: the protocol test server and backends on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from openai_server import OpenAITestServer
from openai_server.fixtures import any_flavour_server, llama_server

from lollma_tui.core.backends.openai import OpenAIBackend

__all__ = ["any_flavour_server", "llama_server"]


@pytest.fixture
async def make_backend() -> AsyncIterator[Callable[..., OpenAIBackend]]:
    """Builds OpenAIBackends with short timeouts (so a hang fails fast) and closes them."""
    made: list[OpenAIBackend] = []

    def build(url: str, **kwargs: object) -> OpenAIBackend:
        kwargs.setdefault("timeout_s", 10.0)
        kwargs.setdefault("connect_timeout_s", 2.0)
        backend = OpenAIBackend(url, **kwargs)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.close()


@pytest.fixture
async def backend(
    llama_server: OpenAITestServer, make_backend: Callable[..., OpenAIBackend]
) -> OpenAIBackend:
    return make_backend(llama_server.base_url)

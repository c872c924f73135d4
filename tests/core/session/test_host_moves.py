"""Swaps that move to another host: the backend is rebuilt for that server, the session stays
there for later swaps, and a move that fails goes back to the host and model it left."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ollama_server import OllamaTestServer
from openai_server import Flavour, OpenAITestServer, ServedSpec
from openai_server.fixtures import free_port
from swap_support import ask

from lollma_tui.core.backends.base import Backend
from lollma_tui.core.backends.factory import make_server_backend
from lollma_tui.core.hosts import HostEntry
from lollma_tui.core.session import ModelSession
from lollma_tui.core.settings import BackendKind, LoadSettings


@pytest.fixture
def servers() -> Iterator[tuple[OpenAITestServer, OpenAITestServer]]:
    with (
        OpenAITestServer(Flavour.LLAMA_SERVER, models=[ServedSpec("box-model")]) as box,
        OpenAITestServer(Flavour.LM_STUDIO, models=[ServedSpec("studio-model")]) as studio,
    ):
        yield box, studio


def _host_backend(entry: HostEntry) -> Backend:
    return make_server_backend(entry.kind, entry.url, api_key_env=entry.api_key_env)


async def test_a_move_rebuilds_the_backend_for_that_server_and_stays_there(
    servers: tuple[OpenAITestServer, OpenAITestServer], ollama_server: OllamaTestServer
) -> None:
    box_server, studio_server = servers
    box = HostEntry("box", BackendKind.OPENAI, box_server.base_url)
    studio = HostEntry("studio", BackendKind.OPENAI, studio_server.base_url)
    den = HostEntry("den", BackendKind.OLLAMA, ollama_server.url)
    start = LoadSettings(backend=BackendKind.OPENAI, model="box-model")
    session = ModelSession(lambda kind: _host_backend(box), start, host_factory=_host_backend, host=box)
    try:
        assert (await session.load()).ok
        first_backend = session.backend
        moved = await session.swap(start.with_changes(model="studio-model"), host=studio)
        assert moved.ok, moved.message
        assert session.host == studio and session.backend is not first_backend
        text, done = await ask(session)
        assert text and done.stats.setup.server == studio_server.base_url
        assert [r.body["model"] for r in studio_server.chat_requests()][-1] == "studio-model"
        # Without a host the session stays on this one while the kind stays.
        again = await session.swap(start.with_changes(model="studio-model", n_ctx=8192))
        assert again.ok and session.host == studio
        to_ollama = LoadSettings(backend=BackendKind.OLLAMA, model="tinyllama:1b-q4_K_M")
        assert (await session.swap(to_ollama, host=den)).ok
        assert session.host == den and session.kind is BackendKind.OLLAMA
        _, done = await ask(session)
        assert done.stats.setup.server == ollama_server.url
    finally:
        await session.close()


async def test_a_move_to_a_host_that_is_down_stays_on_the_host_it_was_on(
    servers: tuple[OpenAITestServer, OpenAITestServer],
) -> None:
    box_server, _ = servers
    box = HostEntry("box", BackendKind.OPENAI, box_server.base_url)
    gone = HostEntry("gone", BackendKind.OPENAI, f"http://127.0.0.1:{free_port()}/v1")
    start = LoadSettings(backend=BackendKind.OPENAI, model="box-model")
    session = ModelSession(lambda kind: _host_backend(box), start, host_factory=_host_backend, host=box)
    try:
        assert (await session.load()).ok
        result = await session.swap(start.with_changes(model="whatever"), host=gone)
        # Asked before box's model is let go: refused, and nothing had to be loaded back.
        assert not result.ok and result.refused, result.message
        assert "No OpenAI-compatible server answers" in result.message
        assert "still on box-model" in result.message
        assert session.host == box and session.settings.model == "box-model"
        _, done = await ask(session)
        assert done.stats.setup.server == box_server.base_url
    finally:
        await session.close()


async def test_a_host_of_another_kind_is_refused() -> None:
    box = HostEntry("box", BackendKind.OPENAI, "http://box:8080/v1")
    session = ModelSession(lambda kind: _host_backend(box), LoadSettings(backend=BackendKind.OPENAI))
    try:
        with pytest.raises(ValueError, match="box runs openai, not ollama"):
            await session.swap(LoadSettings(backend=BackendKind.OLLAMA, model="x"), host=box)
    finally:
        await session.close()

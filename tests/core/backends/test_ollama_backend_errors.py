"""Every way Ollama fails, as the backend reports it: the right `BackendError` subclass, one
clear line, and a backend that works again once the cause is gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from ollama_server import OllamaTestServer, Script
from ollama_test_support import Q4, collect, ollama_settings, user

from lollma_tui.core.backends.base import (
    BackendCrashedError,
    BackendError,
    BackendState,
    BackendUnavailableError,
    ChatEvent,
    ModelLoadError,
    ModelNotFoundError,
    TextDelta,
)
from lollma_tui.core.backends.ollama import OllamaBackend
from lollma_tui.core.settings import SamplingSettings


async def drain(
    events: AsyncIterator[ChatEvent],
    received: list[ChatEvent],
    after: tuple[int, Callable[[], Awaitable[object]]] | None = None,
) -> None:
    """Read a reply into `received`, running `after[1]` once `after[0]` events have arrived."""
    async for event in events:
        received.append(event)
        if after is not None and len(received) == after[0]:
            await after[1]()


def assert_one_line(error: BaseException) -> None:
    text = str(error)
    assert text
    assert "\n" not in text
    assert len(text) < 300


async def test_server_not_running(dead_ollama_host: str) -> None:
    backend = OllamaBackend(dead_ollama_host, connect_timeout_s=1.0)
    url = f"http://{dead_ollama_host}"
    # Non-streaming calls (the client raises ConnectionError) ...
    with pytest.raises(BackendUnavailableError) as listing:
        await backend.list_models()
    assert str(listing.value) == f"Ollama is not reachable at {url} — is `ollama serve` running?"
    with pytest.raises(BackendUnavailableError):
        await backend.load(ollama_settings())
    assert backend.status.state is BackendState.FAILED
    # ... and streaming ones (a raw httpx.ConnectError) read the same.
    with pytest.raises(BackendUnavailableError) as pulling:
        async for _ in backend.pull(Q4):
            pass
    assert str(pulling.value) == str(listing.value)
    with pytest.raises(BackendUnavailableError):
        await backend.version()
    assert await backend.ping() is None
    await backend.close()


async def test_server_stops_between_requests_then_comes_back() -> None:
    server = OllamaTestServer().start()
    backend = OllamaBackend(server.host, timeout_s=5.0)
    try:
        await backend.load(ollama_settings())
        server.stop()
        with pytest.raises(BackendUnavailableError) as down:
            await collect(backend.stream_chat(user("hi"), SamplingSettings()))
        assert "is `ollama serve` running?" in str(down.value)
        assert backend.status.state is BackendState.FAILED
        assert backend.loaded is not None  # the next message simply tries again

        server = OllamaTestServer(port=server.port).start()
        assert await backend.ping() == "0.33.0"
        text, _, done = await collect(backend.stream_chat(user("hi"), SamplingSettings()))
        assert text == Script().text
        assert done.finish_reason == "stop"
        assert backend.status.state is BackendState.READY
    finally:
        await backend.close()
        server.stop()


async def test_server_dies_mid_reply() -> None:
    server = OllamaTestServer().start()
    backend = OllamaBackend(server.host, timeout_s=5.0)
    try:
        await backend.load(ollama_settings())
        server.queue_reply(Script(text=" ".join(["word"] * 100), tokens_per_second=50))
        received: list[ChatEvent] = []
        stop = (2, lambda: asyncio.to_thread(server.stop))
        with pytest.raises(BackendCrashedError) as crashed:
            await drain(backend.stream_chat(user("hi"), SamplingSettings()), received, stop)
        assert len(received) >= 2
        assert str(crashed.value) == (
            "Ollama closed the connection mid-reply; the conversation is kept, "
            "and Ctrl+R or your next message tries again."
        )
    finally:
        await backend.close()
        server.stop()


async def test_unknown_model(backend: OllamaBackend, ollama_server: OllamaTestServer) -> None:
    with pytest.raises(ModelNotFoundError) as missing:
        await backend.load(ollama_settings("llama9:70b"))
    assert str(missing.value) == (
        "Ollama has no model 'llama9:70b' — /pull llama9:70b downloads it (or `ollama pull llama9:70b`)."
    )
    assert backend.status.state is BackendState.FAILED
    with pytest.raises(ModelNotFoundError):
        await backend.show("llama9:70b")
    with pytest.raises(ModelNotFoundError) as deleting:
        await backend.delete("llama9:70b")
    assert str(deleting.value) == "Ollama has no model 'llama9:70b' to delete."
    with pytest.raises(ModelNotFoundError) as pulling:
        async for _ in backend.pull("llama9:70b"):
            pass
    assert "library has no model 'llama9:70b'" in str(pulling.value)
    assert (await backend.load(ollama_settings(Q4))).name == Q4


async def test_the_model_is_deleted_while_loaded(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    await backend.load(ollama_settings(Q4))
    await backend.delete(Q4)
    with pytest.raises(ModelNotFoundError, match="downloads it"):
        await collect(backend.stream_chat(user("hi"), SamplingSettings()))


async def test_error_line_inside_the_stream(backend: OllamaBackend, ollama_server: OllamaTestServer) -> None:
    await backend.load(ollama_settings())
    ollama_server.fail_stream("an error was encountered while running the model: CUDA error", after=3)
    received: list[ChatEvent] = []
    with pytest.raises(BackendCrashedError) as crashed:
        await drain(backend.stream_chat(user("hi"), SamplingSettings()), received)
    assert len(received) == 3
    assert all(isinstance(e, TextDelta) for e in received)
    assert (
        str(crashed.value)
        == "Ollama failed mid-reply: an error was encountered while running the model: CUDA error"
    )
    assert backend.status.state is BackendState.FAILED
    text, _, _ = await collect(backend.stream_chat(user("hi"), SamplingSettings()))
    assert text == Script().text
    assert backend.status.state is BackendState.READY


async def test_load_failure_is_a_model_load_error(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    ollama_server.fail_next_load(
        "llama runner process has terminated: error loading model: unknown model architecture"
    )
    with pytest.raises(ModelLoadError) as failed:
        await backend.load(ollama_settings(Q4))
    assert str(failed.value) == (
        f"Ollama could not load {Q4}: llama runner process has terminated: "
        "error loading model: unknown model architecture"
    )
    assert_one_line(failed.value)
    assert backend.status.state is BackendState.FAILED
    assert backend.loaded is None
    assert (await backend.load(ollama_settings(Q4))).name == Q4
    await collect(backend.stream_chat(user("hi"), SamplingSettings()))


async def test_too_many_gpu_layers_for_the_vram() -> None:
    with OllamaTestServer(vram_bytes=256 * 1024**2) as server:
        backend = OllamaBackend(server.host, timeout_s=5.0)
        with pytest.raises(ModelLoadError, match="out of memory"):
            await backend.load(ollama_settings(Q4, n_gpu_layers=-1))
        # The app's rollback: back to settings that fit.
        loaded = await backend.load(ollama_settings(Q4, n_gpu_layers=2))
        assert loaded.n_gpu_layers == 2
        await backend.close()


async def test_slow_first_token_times_out(ollama_server: OllamaTestServer) -> None:
    backend = OllamaBackend(ollama_server.host, timeout_s=0.3)
    await backend.load(ollama_settings())
    ollama_server.delay_first_token(2.0)
    with pytest.raises(BackendUnavailableError) as timed_out:
        await collect(backend.stream_chat(user("hi"), SamplingSettings()))
    assert str(timed_out.value) == "Ollama stopped answering (nothing received within 0.3 s)."
    await ollama_server.until(lambda: ollama_server.disconnects)  # the server saw the client go
    ollama_server.clear_faults()
    text, _, _ = await collect(backend.stream_chat(user("hi"), SamplingSettings()))
    assert text == Script().text
    await backend.close()


async def test_slow_load_times_out(ollama_server: OllamaTestServer) -> None:
    backend = OllamaBackend(ollama_server.host, timeout_s=0.3)
    ollama_server.delay_load(2.0)
    with pytest.raises(ModelLoadError) as timed_out:
        await backend.load(ollama_settings(Q4))
    assert (
        str(timed_out.value) == f"Ollama did not finish loading {Q4} within 0.3 s; it may still be loading."
    )
    await ollama_server.until(lambda: ollama_server.records.abandoned)
    ollama_server.clear_faults()
    assert (await backend.load(ollama_settings(Q4))).name == Q4
    await backend.close()


async def test_a_rejected_request_is_a_plain_backend_error(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    with pytest.raises(BackendError) as rejected:
        await backend.load(ollama_settings(Q4, keep_alive="5 minutes"))
    assert type(rejected.value) is BackendError
    assert str(rejected.value) == (
        'Ollama rejected the request: time: unknown unit " minutes" in duration "5 minutes"'
    )


async def test_only_one_reply_at_a_time(backend: OllamaBackend, ollama_server: OllamaTestServer) -> None:
    await backend.load(ollama_settings())
    ollama_server.queue_reply(Script(text="a b c d e f", tokens_per_second=20))
    first = backend.stream_chat(user("one"), SamplingSettings())
    await anext(first)  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="already streaming"):
        await collect(backend.stream_chat(user("two"), SamplingSettings()))
    await first.aclose()  # type: ignore[attr-defined]


async def test_chat_before_load(backend: OllamaBackend) -> None:
    with pytest.raises(ModelLoadError, match="No Ollama model is loaded"):
        await collect(backend.stream_chat(user("hi"), SamplingSettings()))

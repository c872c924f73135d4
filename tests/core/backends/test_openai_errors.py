"""Failures become the same kinds of errors, and the same one-line messages, as with Ollama."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from openai_helpers import done_of, openai_settings, reply, text_of
from openai_server import Flavour, OpenAITestServer, Script
from openai_server.fixtures import free_port

from lollma_tui.core.backends import openai as openai_backend
from lollma_tui.core.backends.base import (
    BackendCrashedError,
    BackendError,
    BackendState,
    BackendUnavailableError,
    ModelLoadError,
    ModelNotFoundError,
)
from lollma_tui.core.backends.openai import OpenAIBackend

Factory = Callable[..., OpenAIBackend]


async def loaded_backend(server: OpenAITestServer, make_backend: Factory, **kwargs: object) -> OpenAIBackend:
    backend = make_backend(server.base_url, **kwargs)
    await backend.load(openai_settings(server.models[0].id))
    return backend


async def test_connection_refused_says_no_server_answers(make_backend: Factory) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = make_backend(url)
    with pytest.raises(BackendUnavailableError) as caught:
        await backend.load(openai_settings("any"))
    assert str(caught.value) == f"No OpenAI-compatible server answers at {url} — is it running?"
    assert backend.status.state is BackendState.FAILED


async def test_a_missing_key_names_the_variable_to_set(
    make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MY_SERVER_KEY", raising=False)
    with OpenAITestServer(Flavour.VLLM, api_key="s3cret") as server:
        backend = make_backend(server.base_url, api_key_env="MY_SERVER_KEY")
        with pytest.raises(
            BackendUnavailableError, match=r"needs an API key \(401\): put it in \$MY_SERVER_KEY"
        ):
            await backend.load(openai_settings(server.models[0].id))


async def test_the_key_is_read_from_the_named_variable(
    make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SERVER_KEY", "s3cret")
    with OpenAITestServer(Flavour.VLLM, api_key="s3cret") as server:
        backend = make_backend(server.base_url, api_key_env="MY_SERVER_KEY")
        await backend.load(openai_settings(server.models[0].id))
        assert text_of(await reply(backend))
        assert server.chat_requests()[-1].authorization == "Bearer s3cret"


async def test_a_wrong_key_is_reported_as_rejected(
    make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    with OpenAITestServer(Flavour.VLLM, api_key="s3cret") as server:
        backend = make_backend(server.base_url)
        with pytest.raises(
            BackendUnavailableError, match=r"rejected the API key in \$OPENAI_API_KEY \(401\)"
        ):
            await backend.load(openai_settings(server.models[0].id))


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (429, BackendError, "is limiting requests (429)"),
        (500, ModelLoadError, "could not run"),
        (503, BackendUnavailableError, "is busy or still loading (503)"),
    ],
)
async def test_http_errors_before_the_reply(
    llama_server: OpenAITestServer, make_backend: Factory, status: int, error: type[BackendError], words: str
) -> None:
    backend = await loaded_backend(llama_server, make_backend)
    llama_server.queue(Script(status=status, message="told to fail"), "fine again")
    with pytest.raises(error) as caught:
        await reply(backend)
    assert type(caught.value) is error
    assert words in str(caught.value) and "told to fail" in str(caught.value)
    assert "\n" not in str(caught.value)
    # The chat goes on: the next message is answered.
    assert text_of(await reply(backend)) == "fine again"


async def test_a_model_gone_from_the_server_is_not_found(
    llama_server: OpenAITestServer, make_backend: Factory
) -> None:
    backend = await loaded_backend(llama_server, make_backend)
    llama_server.models[0].id = "renamed"
    with pytest.raises(ModelNotFoundError, match="has no model"):
        await reply(backend)


async def test_a_stream_cut_mid_reply_is_a_crash_and_the_chat_goes_on(
    llama_server: OpenAITestServer, make_backend: Factory
) -> None:
    backend = await loaded_backend(llama_server, make_backend)
    llama_server.queue(Script(text="a b c d e f", cut_after=3), "after the cut")
    events = []
    with pytest.raises(
        BackendCrashedError, match="closed the connection mid-reply; the conversation is kept"
    ):
        async for event in backend.stream_chat(*_chat_args()):
            events.append(event)
    assert text_of(events) == "a b c"
    assert backend.status.state is BackendState.FAILED
    assert text_of(await reply(backend)) == "after the cut"
    assert backend.status.state is BackendState.READY


async def test_a_connection_dropped_while_trying_the_model_says_to_load_it_again(
    llama_server: OpenAITestServer, make_backend: Factory
) -> None:
    # It said "mid-reply … Ctrl+R or your next message tries again", and neither did.
    llama_server.default = Script(cut_after=0)  # the one-token try of the model at its load
    backend = make_backend(llama_server.base_url)
    model = llama_server.models[0].id
    with pytest.raises(BackendCrashedError) as caught:
        await backend.load(openai_settings(model))
    said = str(caught.value)
    assert f"closed the connection while trying {model}" in said and f"/model {model}" in said
    assert "mid-reply" not in said and "Ctrl+R" not in said


async def test_an_error_event_inside_the_stream(
    llama_server: OpenAITestServer, make_backend: Factory
) -> None:
    backend = await loaded_backend(llama_server, make_backend)
    llama_server.queue(Script(text="a b c", error_after=1, message="slot unavailable"))
    with pytest.raises(BackendCrashedError, match="failed mid-reply: slot unavailable"):
        await reply(backend)


async def test_loading_server_is_reported_busy_on_load(
    llama_server: OpenAITestServer, make_backend: Factory
) -> None:
    llama_server.loading = True
    backend = make_backend(llama_server.base_url)
    with pytest.raises(BackendUnavailableError, match="still loading"):
        await backend.load(openai_settings(llama_server.models[0].id))
    assert backend.extras.loading
    llama_server.loading = False
    await backend.load(openai_settings(llama_server.models[0].id))
    assert not backend.extras.loading


async def test_a_strict_server_gets_the_plain_request(make_backend: Factory) -> None:
    with OpenAITestServer(Flavour.PLAIN) as server:
        backend = await loaded_backend(server, make_backend)
        server.queue(Script(status=400, message="Unrecognized request argument supplied: top_k"), "plain")
        done = done_of(events := await reply(backend))
        assert text_of(events) == "plain" and done.finish_reason == "stop"
        retried = server.chat_requests()[-1].body
        assert "top_k" not in retried and "stream_options" not in retried


async def test_a_refusal_the_plain_request_gets_too_keeps_the_full_request(make_backend: Factory) -> None:
    # A prompt longer than the context is refused with a 400 however it is asked: it says
    # nothing about the fields, which the next reply still sends (sampling, usage figures).
    with OpenAITestServer(Flavour.LLAMA_SERVER) as server:
        backend = await loaded_backend(server, make_backend)
        too_long = "the request exceeds the available context size, try increasing it"
        server.queue(Script(status=400, message=too_long), Script(status=400, message=too_long), "fits")
        with pytest.raises(BackendError, match="context"):
            await reply(backend)
        assert text_of(await reply(backend)) == "fits"
        asked = server.chat_requests()[-1].body
        assert "top_k" in asked and "stream_options" in asked


async def test_an_error_that_is_not_json_says_what_the_server_said(make_backend: Factory) -> None:
    with OpenAITestServer(Flavour.VLLM) as server:
        backend = await loaded_backend(server, make_backend)
        server.queue(Script(status=500, message="CUDA error: out of memory", content_type="text/plain"))
        with pytest.raises(ModelLoadError, match=r"\(500\): CUDA error: out of memory$"):
            await reply(backend)
        # nginx before a server that is down: not the model's fault, and no HTML in the chat.
        page = (
            "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
            "</center><hr><center>nginx/1.18.0</center></body></html>"
        )
        server.queue(Script(status=502, message=page, content_type="text/html"))
        with pytest.raises(BackendUnavailableError) as caught:
            await reply(backend)
        assert "<" not in str(caught.value) and "502 Bad Gateway" in str(caught.value)
        assert "proxy" in str(caught.value)


def _chat_args() -> tuple[list, object]:
    from openai_helpers import QUESTION

    from lollma_tui.core.settings import SamplingSettings

    return list(QUESTION), SamplingSettings()


async def test_server_text_in_a_message_cannot_steer_the_terminal(
    llama_server: OpenAITestServer, make_backend: Factory
) -> None:
    backend = await loaded_backend(llama_server, make_backend)
    llama_server.queue(Script(status=500, message="bad\x1b[2J\x07 things\nhappened"))
    with pytest.raises(ModelLoadError) as caught:
        await reply(backend)
    assert str(caught.value).endswith(": bad things happened")  # the escape sequence goes whole


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>Please log in</body></html>", "text/html"),  # a proxy's login page
        (b"null", "application/json"),
        (b"[]", "application/json"),
        (b'{"object": "list"}', "application/json"),
    ],
)
async def test_a_model_list_that_is_no_model_list_is_one_clear_error(
    make_backend: Factory, body: bytes, content_type: str
) -> None:
    # The client's parser failed on these with AttributeError or TypeError: raw Python errors in
    # the chat, the hosts view stuck on "asking…", and a traceback from `bench`.
    import asyncio

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    site = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = site.sockets[0].getsockname()[1]
    try:
        backend = make_backend(f"http://127.0.0.1:{port}/v1")
        with pytest.raises(BackendError, match="answered /models with something that is not a model list"):
            await backend.list_models()
        with pytest.raises(BackendError, match="not a model list"):
            await backend.load(openai_settings("any"))
    finally:
        site.close()


async def test_a_chat_answered_with_a_page_not_a_stream_says_so(make_backend: Factory) -> None:
    # It was put down to a conversation longer than the server's context.
    with OpenAITestServer(Flavour.LLAMA_SERVER) as server:
        backend = await loaded_backend(server, make_backend)
        page = "<html><body>Login required</body></html>"
        server.queue(Script(status=200, message=page, content_type="text/html"))
        with pytest.raises(BackendError, match="answered the chat with text/html, not a stream") as caught:
            await reply(backend)
        assert "context" not in str(caught.value)
        assert str(caught.value).startswith("llama-server at ")  # not "Llama-server", nor "VLLM"
        assert backend.status.state is BackendState.READY
        assert text_of(await reply(backend))  # the next reply streams as before


async def test_a_server_that_never_answers_its_model_list_fails_the_load_soon(
    make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hung server (or an ssh tunnel to a machine that dropped off) accepts the connection and
    # says nothing: each load, and the rollback after it, waited the whole HTTP timeout (300 s).
    import asyncio
    import socket

    monkeypatch.setattr(openai_backend, "MODELS_WAIT_S", 0.5)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        backend = make_backend(url)
        with pytest.raises(BackendUnavailableError) as caught:
            await asyncio.wait_for(backend.load(openai_settings("any")), 60)
    assert "did not list its models within 0.5 s" in str(caught.value)
    assert backend.status.state is BackendState.FAILED

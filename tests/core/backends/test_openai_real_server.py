"""The backend against a real OpenAI-compatible server: llama-cpp-python's own, running the tiny GGUF."""

from __future__ import annotations

import asyncio

import pytest
from openai_helpers import done_of, openai_settings, reply, text_of
from openai_server.fixtures import REAL_SERVER_ALIAS as ALIAS

from lollma_tui.core.backends.base import (
    BackendError,
    BackendState,
    ChatMessage,
    ModelNotFoundError,
    ReplyDone,
    StatsSource,
    TextDelta,
)
from lollma_tui.core.backends.openai import OpenAIBackend
from lollma_tui.core.backends.openai_extras import ServerKind
from lollma_tui.core.settings import SamplingSettings


async def test_streams_real_tokens_through_the_openai_client(real_openai_server: str) -> None:
    backend = OpenAIBackend(real_openai_server, timeout_s=60)
    try:
        loaded = await backend.load(openai_settings(ALIAS))
        assert loaded.name == ALIAS
        assert backend.status.state is BackendState.READY
        events = await reply(backend, temperature=0.0, max_tokens=12, seed=1)
        done = done_of(events)
        pieces = [e for e in events if isinstance(e, TextDelta)]
        assert text_of(events).strip()
        assert done.finish_reason == "length"
        # llama-cpp-python's server sends no usage or timings: the figures are ours, and say so.
        assert done.stats.source is StatsSource.CLIENT_CHUNKS
        assert done.stats.gen_tokens == len(pieces) == 12
        assert done.stats.gen_tps is not None and done.stats.gen_tps > 0
        assert done.stats.setup.server == real_openai_server
        assert backend.extras.kind is ServerKind.UNKNOWN  # nothing beyond the OpenAI API, nothing assumed
    finally:
        await backend.close()


async def test_stop_closes_the_stream_and_the_server_serves_the_next_reply(real_openai_server: str) -> None:
    backend = OpenAIBackend(real_openai_server, timeout_s=60)
    try:
        await backend.load(openai_settings(ALIAS))
        events = []
        stream = backend.stream_chat([ChatMessage("user", "Count.")], SamplingSettings(max_tokens=400))
        async for event in stream:
            events.append(event)
            if sum(isinstance(e, TextDelta) for e in events) == 3:
                await backend.cancel()
        done = done_of(events)
        assert done.finish_reason == "cancelled"
        assert done.stats.gen_tokens < 400
        after = await asyncio.wait_for(reply(backend, max_tokens=4), 30)
        assert isinstance(after[-1], ReplyDone) and after[-1].finish_reason == "length"
    finally:
        await backend.close()


async def test_listing_the_models_while_a_reply_streams_does_not_end_it(real_openai_server: str) -> None:
    # llama-cpp-python's server ends the reply it is writing for any other request: a setting
    # command (which lists the models) typed mid-reply cut it with "ended the reply without
    # finishing it".
    backend = OpenAIBackend(real_openai_server, timeout_s=60)
    try:
        await backend.load(openai_settings(ALIAS))
        events = []
        stream = backend.stream_chat([ChatMessage("user", "Count.")], SamplingSettings(max_tokens=48))
        async for event in stream:
            events.append(event)
            if sum(isinstance(e, TextDelta) for e in events) == 3:
                assert [m.id for m in await backend.list_models()] == [ALIAS]
        done = done_of(events)
        assert done.finish_reason == "length" and done.stats.gen_tokens == 48
        assert [m.id for m in await backend.list_models()] == [ALIAS]  # asked again once it is over
    finally:
        await backend.close()


async def test_a_model_the_server_does_not_offer_fails_the_load_with_the_ids_it_has(
    real_openai_server: str,
) -> None:
    backend = OpenAIBackend(real_openai_server, timeout_s=60)
    try:
        with pytest.raises(ModelNotFoundError, match=f"no model 'gpt-4o'.*offers: {ALIAS}"):
            await backend.load(openai_settings("gpt-4o"))
        assert backend.status.state is BackendState.FAILED
        assert [m.id for m in await backend.list_models()] == [ALIAS]
    finally:
        await backend.close()


async def test_a_conversation_longer_than_the_servers_context_fails_with_a_reason_and_the_next_reply_works(
    real_openai_server: str,
) -> None:
    # The server runs with a 512-token context it does not report; it answers 200 and then
    # drops the stream before any text.
    backend = OpenAIBackend(real_openai_server, timeout_s=60)
    try:
        await backend.load(openai_settings(ALIAS))
        too_long = [ChatMessage("user", "apple banana cherry " * 400)]
        with pytest.raises(BackendError) as raised:
            await reply(backend, too_long, max_tokens=4)
        message = str(raised.value)
        assert "before any text" in message and "does not say its size (4096 tokens assumed here)" in message
        assert message.endswith("Ctrl+N starts a new chat; /edit shortens your last message.")
        # Not a crash: the server is fine, and the next short reply comes.
        assert backend.status.state is BackendState.READY
        after = await asyncio.wait_for(reply(backend, max_tokens=4), 30)
        assert isinstance(after[-1], ReplyDone) and after[-1].finish_reason == "length"
    finally:
        await backend.close()

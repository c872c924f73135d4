"""A reply from an OpenAI-compatible server is stored and exported with the server and model named."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from openai_helpers import done_of, openai_settings, reply, text_of
from openai_server import OpenAITestServer

from lollma_tui.core.backends.base import ReplyStats, RunSetup, StatsSource
from lollma_tui.core.backends.describe import format_setup, format_stats
from lollma_tui.core.backends.openai import OpenAIBackend
from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.export import export_markdown
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.chat.writer import state_for
from lollma_tui.core.settings import BackendKind


async def test_store_and_export_name_the_server_and_model(
    llama_server: OpenAITestServer, make_backend: Callable[..., OpenAIBackend], tmp_path: Path
) -> None:
    backend = make_backend(llama_server.base_url)
    model = llama_server.models[0].id
    await backend.load(openai_settings(model))
    events = await reply(backend)
    done = done_of(events)

    store = ChatStore.open(tmp_path / "history.db")
    try:
        chat = store.new_conversation()
        store.add_message(chat.id, Message("user", "Say hello."))
        writer = store.start_reply(chat.id)
        writer.append_delta(text_of(events))
        writer.finish(state_for(done.finish_reason), stats=done.stats)
        saved = store.load(chat.id).conversation.messages[-1]
        text = export_markdown(store, chat.id)
    finally:
        store.close()

    assert saved.state is ReplyState.COMPLETE
    assert saved.stats == done.stats
    assert saved.stats.setup.server == llama_server.base_url
    assert saved.stats.setup.server_kind == "llama-server b4500-0abc123"
    assert saved.stats.source is StatsSource.SERVER_TIMINGS
    assert (
        f"> - setup: {model} · Q4_K_M · llama-server b4500-0abc123 at {llama_server.base_url} · ctx 8192"
        in text
    )
    assert f'  - "{model} · Q4_K_M · llama-server b4500-0abc123 at {llama_server.base_url}"' in text
    assert format_setup(saved.stats.setup).startswith(
        f"{model} · Q4_K_M · llama-server b4500-0abc123 http://"
    )


def test_figures_measured_here_say_so() -> None:
    setup = RunSetup(BackendKind.OPENAI, "m", "", 0, None, 4096, None, server="http://box:8000/v1")
    measured = ReplyStats(setup, 0.1, None, None, None, 20, 50.0, 0.5, source=StatsSource.CLIENT_CLOCK)
    assert format_stats(measured).endswith("· measured here")
    assert "measured" not in format_stats(replace(measured, source=StatsSource.SERVER_TIMINGS))

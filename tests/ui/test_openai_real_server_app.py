"""The app on a real OpenAI-compatible server: llama-cpp-python's own (`python -m
llama_cpp.server`) running the tests' tiny GGUF; real tokens through `AsyncOpenAI` into the chat."""

from __future__ import annotations

from chat_app_support import send, wait_ready
from openai_server.fixtures import REAL_SERVER_ALIAS as ALIAS
from pilot_support import wait_until

from lollma_tui.core.backends.base import StatsSource
from lollma_tui.core.chat.conversation import ReplyState
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens.hosts import HostsScreen


def make_app(url: str, max_tokens: int) -> LollmaApp:
    options = StartupOptions(
        load=LoadSettings(backend=BackendKind.OPENAI, model=""),
        sampling=SamplingSettings(temperature=0.0, seed=1, max_tokens=max_tokens),
        openai_base_url=url,
    )
    return LollmaApp(options)


async def test_real_tokens_stream_into_the_chat_with_figures_measured_here(real_openai_server: str) -> None:
    app = make_app(real_openai_server, max_tokens=12)
    main = app.chat_screen
    async with app.run_test(size=(110, 36)) as pilot:
        # No --model: the server's only model is the one served.
        await wait_ready(pilot, app, within=60)
        assert main.models.settings.model == ALIAS
        # It does not say its context size: the card says the figure shown is a guess.
        lines = main.model_card.query_one("#model-lines")
        # The card takes the status a moment after the screen does.
        await wait_until(pilot, lambda: "openai · ctx" in str(lines.render()), explain=lines.render)
        card = str(lines.render())
        assert "openai · ctx 4096 (assumed)" in card, card
        turn = await send(pilot, app, "Say hello.", within=60)
        assert turn.message.state is ReplyState.LENGTH
        assert turn.message.content.strip()
        stats = turn.message.stats
        assert stats is not None and stats.gen_tokens == 12
        # llama-cpp-python's server sends no timings: the figures are ours, and say so.
        assert stats.source is StatsSource.CLIENT_CHUNKS and stats.setup.server == real_openai_server
        footer = str(turn.footer.render())
        assert "tok/s" in footer and "measured here" in footer


async def test_the_hosts_view_opened_while_a_reply_streams_leaves_the_reply_whole(
    real_openai_server: str,
) -> None:
    # The view asked every host for its models, this one too: llama-cpp-python's server ends
    # the reply it is writing at any other request, and F4 cut the reply ("ended the reply
    # without finishing it"), marked failed and never sent back to the model.
    app = make_app(real_openai_server, max_tokens=1500)
    main = app.chat_screen
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_ready(pilot, app, within=60)
        await pilot.press(*"Count.", "enter")
        await wait_until(pilot, lambda: main.replies.writing, within=60)
        await pilot.press("f4")
        await wait_until(pilot, lambda: not main.is_generating, within=120)
        reply = main.conversation.messages[-1]
        # Written to the end of the server's context, as with the view closed.
        assert reply.state is ReplyState.LENGTH, reply.error
        assert reply.stats is not None and reply.stats.gen_tokens > 100
        # The view was told what the chat's own backend knew of that server.
        view = app.screen
        assert isinstance(view, HostsScreen)
        await wait_until(pilot, lambda: bool(view.reports))
        (own,) = [report for report in view.reports if report.entry == main.models.host]
        assert own.reachable and "writing a reply" in own.message and own.models == (ALIAS,)

"""The app on an OpenAI-compatible server: the protocol test server speaking llama-server's
dialect, over real HTTP through the real `openai` client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_app_support import notices, send, wait_ready
from openai_server import Flavour, OpenAITestServer, Script, ServedSpec
from openai_server.fixtures import free_port
from pilot_support import wait_until
from textual.widgets import Select, Static

from lollma_tui.core.backends.base import StatsSource
from lollma_tui.core.chat.conversation import ReplyState
from lollma_tui.core.session.session import ModelSession
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens import chat_hosts
from lollma_tui.ui.screens.chat import ChatScreen
from lollma_tui.ui.widgets.server_info import ServerInfo
from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer
from lollma_tui.ui.widgets.settings_rows import FieldRow, FitLine
from lollma_tui.ui.widgets.stepper import Stepper

MODELS = [ServedSpec("qwen2.5-7b-instruct-q4_k_m"), ServedSpec("llama-3.2-3b-instruct-q8_0")]


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(Flavour.LLAMA_SERVER, models=MODELS, tokens_per_second=400) as running:
        yield running


def make_app(url: str, model: str = MODELS[0].id, max_tokens: int = 64) -> LollmaApp:
    options = StartupOptions(
        load=LoadSettings(backend=BackendKind.OPENAI, model=model),
        sampling=SamplingSettings(max_tokens=max_tokens),
        openai_base_url=url,
    )
    return LollmaApp(options)


def server_lines(app: LollmaApp) -> str:
    return str(app.chat_screen.query_one("#server-lines", Static).render())


async def test_a_question_streams_a_reply_with_the_servers_figures(server: OpenAITestServer) -> None:
    server.queue("Entanglement links two particles.")
    app = make_app(server.base_url)
    main = app.chat_screen
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_ready(pilot, app)
        turn = await send(pilot, app, "explain quantum entanglement")
        assert turn.message.content == "Entanglement links two particles."
        assert turn.message.state is ReplyState.COMPLETE
        stats = turn.message.stats
        assert stats is not None and stats.source is StatsSource.SERVER_TIMINGS
        assert stats.gen_tokens == server.records.replies[-1]["predicted_n"]
        assert (
            stats.setup.server == server.base_url and stats.setup.server_kind == "llama-server b4500-0abc123"
        )
        footer = str(turn.footer.render())
        assert "tok/s" in footer and "to first token" in footer
        # The reply's heading names the server it came from.
        assert f"openai on 127.0.0.1:{server.port}" in str(turn.query_one(".turn-label", Static).render())
        # The model card's server block: what llama-server's /props, /slots and /metrics said.
        lines = server_lines(app)
        assert "llama-server b4500-0abc123" in lines
        assert "ctx 8192 per slot · 0/1 slots busy" in lines and "KV cache 25% · 0 running" in lines
        # llama-server says its context size: no "(assumed)" on the card.
        card = str(app.chat_screen.model_card.query_one("#model-lines").render())
        assert "openai · ctx 8192" in card and "assumed" not in card, card
        assert main.query_one(ServerInfo).display


async def test_the_servers_extras_are_read_again_by_a_named_worker(
    server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chat_hosts, "EXTRAS_REFRESH_S", 0.2)
    app = make_app(server.base_url)
    main = app.chat_screen
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_ready(pilot, app)
        await wait_until(pilot, lambda: "llama-server" in server_lines(app))
        assert "loading its model" not in server_lines(app)
        server.loading = True  # /health answers 503, as llama-server does while it loads
        await wait_until(pilot, lambda: "the server is loading its model…" in server_lines(app), within=10)
        assert main.query_one(ServerInfo).has_class("-loading")
        server.loading = False
        await wait_until(pilot, lambda: "loading its model" not in server_lines(app), within=10)


async def test_continue_on_a_server_that_cannot_does_not_say_to_try_again() -> None:
    # "… cannot continue a reply (llama-server and vLLM can): Ctrl+R writes it again. · /continue
    # tries again": the advice contradicted the refusal it followed.
    with OpenAITestServer(Flavour.LM_STUDIO, models=MODELS, tokens_per_second=400) as lm_studio:
        app = make_app(lm_studio.base_url, max_tokens=3)
        main = app.chat_screen
        async with app.run_test(size=(110, 36)) as pilot:
            await wait_ready(pilot, app)
            await send(pilot, app, "explain quantum entanglement")
            assert main.conversation.messages[-1].state is ReplyState.LENGTH
            await pilot.press(*"/continue", "enter")
            await wait_until(pilot, lambda: "cannot continue a reply" in notices(app)[-1])
            assert "tries again" not in notices(app)[-1]
            # Not a word was added: it is still the reply cut at the length limit (it became
            # "stopped").
            await wait_until(pilot, lambda: not main.is_generating)
            assert main.conversation.messages[-1].state is ReplyState.LENGTH


async def test_a_setting_command_does_not_wait_for_a_server_that_stopped_answering(
    server: OpenAITestServer,
) -> None:
    # Each setting command asks the server for its models on the screen's turn: a server that
    # hung froze the chat screen until the 300 s HTTP timeout.
    app = make_app(server.base_url)
    main = app.chat_screen
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_ready(pilot, app)
        await wait_until(pilot, lambda: BackendKind.OPENAI in main.catalog.catalogs)
        server.models_delay_s = 120.0
        await pilot.press(*"/set temperature 0.25", "enter")
        await wait_until(pilot, lambda: "temperature: " in notices(app)[-1], within=15)
        assert main.models.sampling.temperature == 0.25
        # The list it gave last still names its models.
        await pilot.press(*"/model llama-3.2", "enter")
        await wait_until(pilot, lambda: main.models.loading or main.models.settings.model == MODELS[1].id)


async def test_the_drawer_shows_the_servers_settings_read_only_with_the_reason(
    server: OpenAITestServer,
) -> None:
    app = make_app(server.base_url)
    main = app.chat_screen
    async with app.run_test(size=(110, 44)) as pilot:
        await wait_ready(pilot, app)
        await wait_until(pilot, lambda: BackendKind.OPENAI in main.catalog.catalogs)
        await pilot.press("f2")
        await wait_until(pilot, lambda: main.settings_drawer is not None and main.settings_drawer.is_open)
        drawer = main.query_one(SettingsDrawer)
        await pilot.pause()
        backend = drawer.query_one("#backend", Select)
        assert ("OpenAI-compatible", BackendKind.OPENAI) in [(str(p), v) for p, v in backend._options]
        assert backend.value is BackendKind.OPENAI
        # The model menu lists what the server's /v1/models offers.
        models = [str(prompt) for prompt, _ in drawer.query_one("#model", Select)._options]
        assert models == [m.id for m in MODELS]
        for name in ("n_gpu_layers", "n_ctx"):
            assert drawer.query_one(f"#{name}", Stepper).disabled
            row = drawer.query_one(f"#row-{name}", FieldRow)
            assert row.has_class("-read-only") and "set when the OpenAI-compatible server starts" in str(
                row.tooltip
            )
        for name in ("n_threads", "n_batch", "flash_attn", "kv_cache_type", "use_mmap", "repack"):
            assert drawer.query_one(f"#row-{name}", FieldRow).control.disabled
        assert not drawer.query_one("#model", Select).disabled
        summary = str(drawer.query_one("#drawer-read-only", Static).render())
        assert summary.startswith("🔒 GPU layers, context") and "a client cannot change it" in summary
        fit = drawer.query_one(FitLine)
        assert fit.display and "cannot see" in str(fit.query_one("#fit-notes", Static).render())
        # Back on llama.cpp the same rows can be edited again.
        backend.value = BackendKind.LLAMA_CPP
        await pilot.pause()
        assert not drawer.query_one("#n_gpu_layers", Stepper).disabled
        assert not drawer.query_one("#row-repack", FieldRow).control.disabled
        assert not drawer.query_one("#drawer-read-only", Static).display


async def test_a_cut_stream_and_a_server_error_keep_the_chat(server: OpenAITestServer) -> None:
    app = make_app(server.base_url)
    main = app.chat_screen
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_ready(pilot, app)
        server.queue(Script(text="one two three four five six", cut_after=3))
        cut = await send(pilot, app, "first question")
        assert cut.message.state is ReplyState.ERROR
        assert "closed the connection mid-reply; the conversation is kept" in str(cut.footer.render())
        server.queue(Script(status=500, message="CUDA error: out of memory"))
        failed = await send(pilot, app, "second question")
        assert failed.message.state is ReplyState.ERROR
        assert "(500): CUDA error: out of memory" in str(failed.footer.render())
        server.queue(Script(status=429, message="slow down"))
        limited = await send(pilot, app, "third question")
        assert limited.message.state is ReplyState.ERROR
        assert "is limiting requests (429)" in str(limited.footer.render())
        server.queue("Recovered.")
        ok = await send(pilot, app, "fourth question")
        assert ok.message.content == "Recovered."
        users = [m.content for m in main.conversation.messages if m.role == "user"]
        assert users == ["first question", "second question", "third question", "fourth question"]
        # The last request carried the whole conversation, without the failed replies' pieces:
        # the unanswered questions go with the last one, so the roles still alternate.
        sent = server.chat_requests()[-1].body["messages"]
        assert [(m["role"], m["content"]) for m in sent if m["role"] != "system"] == [
            ("user", "\n\n".join(users))
        ]


async def test_escape_stops_the_reply_and_the_server_sees_the_client_go(server: OpenAITestServer) -> None:
    server.tokens_per_second = 20
    server.queue(" ".join(f"word{i}" for i in range(400)))
    # Twenty seconds of reply, not three: on a busy machine Esc still lands while it streams.
    app = make_app(server.base_url, max_tokens=400)
    main = app.chat_screen
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_ready(pilot, app)
        await pilot.press(*"count", "enter")
        await wait_until(pilot, lambda: bool(main.chat_log.reply_turns()))
        turn = main.chat_log.reply_turns()[-1]
        await wait_until(pilot, lambda: "word3" in turn.message.content)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not main.is_generating, within=10)
        assert turn.message.state is ReplyState.STOPPED
        await server.until(lambda: server.records.disconnects == 1)
        server.tokens_per_second = 0
        server.queue("Next.")
        assert (await send(pilot, app, "again")).message.content == "Next."


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("no-model", "has no model 'gpt-4o' (it offers: qwen2.5-7b-instruct-q4_k_m"),
        ("refused", "No OpenAI-compatible server answers at http://127.0.0.1:"),
        ("key", "needs an API key (401): put it in $OPENAI_API_KEY"),
    ],
)
async def test_a_failed_first_load_is_a_clear_notice(
    case: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with OpenAITestServer(
        Flavour.LLAMA_SERVER, models=MODELS, api_key="s3cret" if case == "key" else None
    ) as srv:
        url = f"http://127.0.0.1:{free_port()}/v1" if case == "refused" else srv.base_url
        app = make_app(url, model="gpt-4o" if case == "no-model" else MODELS[0].id)
        async with app.run_test(size=(110, 36)) as pilot:
            await wait_until(pilot, lambda: any(words in n for n in notices(app)), within=20)
            status = app.chat_screen.model_card.status
            assert status is not None and words in status.message


async def test_the_sampler_thread_never_builds_a_session(
    server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hardware sampler asks for our pids on its own thread from its first tick: that must
    never build a second session (with a backend of its own) behind the app's back."""
    built: list[str] = []
    original_init = ModelSession.__init__

    def recording_init(self: ModelSession, *args: object, **kwargs: object) -> None:
        built.append(threading.current_thread().name)
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]

    original_start = ChatScreen.start_hardware

    def slow_start(self: ChatScreen) -> None:
        original_start(self)
        time.sleep(0.5)  # the sampler's first tick runs while the UI thread is held here

    monkeypatch.setattr(ModelSession, "__init__", recording_init)
    monkeypatch.setattr(ChatScreen, "start_hardware", slow_start)
    app = make_app(server.base_url)
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_ready(pilot, app)
        assert app.chat_screen.hardware is not None
        await wait_until(pilot, lambda: app.chat_screen.hardware.latest is not None)
        turn = await send(pilot, app, "hello")
        assert turn.message.state is ReplyState.COMPLETE
    assert built == [threading.main_thread().name]


async def test_a_server_down_at_start_is_asked_again_until_it_answers() -> None:
    # Ollama's was; an OpenAI-compatible server's was asked once, and the chat said "no model is
    # loaded" until the user thought of /model.
    port = free_port()
    app = make_app(f"http://127.0.0.1:{port}/v1")
    main = app.chat_screen
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_until(pilot, lambda: any("Retrying in the background" in n for n in notices(app)))
        server = OpenAITestServer(Flavour.LLAMA_SERVER, models=MODELS)
        server.port = port
        with server:
            await wait_ready(pilot, app, within=30)
            assert main.models.loaded is not None and main.models.loaded.name == MODELS[0].id
            server.queue("here now")
            turn = await send(pilot, app, "are you there?")
            assert turn.message.content == "here now"


async def test_a_resumed_chat_loads_the_model_it_last_used_on_a_server_with_several(
    server: OpenAITestServer,
) -> None:
    first = make_app(server.base_url, model=MODELS[1].id)
    async with first.run_test(size=(110, 36)) as pilot:
        await wait_ready(pilot, first)
        server.queue("from the second")
        await send(pilot, first, "hello")
    # No model named this time: the server offers two, and the chat last used the second.
    again = make_app(server.base_url, model="")
    async with again.run_test(size=(110, 36)) as pilot:
        await wait_ready(pilot, again)
        loaded = again.chat_screen.models.loaded
        assert loaded is not None and loaded.name == MODELS[1].id
        assert any(f"Loading {MODELS[1].id}, the model this chat last used" in n for n in notices(again))


async def test_another_backend_chosen_while_the_server_is_retried_ends_the_wait(tiny_gguf: Path) -> None:
    # The first load kept retrying the server through the backend the swap had closed: the
    # chat then showed "_load_first failed: RuntimeError: Cannot send a request, as the client
    # has been closed", after the new model had loaded.
    app = make_app(f"http://127.0.0.1:{free_port()}/v1")
    main = app.chat_screen
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_until(pilot, lambda: any("Retrying in the background" in n for n in notices(app)))
        await pilot.press(*f"/backend llama.cpp {tiny_gguf}", "enter")
        await wait_until(pilot, lambda: main.models.ready, within=60)
        await pilot.pause(2.5)  # past the retries the wait had left (1 s, then 2 s)
        said = " ".join(notices(app))
        assert "failed" not in said and "RuntimeError" not in said, said
        assert main.models.loaded is not None and main.models.loaded.setup().backend is BackendKind.LLAMA_CPP


async def test_part_of_a_model_name_at_start_loads_the_model_it_names(server: OpenAITestServer) -> None:
    # `--model llama-3.2` failed at start ("has no model 'llama-3.2'"), while `/model llama-3.2`
    # loaded it: the start-up load asked for the exact id.
    app = make_app(server.base_url, model="llama-3.2")
    main = app.chat_screen
    async with app.run_test(size=(110, 36)) as pilot:
        await wait_ready(pilot, app)
        assert main.models.loaded is not None and main.models.loaded.name == MODELS[1].id
        assert main.models.settings.model == MODELS[1].id

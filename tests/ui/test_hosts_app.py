"""Several hosts in the app: the hosts view, and /host moving the chat between an Ollama server
and an OpenAI-compatible one mid-conversation, with the whole history going along."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_app_support import notices, send, wait_ready
from ollama_server import OllamaTestServer
from openai_server import Flavour, OpenAITestServer, ServedSpec
from openai_server.fixtures import free_port
from pilot_support import wait_until
from sshd_server import QUIET_SSH_OPTIONS, quiet_machine
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from lollma_tui.core.hosts import HostEntry
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens.hosts import HostsScreen

OLLAMA_MODEL = "tinyllama:1b-q4_K_M"
STUDIO_MODELS = [ServedSpec("granite-3.0-2b-instruct"), ServedSpec("qwen3-4b", loaded=False)]


@pytest.fixture
def studio() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(Flavour.LM_STUDIO, models=STUDIO_MODELS) as server:
        yield server


def make_app(ollama: OllamaTestServer, studio: OpenAITestServer) -> LollmaApp:
    hosts = (
        HostEntry("den", BackendKind.OLLAMA, ollama.url),
        HostEntry("studio", BackendKind.OPENAI, studio.base_url),
        HostEntry("gone", BackendKind.OPENAI, f"http://127.0.0.1:{free_port()}/v1"),
    )
    options = StartupOptions(
        load=LoadSettings(backend=BackendKind.OLLAMA, model=OLLAMA_MODEL, n_ctx=2048),
        sampling=SamplingSettings(max_tokens=64),
        ollama_host=ollama.host,
    )
    return LollmaApp(options, hosts=hosts)


async def opened_hosts(pilot: Pilot[None], app: LollmaApp) -> HostsScreen:
    """F4: the hosts view, open."""
    await pilot.press("f4")
    await wait_until(pilot, lambda: isinstance(app.screen, HostsScreen))
    view = app.screen
    assert isinstance(view, HostsScreen)
    return view


def header_of(turn: object) -> str:
    return str(turn.query_one(".turn-label", Static).render())  # type: ignore[attr-defined]


async def test_the_hosts_view_shows_every_host_and_enter_moves_the_chat(
    ollama_server: OllamaTestServer, studio: OpenAITestServer
) -> None:
    app = make_app(ollama_server, studio)
    main = app.chat_screen
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_ready(pilot, app)
        assert main.models.host.name == "den"  # the command line's server is the entry "den"
        await pilot.press(*"/hosts", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HostsScreen))
        view = app.screen
        assert isinstance(view, HostsScreen)
        table = view.query_one(DataTable)
        await wait_until(pilot, lambda: len(view.reports) == 4, within=15)

        def row(name: str) -> list[str]:
            return [str(cell) for cell in table.get_row(name)]

        assert row("den")[0] == "▶ den" and row("den")[3].startswith("✓ Ollama ")
        assert row("den")[4].endswith("(+1)") and row("den")[5] == OLLAMA_MODEL  # loaded now (/api/ps)
        assert row("studio")[3] == "✓ LM Studio"
        assert row("studio")[4] == "granite-3.0-2b-instruct, qwen3-4b"
        assert row("studio")[5] == "granite-3.0-2b-instruct"
        assert "No OpenAI-compatible server answers" in row("gone")[3]
        assert row("local")[3] == "✓ llama.cpp in this app"
        table.move_cursor(row=table.get_row_index("studio"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: main.models.host.name == "studio", within=15)
        await wait_ready(pilot, app)
        assert main.models.loaded is not None and main.models.loaded.name == "granite-3.0-2b-instruct"
        # F4 opens the view too, now marking the host the chat is on.
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, HostsScreen))
        assert str(app.screen.query_one(DataTable).get_row("studio")[0]) == "▶ studio"
        await pilot.press("escape")


async def test_host_moves_the_conversation_between_ollama_and_an_openai_server(
    ollama_server: OllamaTestServer, studio: OpenAITestServer
) -> None:
    ollama_server.queue_reply("Paris is the capital of France.")
    studio.queue("About two million people live in Paris.")
    app = make_app(ollama_server, studio)
    main = app.chat_screen
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_ready(pilot, app)
        first = await send(pilot, app, "What is the capital of France?")
        assert first.message.content == "Paris is the capital of France."
        assert "ollama on den" in header_of(first)

        await pilot.press(*"/host studio", "enter")
        # LM Studio says which model it has loaded: that one is used.
        await wait_until(pilot, lambda: main.models.host.name == "studio", within=15)
        await wait_ready(pilot, app)
        assert any("The chat is on studio now" in n for n in notices(app))
        second = await send(pilot, app, "How many people live there?")
        assert second.message.content == "About two million people live in Paris."
        assert "openai on studio" in header_of(second)
        assert second.message.stats is not None and second.message.stats.setup.server == studio.base_url
        # The server got the whole conversation, the Ollama reply included.
        sent = studio.chat_requests()[-1].body["messages"]
        assert [(m["role"], m["content"]) for m in sent] == [
            ("user", "What is the capital of France?"),
            ("assistant", "Paris is the capital of France."),
            ("user", "How many people live there?"),
        ]

        # And back: the model used there before is loaded again.
        ollama_server.queue_reply("Yes.")
        await pilot.press(*"/host den", "enter")
        await wait_until(pilot, lambda: main.models.host.name == "den", within=15)
        await wait_ready(pilot, app)
        third = await send(pilot, app, "Sure?")
        assert third.message.content == "Yes."
        history = [m["content"] for m in ollama_server.generations[-1].messages if m["role"] != "system"]
        assert history == [
            "What is the capital of France?",
            "Paris is the capital of France.",
            "How many people live there?",
            "About two million people live in Paris.",
            "Sure?",
        ]
        # Each reply keeps naming the server that wrote it.
        servers = [m.stats.setup.server for m in main.conversation.messages if m.stats is not None]
        assert servers == [ollama_server.url, studio.base_url, ollama_server.url]


async def test_host_errors_are_notices_and_the_chat_stays_where_it_was(
    ollama_server: OllamaTestServer, studio: OpenAITestServer
) -> None:
    studio.models[0].loaded = False  # nothing loaded and two models: the user must choose
    app = make_app(ollama_server, studio)
    main = app.chat_screen
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_ready(pilot, app)
        # Tab completes the names /host takes.
        await wait_until(
            pilot, lambda: bool(main.prompt.completion_context and main.prompt.completion_context.hosts)
        )
        await pilot.press(*"/host stu", "tab")
        assert main.prompt.text == "/host studio"
        main.prompt.clear()
        await pilot.press(*"/host nowhere", "enter")
        await wait_until(pilot, lambda: any("No host named 'nowhere'" in n for n in notices(app)))
        assert "Hosts: den, studio, gone, local" in next(n for n in notices(app) if "nowhere" in n)
        await pilot.press(*"/host gone", "enter")
        await wait_until(pilot, lambda: any("gone does not answer" in n for n in notices(app)), within=15)
        await pilot.press(*"/host studio", "enter")
        await wait_until(pilot, lambda: any("choose one with /host studio MODEL" in n for n in notices(app)))
        assert main.models.host.name == "den"
        # A model the server lacks: the move is refused before den's model is let go.
        await pilot.press(*"/host studio llama-70b", "enter")
        await wait_until(
            pilot,
            lambda: any("has no model 'llama-70b'" in n and "still on" in n for n in notices(app)),
            within=15,
        )
        assert main.models.host.name == "den" and main.models.loaded is not None
        assert main.models.loaded.name == OLLAMA_MODEL
        await pilot.press(*"/host studio qwen3-4b", "enter")
        await wait_until(pilot, lambda: main.models.host.name == "studio", within=15)
        await wait_ready(pilot, app)
        assert main.models.loaded is not None and main.models.loaded.name == "qwen3-4b"


async def test_ollama_host_and_openai_base_url_are_the_default_hosts(
    ollama_server: OllamaTestServer, studio: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", studio.base_url)
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    # No address on the command line and no config file: the environment names both servers.
    app = LollmaApp(StartupOptions(load=LoadSettings(backend=BackendKind.OPENAI, model=STUDIO_MODELS[0].id)))
    main = app.chat_screen
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_ready(pilot, app)
        assert main.models.host.name == "openai"
        assert main.models.loaded is not None and main.models.loaded.name == "granite-3.0-2b-instruct"
        assert [h.name for h in main.models.hosts] == ["local", "ollama", "openai"]
        await pilot.press(*f"/host ollama {OLLAMA_MODEL}", "enter")
        await wait_until(pilot, lambda: main.models.host.name == "ollama", within=15)
        await wait_ready(pilot, app)
        assert main.models.loaded is not None and main.models.loaded.name == OLLAMA_MODEL
        assert main.models.host.address == ollama_server.url


async def test_the_local_host_says_which_model_this_app_has_loaded(tiny_gguf: Path) -> None:
    # No server answers for llama.cpp in this app: its row said "—" beside a model in use.
    app = LollmaApp(StartupOptions(load=LoadSettings(model=str(tiny_gguf), n_ctx=512)))
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_ready(pilot, app)
        view = await opened_hosts(pilot, app)
        await wait_until(pilot, lambda: len(view.reports) == 1, within=15)
        row = [str(cell) for cell in view.query_one(DataTable).get_row("local")]
        assert row[3] == "✓ llama.cpp in this app" and row[5] == "tiny-llama"
        await pilot.press("escape")


async def test_a_machine_slow_over_ssh_does_not_hold_up_the_other_rows(
    ollama_server: OllamaTestServer, studio: OpenAITestServer
) -> None:
    # Every row read "asking…" until the slowest GPU reading over ssh was in (10–15 s).
    from lollma_tui.core.hardware.ssh_target import SshTarget

    with quiet_machine() as port:
        hosts = (
            HostEntry("den", BackendKind.OLLAMA, ollama_server.url),
            HostEntry("studio", BackendKind.OPENAI, studio.base_url, hw=SshTarget("127.0.0.1", port=port)),
        )
        options = StartupOptions(
            load=LoadSettings(backend=BackendKind.OLLAMA, model=OLLAMA_MODEL, n_ctx=2048),
            ollama_host=ollama_server.host,
            ssh_options=QUIET_SSH_OPTIONS,
        )
        app = LollmaApp(options, hosts=hosts)
        async with app.run_test(size=(150, 40)) as pilot:
            await wait_ready(pilot, app)
            view = await opened_hosts(pilot, app)
            await wait_until(pilot, lambda: len(view.reports) == 3, within=8)
            studio_report = next(r for r in view.reports if r.entry.name == "studio")
            assert studio_report.reachable and studio_report.gpu_summary is None  # its GPUs: still asking
            await pilot.press("escape")

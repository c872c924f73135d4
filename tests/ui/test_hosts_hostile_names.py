"""Names from the config file and from servers are shown literally wherever the hosts UI shows them.

A host named with markup, an action link and an escape sequence (the config file's words), on an
LM Studio-style server whose model id, quantization and architecture do the same (the server's
words): the model card, the server block, the reply header, the drawer, the hosts view and the
notices of /host must neither crash (`MarkupError`), nor turn ``[@click=app.quit]`` into a link,
nor pass the escape sequence on to the terminal.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chat_app_support import notices, send, wait_ready
from openai_server import Flavour, OpenAITestServer, ServedSpec
from pilot_support import wait_until
from terminal_output import click_actions, foreign_controls, screen_output, screen_text
from textual.widgets import DataTable, Select, Static

from lollma_tui.core.hosts import HostEntry
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens.hosts import HostsScreen
from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer

HOSTILE_HOST = "Evil [/] [@click=app.quit]x\x1b]0;t\x07"
SHOWN_HOST = "Evil [/] [@click=app.quit]x"
HOSTILE_MODEL = "Evil [/] model [@click=app.quit]m\x1b]0;t\x07"
SHOWN_MODEL = "Evil [/] model [@click=app.quit]m"
HOSTILE_QUANT = "Q4[b]\x1b[2J"
SHOWN_QUANT = "Q4[b]"


@pytest.fixture
def studio() -> Iterator[OpenAITestServer]:
    model = ServedSpec(HOSTILE_MODEL, quantization=HOSTILE_QUANT, arch="llama[/]\x1b[31m")
    with OpenAITestServer(Flavour.LM_STUDIO, models=[model]) as server:
        yield server


def make_app(studio: OpenAITestServer) -> LollmaApp:
    options = StartupOptions(
        load=LoadSettings(backend=BackendKind.OPENAI, model=HOSTILE_MODEL),
        sampling=SamplingSettings(max_tokens=16),
        openai_base_url=studio.base_url,
    )
    hosts = (
        HostEntry(HOSTILE_HOST, BackendKind.OPENAI, studio.base_url),
        HostEntry("local", BackendKind.LLAMA_CPP),
    )
    return LollmaApp(options, hosts=hosts)


def assert_shown_safely(app: LollmaApp) -> None:
    assert foreign_controls(screen_output(app)) == []
    assert "app.quit" not in click_actions(app)


async def test_host_and_model_names_from_outside_are_shown_literally(studio: OpenAITestServer) -> None:
    studio.queue("Hello.")
    app = make_app(studio)
    main = app.chat_screen
    async with app.run_test(size=(160, 44), notifications=True) as pilot:
        await wait_ready(pilot, app)
        assert main.models.host.name == HOSTILE_HOST
        # The backend is ready before its status message has reached the card.
        model_lines = main.model_card.query_one("#model-lines", Static)
        await wait_until(pilot, lambda: bool(str(model_lines.render()).strip()))
        card = str(model_lines.render())
        assert card.splitlines()[0] == SHOWN_MODEL and SHOWN_QUANT in card
        lines = main.query_one("#server-lines", Static)
        await wait_until(pilot, lambda: "LM Studio" in str(lines.render()))
        assert SHOWN_QUANT in str(lines.render())
        turn = await send(pilot, app, "hi")
        assert turn.message.content == "Hello."
        header = str(turn.query_one(".turn-label", Static).render())
        assert header.startswith(SHOWN_MODEL) and header.endswith(f"openai on {SHOWN_HOST}")
        assert SHOWN_HOST in screen_text(app)
        assert_shown_safely(app)

        await pilot.press("f2")
        drawer = main.query_one(SettingsDrawer)
        await wait_until(pilot, lambda: drawer.is_open and drawer.region.width > 0)
        label = str(drawer.query_one("#model", Select).query_one("#label", Static).content)
        assert label.startswith(SHOWN_MODEL)
        assert_shown_safely(app)
        await pilot.press("f2")

        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, HostsScreen))
        view = app.screen
        assert isinstance(view, HostsScreen)
        await wait_until(pilot, lambda: len(view.reports) == 2, within=15)
        row = [str(cell) for cell in view.query_one(DataTable).get_row(HOSTILE_HOST)]
        assert row[0] == f"▶ {SHOWN_HOST}" and row[4] == SHOWN_MODEL and row[5] == SHOWN_MODEL
        assert_shown_safely(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HostsScreen))

        await pilot.press(*"/host nowhere", "enter")
        await wait_until(pilot, lambda: any("No host named" in n for n in notices(app)))
        assert f"Hosts: {SHOWN_HOST}, local" in next(n for n in notices(app) if "nowhere" in n)
        assert_shown_safely(app)

        # Tab completes the host's name in the prompt; what is drawn there is literal too.
        await wait_until(
            pilot, lambda: bool(main.prompt.completion_context and main.prompt.completion_context.hosts)
        )
        await pilot.press(*"/host Ev", "tab")
        assert main.prompt.text == f"/host {SHOWN_HOST}"
        assert_shown_safely(app)
        # The name as shown finds the host, spaces and all.
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("is on" in n and "already" in n for n in notices(app)))
        assert f"The chat is on {SHOWN_HOST} already." in notices(app)
        assert app.is_running

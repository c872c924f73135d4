"""Names from model files and theme files are shown literally everywhere the app shows them.

A real GGUF whose ``general.name`` holds markup, an action link and an escape sequence, in a
file whose name holds markup too, loaded by the real llama.cpp worker; a user theme file whose
name does the same. Each place that shows them must neither crash (`MarkupError`), nor turn
``[@click=app.quit]`` into a link, nor pass the escape sequence on to the terminal.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf_factory import TinyModelSpec, write_tiny_gguf
from pilot_support import wait_until
from terminal_output import click_actions, foreign_controls, screen_output, screen_text
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import OptionList, Select, Static

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.settings import LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens.bench import BenchScreen
from lollma_tui.ui.screens.quantize import QuantizeScreen
from lollma_tui.ui.widgets.chat_log import ReplyTurn
from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer

HOSTILE_NAME = "Evil [/] Model [@click=app.quit]x\x1b]0;PWNED\x07"
SHOWN_NAME = "Evil [/] Model [@click=app.quit]x"
"""The name as it must appear: every character but the control ones, markup unparsed."""
FILE_NAME = "evil-[b]x[@click=app.quit]q-F16.gguf"
HOSTILE_THEME = "Evil [/] Theme [@click=app.quit]t\x1b[2J"
SHOWN_THEME = "Evil [/] Theme [@click=app.quit]t"


@pytest.fixture(scope="session")
def hostile_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile-model")
    return write_tiny_gguf(folder / FILE_NAME, TinyModelSpec(name=HOSTILE_NAME))


@pytest.fixture
def hostile_theme(tmp_path: Path) -> None:
    themes = tmp_path / "lollma-config" / "themes"
    themes.mkdir(parents=True)
    name = HOSTILE_THEME.replace("\x1b", "\\u001b")
    (themes / "evil.toml").write_text(f'name = "{name}"\ndark = true\nprimary = "#FF5F3F"\n')


def make_app(model: Path) -> LollmaApp:
    options = StartupOptions(
        load=LoadSettings(model=str(model), n_ctx=512),
        sampling=SamplingSettings(temperature=0.0, max_tokens=4),
    )
    return LollmaApp(options)


async def ready(pilot: Pilot[None], app: LollmaApp) -> None:
    main = app.chat_screen
    await wait_until(
        pilot,
        lambda: main.models.backend.status.state == BackendState.READY and main.catalog.gguf is not None,
    )


def assert_shown_safely(app: LollmaApp) -> None:
    output = screen_output(app)
    assert foreign_controls(output) == []
    assert "app.quit" not in click_actions(app)


async def test_drawer_lists_the_model_by_its_literal_name(hostile_model: Path) -> None:
    app = make_app(hostile_model)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot, app)
        await pilot.press("f2")
        drawer = app.chat_screen.query_one(SettingsDrawer)
        await wait_until(pilot, lambda: drawer.is_open and drawer.region.width > 0)
        model = drawer.query_one("#model", Select)
        assert str(model.query_one("#label", Static).content).startswith(SHOWN_NAME)
        # The open menu lists it the same way.
        model.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert model.expanded
        assert_shown_safely(app)
        await pilot.press("escape")
        assert app.is_running


async def test_model_card_notice_and_reply_header_show_the_name_literally(hostile_model: Path) -> None:
    app = make_app(hostile_model)
    main = app.chat_screen
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot, app)
        card_lines = str(main.model_card.query_one("#model-lines", Static).content)
        assert card_lines.splitlines()[0] == SHOWN_NAME
        await pilot.press(*"hello", "enter")
        await wait_until(pilot, lambda: bool(main.chat_log.reply_turns()) and not main.is_generating)
        turn = main.chat_log.query_one(ReplyTurn)
        header = str(turn.query_one(".turn-label", Static).content)
        assert header.startswith(SHOWN_NAME)
        assert_shown_safely(app)


async def test_bench_form_and_quantize_dialog_show_the_names_literally(hostile_model: Path) -> None:
    app = make_app(hostile_model)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot, app)
        await pilot.press(*"/bench", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BenchScreen))
        bench = app.screen
        await pilot.pause()
        label = str(bench.query_one("#bench-model", Select).query_one("#label", Static).content)
        assert label.startswith(SHOWN_NAME)
        assert_shown_safely(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, BenchScreen))

        await pilot.press(*"/quantize", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, QuantizeScreen))
        await pilot.pause()
        # The file name is the dialog's border title.
        assert f"Quantize {FILE_NAME}" in screen_text(app)
        assert_shown_safely(app)


async def test_toasts_and_the_theme_picker_show_names_literally(
    hostile_model: Path, hostile_theme: None
) -> None:
    app = make_app(hostile_model)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot, app)
        assert HOSTILE_THEME in app.available_themes
        # An unknown theme is answered with a toast that lists every theme by name.
        await pilot.press(*"/theme [b]none[/]", "enter")
        await wait_until(pilot, lambda: bool(app.screen.query("Toast")))
        await pilot.pause()
        toast = str(app.screen.query_one("Toast").render())
        assert "Unknown theme '[b]none[/]'" in toast and SHOWN_THEME in toast
        assert_shown_safely(app)

        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        commands = app.screen
        await pilot.press(*"theme")
        found = commands.query_one(OptionList)
        await wait_until(pilot, lambda: found.option_count > 1)
        # Textual's theme picker, listed next to the /theme command.
        shown = [str(found.get_option_at_index(i).prompt) for i in range(found.option_count)]
        picker = next(i for i, prompt in enumerate(shown) if prompt.startswith("Theme"))
        while found.highlighted != picker:
            await pilot.press("down")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette) and app.screen is not commands)
        await pilot.press(*"evil")
        palette = app.screen
        await wait_until(pilot, lambda: palette.query_one(OptionList).option_count == 1)
        await pilot.pause()
        assert SHOWN_THEME in screen_text(app)
        assert_shown_safely(app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.theme == HOSTILE_THEME)

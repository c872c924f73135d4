"""The command palette (Ctrl+P) offers the slash commands of the one registry and runs them
through the same path as a typed command. Real llama.cpp on a tiny model."""

from __future__ import annotations

from pathlib import Path

from pilot_support import wait_until
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import OptionList

from lollma_tui.core.chat.commands import COMMANDS
from lollma_tui.core.settings import LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.widgets.chat_log import Notice


def make_app(model: Path) -> LollmaApp:
    load = LoadSettings(model=str(model), n_ctx=1024)
    return LollmaApp(StartupOptions(load=load, sampling=SamplingSettings(max_tokens=8)))


async def open_palette(pilot: Pilot[None], query: str) -> CommandPalette:
    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
    palette = app.screen
    assert isinstance(palette, CommandPalette)
    if query:
        await pilot.press(*query)
        await wait_until(pilot, lambda: palette.query_one(OptionList).option_count > 0)
    return palette


def options(palette: CommandPalette) -> list[str]:
    found = palette.query_one(OptionList)
    return [str(found.get_option_at_index(i).prompt) for i in range(found.option_count)]


async def test_the_palette_lists_every_slash_command_with_its_help(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    async with app.run_test(size=(120, 40)) as pilot:
        palette = await open_palette(pilot, "")
        await wait_until(pilot, lambda: len(options(palette)) >= len(COMMANDS))
        shown = "\n".join(options(palette))
        for spec in COMMANDS:
            assert spec.usage in shown and spec.help in shown, spec.name


async def test_a_command_without_argument_runs_as_if_typed(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"not sent yet")
        await open_palette(pilot, "/settings")
        await pilot.press("enter")
        shown = lambda: [str(n.render()) for n in screen.chat_log.query(Notice)]  # noqa: E731
        await wait_until(pilot, lambda: any("temperature" in text for text in shown()))
        # The draft is left alone: the command needed nothing from the prompt.
        assert screen.prompt.text == "not sent yet"
        # /help takes a command name, but picked here it opens the help.
        await open_palette(pilot, "/help")
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")


async def test_a_command_with_an_argument_waits_in_the_prompt_and_the_draft_is_one_up_away(
    tiny_gguf: Path,
) -> None:
    app = make_app(tiny_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press(*"half a question")
        await open_palette(pilot, "/rename")
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.prompt.text == "/rename ")
        assert app.focused is screen.prompt
        await pilot.press(*"Budget", "enter")
        await wait_until(pilot, lambda: screen.conversation.title == "Budget")
        # Up walks back through what was sent: the command, then the draft it put aside.
        await pilot.press("up")
        assert screen.prompt.text == "/rename Budget"
        await pilot.press("up")
        assert screen.prompt.text == "half a question"


async def test_edit_from_the_palette_puts_the_draft_it_replaces_one_up_away(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: screen.models.ready)
        await pilot.press(*"first", "enter")
        await wait_until(pilot, lambda: len(screen.conversation.messages) == 2 and not screen.is_generating)
        await pilot.press(*"half a thought")
        await open_palette(pilot, "/edit")
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.prompt.text == "first")
        shown = [str(n.render()) for n in screen.chat_log.query(Notice)]
        assert shown[-1].endswith("What you were typing is one Up away.")
        await pilot.press("up")
        assert screen.prompt.text == "half a thought"

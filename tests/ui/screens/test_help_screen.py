"""The F1 help: every key and command in a table a reader can scan, each in its own row."""

from __future__ import annotations

from terminal_output import screen_text
from textual.app import App
from textual.widgets._markdown import MarkdownTable

from lollma_tui.core.chat.commands import COMMANDS
from lollma_tui.ui.screens.help import KEYS, HelpScreen


async def test_every_command_and_key_is_one_row_of_two_cells_shown_as_written() -> None:
    # Usages such as "/ngl N|auto|all" hold the table's own cell separator.
    app: App[None] = App()
    async with app.run_test(size=(120, 50)) as pilot:
        await app.push_screen(HelpScreen())
        await pilot.pause()
        keys_table, commands_table = app.screen.query(MarkdownTable)
        await pilot.pause()
        for table, expected in (
            (keys_table, [(key, what) for key, what in KEYS]),
            (commands_table, [(c.usage, c.help) for c in COMMANDS]),
        ):
            rows = [[cell.plain for cell in row] for row in table._rows]
            assert rows == [list(pair) for pair in expected]


async def test_the_help_says_how_to_close_it() -> None:
    # The footer under it is the chat's ("esc Stop"), and the dialog said nothing of its keys.
    app: App[None] = App()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(HelpScreen())
        await pilot.pause()
        assert "Esc, F1 or q closes" in screen_text(app)
        await pilot.press("q")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)

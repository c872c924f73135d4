"""The confirmation and context-overflow dialogs, answered from the keyboard."""

from __future__ import annotations

import pytest
from history_support import HostApp
from pilot_support import wait_until
from textual.widgets import Static

from lollma_tui.ui.screens.confirm import ConfirmScreen
from lollma_tui.ui.screens.context_overflow import ContextOverflowScreen, OverflowChoice


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (("y",), True),
        (("n",), False),
        (("escape",), False),
        (("enter",), False),  # the focus starts on the "no" button
        (("left", "enter"), True),
        (("left", "right", "enter"), False),
    ],
)
async def test_confirm_by_keyboard(keys: tuple[str, ...], expected: bool) -> None:
    app = HostApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = ConfirmScreen("Delete “x”? [b]really[/b]", "Delete [all]", "Keep")
        app.open(screen)
        await wait_until(pilot, lambda: app.screen is screen and screen.is_mounted)
        assert "[b]really[/b]" in str(screen.query_one("#confirm-question", Static).render())
        await pilot.press(*keys)
        await wait_until(pilot, lambda: bool(app.results))
    assert app.results == [expected]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (("t",), OverflowChoice.TRUNCATE),
        (("n",), OverflowChoice.NEW_CONVERSATION),
        (("s",), OverflowChoice.SEND_ANYWAY),
        (("c",), OverflowChoice.CANCEL),
        (("escape",), OverflowChoice.CANCEL),
        (("enter",), OverflowChoice.CANCEL),  # the harmless choice is the default
        (("up", "up", "up", "enter"), OverflowChoice.TRUNCATE),
        (("home", "down", "enter"), OverflowChoice.NEW_CONVERSATION),
        (("up", "enter"), OverflowChoice.SEND_ANYWAY),
    ],
)
async def test_context_overflow_choices(keys: tuple[str, ...], expected: OverflowChoice) -> None:
    app = HostApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = ContextOverflowScreen(used_tokens=3900, n_ctx=4096, total_tokens=4400)
        app.open(screen)
        await wait_until(pilot, lambda: app.screen is screen and screen.is_mounted)
        text = str(screen.query_one("#overflow-question", Static).render())
        assert "(4,400 of 4,096 tokens, 304 too many)" in text
        assert "3,900" in text
        await pilot.press(*keys)
        await wait_until(pilot, lambda: bool(app.results))
    assert app.results == [expected]

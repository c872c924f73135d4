"""The confirmation and context-overflow dialogs, answered from the keyboard."""

from __future__ import annotations

import pytest
from history_support import HostApp
from pilot_support import wait_until
from textual.widgets import OptionList, Static

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


async def test_truncate_is_not_offered_when_there_is_nothing_earlier_to_leave_out() -> None:
    # An empty chat whose message and reply room alone overflowed offered Truncate, which then
    # left out "the oldest 0 messages" and sent it anyway.
    app = HostApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = ContextOverflowScreen(used_tokens=0, n_ctx=256, total_tokens=300, can_truncate=False)
        app.open(screen)
        await wait_until(pilot, lambda: app.screen is screen and screen.is_mounted)
        truncate = screen.query_one("#overflow-choices", OptionList).get_option("truncate")
        assert truncate.disabled and "nothing earlier to leave out" in str(truncate.prompt)
        choices = screen.query_one("#overflow-choices", OptionList)
        await pilot.press("t", "up", "up", "up")
        await pilot.pause()
        assert not app.results and choices.highlighted_option is not truncate
        await pilot.press("c")
        await wait_until(pilot, lambda: bool(app.results))
    assert app.results == [OverflowChoice.CANCEL]

"""Steps the whole-app Pilot tests share: wait for the model, send a message, read the notices."""

from __future__ import annotations

from pilot_support import wait_until
from textual.pilot import Pilot

from lollma_tui.core.backends.base import BackendState
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.widgets.chat_log import Notice, ReplyTurn


def notices(app: LollmaApp) -> list[str]:
    return [str(n.render()) for n in app.chat_screen.chat_log.query(Notice)]


async def wait_ready(pilot: Pilot[None], app: LollmaApp, within: float = 30.0) -> None:
    main = app.chat_screen
    await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY, within)


async def send(pilot: Pilot[None], app: LollmaApp, text: str, within: float = 30.0) -> ReplyTurn:
    """Type `text`, press Enter, and wait until its reply has ended (however it ended)."""
    main = app.chat_screen
    before = len(main.chat_log.reply_turns())
    await pilot.press(*text, "enter")
    await wait_until(pilot, lambda: len(main.chat_log.reply_turns()) > before, within)
    turn = main.chat_log.reply_turns()[-1]
    await wait_until(pilot, lambda: not main.is_generating, within)
    return turn

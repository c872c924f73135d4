"""Which part of the conversation the chat log has mounted.

A plain object the chat screen owns. A conversation opens on its last `TAIL_MESSAGES`; each
time the reader scrolls to the top of the log, the page before it is mounted. A chat kept open
for a long time lets its oldest turns go before a new message is sent: every mounted turn is
laid out again each time the log changes, and a log of 200 turns made a streamed reply cost
four times the CPU of the first, and every message sent slower than the one before. Those turns
come back, as a resumed chat's do, when the reader scrolls up to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lollma_tui.ui.screens.chat import ChatScreen

TAIL_MESSAGES = EARLIER_PAGE = 30
"""Messages mounted when a conversation opens, and then each time the user scrolls up to its top."""
KEPT_TURNS = 2 * TAIL_MESSAGES
"""Turns a live chat keeps mounted: past this many, the oldest are let go down to `TAIL_MESSAGES`
before the next message is sent (sending scrolls to the end: the reader does not lose a place)."""


class ChatPages:
    def __init__(self, screen: ChatScreen) -> None:
        self._screen = screen
        self.shown_from = 0
        """Index in the thread of the first message mounted in the chat log."""

    def opened(self, shown_from: int, has_earlier: bool) -> None:
        """A conversation was mounted from its message `shown_from` on."""
        self.shown_from = shown_from
        self._screen.chat_log.has_earlier = has_earlier

    async def reveal(self, message_id: str) -> None:
        """Mount the earlier messages down to `message_id` at once, then scroll it into view."""
        chat_log, messages = self._screen.chat_log, self._screen.conversation.messages
        index = next((i for i, message in enumerate(messages) if message.id == message_id), None)
        if index is not None and index < self.shown_from:
            start = max(0, index - 2)  # a little above it: what led to it
            await chat_log.prepend_messages(messages[start : self.shown_from], keep_place=False)
            self.opened(start, start > 0)
        chat_log.show_found(message_id)

    async def mount_earlier(self, *, keep_place: bool) -> None:
        """Mount the page before the first mounted message; `keep_place`: the reader scrolled up
        to it, and what they see stays where it is (a jump to a search hit scrolls on its own)."""
        if self.shown_from <= 0:
            return
        start = max(0, self.shown_from - EARLIER_PAGE)
        earlier = self._screen.conversation.messages[start : self.shown_from]
        self.shown_from = start
        await self._screen.chat_log.prepend_messages(earlier, keep_place=keep_place)
        self._screen.chat_log.has_earlier = start > 0

    async def trim(self) -> None:
        """Let the oldest turns go when more than `KEPT_TURNS` are mounted."""
        chat_log, messages = self._screen.chat_log, self._screen.conversation.messages
        first = await chat_log.let_go_oldest(KEPT_TURNS, TAIL_MESSAGES)
        index = next((i for i, message in enumerate(messages) if message.id == first), None)
        if index is not None:
            self.opened(index, index > 0)

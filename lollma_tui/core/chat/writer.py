"""Saving a reply while it streams: buffer deltas in memory, write them at most once per interval.

`append_delta` is on the token path, so it only appends to a list and reads a monotonic clock;
SQL runs when the interval has passed (default 1 s) and on `finish`. A kill -9 therefore loses at
most the text of the last interval. If the model stalls after a delta, the buffered text waits for
the next delta; an app that wants the bound to hold through stalls calls `flush_if_due` from a
timer.

A failed write (the file is locked by another process for longer than the busy timeout) keeps the
text buffered and is retried at the next interval; `error` says what went wrong. Only `finish`
raises, because by then the caller must know the reply was not saved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from lollma_tui.core.backends.base import FinishReason, ReplyStats
from lollma_tui.core.chat.conversation import ReplyState
from lollma_tui.core.chat.errors import StoreError
from lollma_tui.core.settings import SamplingSettings

Clock = Callable[[], float]

_STATE_FOR: dict[str, ReplyState] = {
    "stop": ReplyState.COMPLETE,
    "length": ReplyState.LENGTH,
    "cancelled": ReplyState.STOPPED,
}


def state_for(reason: FinishReason) -> ReplyState:
    """The state a reply ends in for a backend's finish reason."""
    return _STATE_FOR[reason]


class ReplySink(Protocol):
    """What the writer needs from the store (kept narrow so the writer can be tested alone)."""

    def append_reply_text(self, row: int, text: str, thinking: str = "") -> None: ...

    def finish_reply(
        self,
        row: int,
        text: str,
        state: ReplyState,
        stats: ReplyStats | None,
        sampling: SamplingSettings | None,
        error: str | None,
        thinking: str = "",
    ) -> None: ...


class ReplyWriter:
    """One streaming reply's path to disk. Made by `ChatStore.start_reply` and friends."""

    __slots__ = (
        "_clock",
        "_due",
        "_finished",
        "_interval",
        "_parts",
        "_row",
        "_sink",
        "_thinking_parts",
        "conversation_id",
        "error",
        "flushed_chars",
        "flushes",
        "message_id",
    )

    def __init__(
        self,
        sink: ReplySink,
        *,
        row: int,
        message_id: str,
        conversation_id: str,
        clock: Clock,
        interval_s: float,
    ) -> None:
        self._sink = sink
        self._row = row
        self._clock = clock
        self._interval = interval_s
        self._parts: list[str] = []
        self._thinking_parts: list[str] = []
        self._due = clock() + interval_s
        self._finished = False
        self.message_id = message_id
        self.conversation_id = conversation_id
        self.error: str | None = None
        self.flushed_chars = 0
        self.flushes = 0

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def pending_chars(self) -> int:
        return sum(map(len, self._parts))

    def append_delta(self, text: str) -> None:
        self._append(self._parts, text)

    def append_thinking(self, text: str) -> None:
        """The reply's thinking, as it streams: saved with the text, on the same clock."""
        self._append(self._thinking_parts, text)

    def _append(self, parts: list[str], text: str) -> None:
        if self._finished:
            raise StoreError("this reply is already finished")
        parts.append(text)
        if self._clock() >= self._due:
            self.flush()

    def flush_if_due(self) -> bool:
        """Flush if the interval has passed; for an app timer during model stalls. True if written."""
        if self._finished or self._clock() < self._due:
            return False
        return self.flush()

    def flush(self) -> bool:
        """Write the buffered text now. False when the database refused; the text stays buffered."""
        self._due = self._clock() + self._interval
        if not self._parts and not self._thinking_parts:
            return True
        chunk, thinking = "".join(self._parts), "".join(self._thinking_parts)
        try:
            self._sink.append_reply_text(self._row, chunk, thinking)
        except StoreError as exc:
            self.error = str(exc)
            return False
        self._parts.clear()
        self._thinking_parts.clear()
        self.flushed_chars += len(chunk)
        self.flushes += 1
        self.error = None
        return True

    def finish(
        self,
        state: ReplyState,
        *,
        stats: ReplyStats | None = None,
        sampling: SamplingSettings | None = None,
        error: str | None = None,
        thinking: str = "",
    ) -> None:
        """Write the rest of the text and of the thinking (`thinking`: more of it, after what
        `append_thinking` had) and the final state, stats and settings in one transaction."""
        if self._finished:
            raise StoreError("this reply is already finished")
        if state is ReplyState.STREAMING:
            raise ValueError("a reply cannot finish in the STREAMING state")
        chunk = "".join(self._parts)
        thinking = "".join(self._thinking_parts) + thinking
        self._sink.finish_reply(self._row, chunk, state, stats, sampling, error, thinking)
        self._parts.clear()
        self._thinking_parts.clear()
        self.flushed_chars += len(chunk)
        self.flushes += 1
        self._finished = True

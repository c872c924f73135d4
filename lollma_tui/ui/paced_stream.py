"""Streamed reply text handed to the reply widget at a steady pace, not token by token.

Every update re-renders the reply's last block and repaints what changed: 2-3 ms of UI time
on a small machine, and a whole-screen repaint when the reply needs more room (see
`widgets.reply_markdown`). Token by token, at 40 tok/s, that is a good part of a core taken
from llama.cpp's threads, and generation slows to match. So updates come at most ten times a
second, and less often when the process is busy: the pace is set so that the UI process spends
about `UI_SHARE` of one core while a reply streams (measured, not guessed: its CPU time per
update, token handling included). A slow stream on a fast machine gets ten updates a second;
100 tok/s on this project's 2-core test box gets four.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

FASTEST_S = 0.1
"""The most often the reply's Markdown changes while it streams."""

SLOWEST_S = 0.25
"""The least often: below four a second the text no longer reads as streaming."""

UI_SHARE = 0.02
"""Share of one core the UI process may spend on a streaming reply before updates thin out."""


class TextStream(Protocol):
    """What `Markdown.get_stream()` returns, as far as this module uses it."""

    async def write(self, markdown_fragment: str) -> None: ...

    async def stop(self) -> None: ...


class PacedStream:
    """Collects fragments and writes them at most every `interval_s`; text never waits longer."""

    def __init__(
        self,
        stream: TextStream,
        fastest_s: float = FASTEST_S,
        slowest_s: float = SLOWEST_S,
        *,
        cpu_clock: Callable[[], float] = time.process_time,
        on_write: Callable[[], None] | None = None,
    ) -> None:
        self._stream = stream
        self._on_write = on_write
        """Called just before each write while the stream runs (not for the last one, from
        `stop`): what else the reader sees change (the live tokens/s) changes in the same screen
        update, not in one of its own; a stopped stream has nothing live left to show."""
        self._fastest_s = fastest_s
        self._slowest_s = max(slowest_s, fastest_s)
        self._cpu_clock = cpu_clock
        self.interval_s = fastest_s
        self._pending: list[str] = []
        self._last = float("-inf")
        self._cpu_at_last: float | None = None
        self._waiting: asyncio.Task[None] | None = None

    async def write(self, text: str) -> None:
        if not text:
            return
        self._pending.append(text)
        if self._waiting is not None:
            return  # a write is already booked; it takes this text too
        delay = self._last + self.interval_s - time.monotonic()
        if delay <= 0:
            await self._flush()
        else:
            self._waiting = asyncio.create_task(self._flush_after(delay), name="reply-markdown-pace")

    async def _flush_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._waiting = None
        await self._flush()

    def _adjust_pace(self) -> None:
        # CPU the process spent since the previous update: that update's layout and paint, and
        # the tokens handled meanwhile. Spread over the interval, it should stay near UI_SHARE.
        cpu = self._cpu_clock()
        if self._cpu_at_last is not None:
            wanted = (cpu - self._cpu_at_last) / UI_SHARE
            smoothed = 0.7 * self.interval_s + 0.3 * wanted
            self.interval_s = min(self._slowest_s, max(self._fastest_s, smoothed))
        self._cpu_at_last = cpu

    async def _flush(self, *, last: bool = False) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._last = time.monotonic()
        self._adjust_pace()
        if self._on_write is not None and not last:
            self._on_write()
        await self._stream.write(text)

    async def stop(self) -> None:
        """Write what is left and stop the underlying stream."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        await self._flush(last=True)
        await self._stream.stop()

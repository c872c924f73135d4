"""Streamed reply text handed to the Markdown widget at a steady pace, not token by token.

Every Markdown update re-parses the last block and lays out the chat again (~25 ms of UI time
here). Token by token, at 40 tok/s, that is a core's worth of work taken from llama.cpp's
threads on a small machine, and generation slows to match. Ten updates a second read as live.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

UPDATES_EVERY_S = 0.1
"""The most often the reply's Markdown changes while it streams."""


class TextStream(Protocol):
    """What `Markdown.get_stream()` returns, as far as this module uses it."""

    async def write(self, markdown_fragment: str) -> None: ...

    async def stop(self) -> None: ...


class PacedStream:
    """Collects fragments and writes them at most every `every_s`; text never waits longer."""

    def __init__(self, stream: TextStream, every_s: float = UPDATES_EVERY_S) -> None:
        self._stream = stream
        self._every_s = every_s
        self._pending: list[str] = []
        self._last = float("-inf")
        self._waiting: asyncio.Task[None] | None = None

    async def write(self, text: str) -> None:
        if not text:
            return
        self._pending.append(text)
        if self._waiting is not None:
            return  # a write is already booked; it takes this text too
        delay = self._last + self._every_s - time.monotonic()
        if delay <= 0:
            await self._flush()
        else:
            self._waiting = asyncio.create_task(self._flush_after(delay), name="reply-markdown-pace")

    async def _flush_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._waiting = None
        await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._last = time.monotonic()
        await self._stream.write(text)

    async def stop(self) -> None:
        """Write what is left and stop the underlying stream."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        await self._flush()
        await self._stream.stop()

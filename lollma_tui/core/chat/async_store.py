"""The chat store for an event loop: every SQLite call runs on one thread of its own.

SQLite is synchronous and its connection belongs to the thread that opened it, so the store is
opened, used and closed on a single worker thread; callers await the results. A streaming reply
buffers its text on the event loop and hands it over at most once a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import ParamSpec, TypeVar

from lollma_tui.core.backends.base import ReplyStats
from lollma_tui.core.chat.conversation import ReplyState
from lollma_tui.core.chat.opening import StoreOpen, open_store
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.chat.writer import ReplyWriter
from lollma_tui.core.settings import SamplingSettings

P = ParamSpec("P")
T = TypeVar("T")

FLUSH_INTERVAL_S = 1.0


class AsyncStore:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chat-store")
        self._store: ChatStore | None = None

    @property
    def store(self) -> ChatStore:
        if self._store is None:
            raise RuntimeError("the chat store is not open")
        return self._store

    @property
    def is_open(self) -> bool:
        return self._store is not None

    async def open(self, path: Path | None = None) -> StoreOpen:
        opened = await self.run(open_store, path)
        self._store = opened.store
        return opened

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `function` on the store's thread and wait for its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(function, *args, **kwargs))

    async def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            await self.run(store.close)
        self._executor.shutdown(wait=False)

    def streaming(
        self, writer: ReplyWriter, *, clock: Callable[[], float] = time.monotonic
    ) -> StreamingReply:
        return StreamingReply(self, writer, clock=clock)


class StreamingReply:
    """One reply being streamed: text collects here and reaches the database about once a second.

    `add` is called per piece on the event loop and only appends to a list. Each hand-over takes
    the buffered text on the loop and queues it on the store's single thread, so pieces reach the
    database in order even when a timer flush and a streaming flush interleave.
    """

    def __init__(
        self,
        store: AsyncStore,
        writer: ReplyWriter,
        *,
        interval_s: float = FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._writer = writer
        self._interval = interval_s
        self._clock = clock
        self._pending: list[str] = []
        self._due = clock() + interval_s
        self.message_id = writer.message_id
        self.finished = False

    def add(self, text: str) -> None:
        self._pending.append(text)

    @property
    def due(self) -> bool:
        return bool(self._pending) and self._clock() >= self._due

    async def flush(self) -> None:
        self._due = self._clock() + self._interval
        if not self._pending or self.finished:
            return
        chunk = "".join(self._pending)
        self._pending.clear()
        await self._store.run(_write, self._writer, chunk)

    async def flush_if_due(self) -> None:
        if self.due:
            await self.flush()

    async def finish(
        self,
        state: ReplyState,
        *,
        stats: ReplyStats | None = None,
        sampling: SamplingSettings | None = None,
        error: str | None = None,
    ) -> None:
        if self.finished:
            return
        self.finished = True
        chunk = "".join(self._pending)
        self._pending.clear()
        await self._store.run(_finish, self._writer, chunk, state, stats, sampling, error)


def _write(writer: ReplyWriter, chunk: str) -> None:
    writer.append_delta(chunk)
    writer.flush()


def _finish(
    writer: ReplyWriter,
    chunk: str,
    state: ReplyState,
    stats: ReplyStats | None,
    sampling: SamplingSettings | None,
    error: str | None,
) -> None:
    if chunk:
        writer.append_delta(chunk)
    writer.finish(state, stats=stats, sampling=sampling, error=error)

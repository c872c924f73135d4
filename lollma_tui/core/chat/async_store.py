"""The chat store for an event loop: every SQLite call runs on one thread of its own.

SQLite is synchronous and its connection belongs to the thread that opened it, so the store is
opened, used and closed on a single worker thread; callers await the results. A streaming reply
buffers its text on the event loop and hands it over at most once a second, without waiting for
the database: another program holding the file's lock must not stall the reply.
"""

from __future__ import annotations

import asyncio
import os
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
RETRY_S = 0.1
"""How soon a timer looks again while the last hand-over still waits for the database."""


class AsyncStore:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chat-store")
        self._store: ChatStore | None = None
        self._file: tuple[int, int] | None = None

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
        self._file = await self.run(_file_identity, opened.store.path)
        return opened

    async def file_gone(self) -> bool:
        """Whether the file opened was deleted (or replaced) since: SQLite goes on writing to the
        deleted file, and all of it is lost when the app ends."""
        store = self._store
        if store is None or self._file is None:
            return False
        return await self.run(_file_identity, store.path) != self._file

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `function` on the store's thread and wait for its result."""
        return await self.submit(function, *args, **kwargs)

    def submit(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Queue `function` on the store's thread now; calls run in the order they were queued."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, partial(function, *args, **kwargs))

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

    `add` is called per piece on the event loop and only appends to a list. A hand-over takes the
    buffered text on the loop and queues it on the store's single thread without waiting for it:
    while the file is locked by another writer the save waits there, and the reply goes on. One
    hand-over is in flight at a time; text that comes meanwhile goes with the next one, and
    `finish` goes after it, so pieces reach the database in order. Text that is not due yet is
    handed over by a timer if no piece comes to do it (a model that pauses), so at most the
    interval's text is lost to a crash.
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
        self._pending_thinking: list[str] = []
        self._due = clock() + interval_s
        self._in_flight: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.message_id = writer.message_id
        self.finished = False

    def add(self, text: str) -> None:
        self._pending.append(text)

    def add_thinking(self, text: str) -> None:
        """The reply's thinking, as it streams: handed over with the text (a reasoning model may
        think for minutes before it writes a word)."""
        self._pending_thinking.append(text)

    @property
    def due(self) -> bool:
        return self._has_pending and self._clock() >= self._due

    @property
    def _has_pending(self) -> bool:
        return bool(self._pending or self._pending_thinking)

    @property
    def saving(self) -> bool:
        """A hand-over is still waiting for the database."""
        return self._in_flight is not None and not self._in_flight.done()

    def flush_if_due(self) -> None:
        """Hand the buffered text over if the interval has passed and the last hand-over is done;
        otherwise make sure a timer will look again."""
        if self.finished or not self._has_pending:
            return
        if self.saving or not self.due:
            if self._timer is None:
                wait = max(self._due - self._clock(), RETRY_S)
                self._timer = asyncio.get_running_loop().call_later(wait, self._timer_fired)
            return
        if self._in_flight is not None:
            self._in_flight.result()  # a failure other than a locked file is not kept quiet
        self._due = self._clock() + self._interval
        chunk, thinking = "".join(self._pending), "".join(self._pending_thinking)
        self._pending.clear()
        self._pending_thinking.clear()
        self._in_flight = self._store.submit(_write, self._writer, chunk, thinking)

    def _timer_fired(self) -> None:
        self._timer = None
        self.flush_if_due()

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
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._in_flight is not None:
            await self._in_flight
        chunk, thinking = "".join(self._pending), "".join(self._pending_thinking)
        self._pending.clear()
        self._pending_thinking.clear()
        await self._store.run(_finish, self._writer, chunk, state, stats, sampling, error, thinking)


def _write(writer: ReplyWriter, chunk: str, thinking: str) -> None:
    if thinking:
        writer.append_thinking(thinking)
    if chunk:
        writer.append_delta(chunk)
    writer.flush()


def _finish(
    writer: ReplyWriter,
    chunk: str,
    state: ReplyState,
    stats: ReplyStats | None,
    sampling: SamplingSettings | None,
    error: str | None,
    thinking: str,
) -> None:
    if chunk:
        writer.append_delta(chunk)
    writer.finish(state, stats=stats, sampling=sampling, error=error, thinking=thinking)


def _file_identity(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino

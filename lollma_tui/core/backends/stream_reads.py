"""A server's reply stream read in batches: the network at most every `READ_EVERY_S`.

Ollama and OpenAI-compatible servers send one small chunk per token. Read as they come, each
chunk wakes the event loop and passes through anyio, httpcore and h11 on its own: at 100 tok/s
that alone is 4-5 % of a core in the app, twice what a blocking client reading the same stream
pays (scripts/perf/stream_cpu.py). Pausing after a chunk that needed a fresh read lets the next
few queue up in the socket, and one read then brings them all; the reply reaches the screen no
later than it is drawn anyway (`ui.paced_stream` updates it at most ten times a second).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TypeVar

T = TypeVar("T")

READ_EVERY_S = 0.05
"""The longest a chunk waits in the socket for the next read."""

SAME_READ_S = 0.001
"""A chunk that follows the one before faster than this came from the same read."""


async def batched_reads(stream: AsyncIterable[T], every_s: float = READ_EVERY_S) -> AsyncIterator[T]:
    """The items of `stream`, all of them and in order, read from the network in batches.

    Closing the stream stays the caller's job (it owns it): a cancelled pause ends this
    iteration the same way a cancelled read does.
    """
    async for item, _ in stamped_reads(stream, every_s):
        yield item


async def stamped_reads(
    stream: AsyncIterable[T],
    every_s: float = READ_EVERY_S,
    pause_after: Callable[[T], bool] = lambda _: True,
) -> AsyncIterator[tuple[T, float | None]]:
    """`batched_reads`, each item with when it arrived (`time.perf_counter()`) where that is
    known: for an item that was waited for. One that waited in the socket during a pause came
    at some moment the pause hides (None); stamped when read, the last tokens of a reply were
    up to a pause late, and a short reply's client-side tok/s read 20 % low.

    No pause follows an item `pause_after` declines (a reply's opening chunk, which holds no
    text): the first token then arrives unhidden, and its time is the time to first token.
    """
    loop = asyncio.get_running_loop()
    last = loop.time()
    paused = False
    async for item in stream:
        # The read after a pause goes to the network whatever came meanwhile, and on a busy
        # machine that trip alone outlasts `SAME_READ_S`: judged waited for, it paused again
        # with the rest of its batch in hand, and the stream was read a chunk per pause.
        waited = not paused and loop.time() - last > SAME_READ_S
        yield item, time.perf_counter() if waited else None
        paused = waited and pause_after(item)
        if paused:
            # This chunk was waited for: the ones after it have not arrived yet either.
            await asyncio.sleep(every_s)
        last = loop.time()

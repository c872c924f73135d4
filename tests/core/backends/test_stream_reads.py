"""A server's stream read in batches: every item, in order, with far fewer waits on the network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lollma_tui.core.backends.stream_reads import batched_reads

ITEMS = 100
EVERY_S = 0.005
"""How often the fake server sends an item: 200 a second, like a fast model."""


async def serve(arrived: asyncio.Queue[int | None]) -> None:
    """The fake server: `ITEMS` items, one every `EVERY_S`, then the end (None)."""
    for k in range(ITEMS):
        arrived.put_nowait(k)
        await asyncio.sleep(EVERY_S)
    arrived.put_nowait(None)


async def test_a_steady_stream_is_read_in_batches_and_nothing_is_lost() -> None:
    arrived: asyncio.Queue[int | None] = asyncio.Queue()
    waits = 0

    async def network() -> AsyncIterator[int]:
        # A read that finds nothing waiting has to wait for the server: one wake-up each.
        nonlocal waits
        while True:
            if arrived.empty():
                waits += 1
            item = await arrived.get()
            if item is None:
                return
            yield item

    sending = asyncio.create_task(serve(arrived))
    received = [item async for item in batched_reads(network(), every_s=0.05)]
    await sending
    assert received == list(range(ITEMS))
    # Read one by one, nearly every item is a wait; in batches, about one per 50 ms.
    batches = ITEMS * EVERY_S / 0.05
    assert waits <= 2 * batches + 2, f"{waits} waits for {ITEMS} items"


async def test_a_busy_machine_still_reads_all_that_came_during_a_pause() -> None:
    # On a machine whose cores are busy, the first trip to the network after a quiet spell takes
    # a few ms even with data waiting: the read after a pause looked waited for, paused again,
    # and 100 items took 100 pauses (5 s) while the server sent them in 0.5 s.
    arrived: asyncio.Queue[int | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def network() -> AsyncIterator[int]:
        handed = loop.time()
        while True:
            quiet = loop.time() - handed > 0.02
            await asyncio.sleep(0.003 if quiet else 0)
            item = await arrived.get()
            if item is None:
                return
            handed = loop.time()
            yield item

    started = loop.time()
    sending = asyncio.create_task(serve(arrived))
    received = [item async for item in batched_reads(network(), every_s=0.05)]
    await sending
    assert received == list(range(ITEMS))
    assert loop.time() - started < ITEMS * EVERY_S + 1.0  # the server sends them in 0.5 s


async def test_a_cancelled_pause_ends_the_reading() -> None:
    async def network() -> AsyncIterator[int]:
        for k in range(3):
            await asyncio.sleep(0.01)
            yield k

    received: list[int] = []

    async def read() -> None:
        async for item in batched_reads(network(), every_s=10.0):
            received.append(item)

    reading = asyncio.create_task(read())
    await asyncio.sleep(0.1)
    reading.cancel()
    await asyncio.wait({reading}, timeout=1.0)
    assert reading.cancelled()
    assert received == [0]  # the first item was handed on before the pause, not held in it

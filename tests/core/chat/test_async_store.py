"""A streaming reply's saves on the store's own thread: never awaited per piece, and never left
waiting for the next piece when the model pauses."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lollma_tui.core.chat.async_store import AsyncStore, StreamingReply
from lollma_tui.core.chat.conversation import ReplyState

INTERVAL_S = 0.2


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    opened = AsyncStore()
    await opened.open(tmp_path / "history.db")
    yield opened
    await opened.close()


async def streaming(store: AsyncStore) -> StreamingReply:
    conversation = await store.run(store.store.new_conversation)
    writer = await store.run(store.store.start_reply, conversation.id)
    return StreamingReply(store, writer, interval_s=INTERVAL_S)


async def saved_text(store: AsyncStore, reply: StreamingReply) -> str:
    return (await store.run(store.store.get_message, reply.message_id)).content


async def test_text_of_a_paused_reply_is_saved_without_another_piece(store: AsyncStore) -> None:
    # A model that pauses (a long think, a slow server) used to leave the text since the last
    # save in memory until its next piece: a crash then lost more than the interval's text.
    reply = await streaming(store)
    reply.add("Hello")
    reply.flush_if_due()  # not due yet; then no piece comes for a while
    await asyncio.sleep(INTERVAL_S * 3)
    assert await saved_text(store, reply) == "Hello"
    reply.add(", world")
    await reply.finish(ReplyState.COMPLETE)
    assert await saved_text(store, reply) == "Hello, world"


async def test_thinking_is_saved_while_the_model_thinks_and_the_rest_when_it_ends(store: AsyncStore) -> None:
    reply = await streaming(store)
    reply.add_thinking("Two plus")
    reply.flush_if_due()  # not due yet; the timer hands it over
    await asyncio.sleep(INTERVAL_S * 3)
    saved = await store.run(store.store.get_message, reply.message_id)
    assert (saved.thinking, saved.content) == ("Two plus", "")
    reply.add_thinking(" two.")
    reply.add("Four.")
    await reply.finish(ReplyState.COMPLETE)
    saved = await store.run(store.store.get_message, reply.message_id)
    assert (saved.thinking, saved.content, saved.state) == ("Two plus two.", "Four.", ReplyState.COMPLETE)


async def test_pieces_go_on_while_another_writer_holds_the_file(store: AsyncStore, tmp_path: Path) -> None:
    reply = await streaming(store)
    other = sqlite3.connect(tmp_path / "history.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        slowest = 0.0
        for piece in ("one ", "two ", "three ", "four ", "five"):
            before = loop.time()
            reply.add(piece)
            reply.flush_if_due()
            slowest = max(slowest, loop.time() - before)
            await asyncio.sleep(INTERVAL_S)
        assert slowest < 0.05, "a piece waited for the locked database"
        assert loop.time() - started < 5 * INTERVAL_S + 1.0
        assert reply.saving
    finally:
        other.rollback()
        other.close()
    await reply.finish(ReplyState.COMPLETE)
    assert await saved_text(store, reply) == "one two three four five"

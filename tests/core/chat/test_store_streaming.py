"""Replies saved while they stream: time-based flushing, final states, stats, continue, recover."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from store_helpers import FakeClock, raw_rows, sample_sampling, sample_stats

from lollma_tui.core.chat.conversation import Conversation, Message, ReplyState
from lollma_tui.core.chat.errors import StoreError
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.chat.writer import state_for

Reopen = Callable[[], ChatStore]


def _on_disk(path: Path, message_id: str) -> tuple[str, str]:
    rows = raw_rows(path, "SELECT content, state FROM messages WHERE id = ?", (message_id,))
    assert len(rows) == 1
    content, state = rows[0]
    return str(content), str(state)


@pytest.fixture
def chat(store: ChatStore) -> Conversation:
    conversation = store.new_conversation()
    store.add_message(conversation.id, Message("user", "tell me a story"))
    return conversation


def test_user_message_is_on_disk_before_any_reply(
    store: ChatStore, chat: Conversation, db_path: Path
) -> None:
    rows = raw_rows(db_path, "SELECT role, content FROM messages WHERE conversation_id = ?", (chat.id,))
    assert rows == [("user", "tell me a story")]


def test_deltas_are_buffered_until_the_interval_passes(
    store: ChatStore, chat: Conversation, clock: FakeClock, db_path: Path
) -> None:
    writer = store.start_reply(chat.id)
    assert _on_disk(db_path, writer.message_id) == ("", "streaming")

    for text in ("Once", " upon", " a"):
        writer.append_delta(text)
        clock.advance(0.3)
    assert _on_disk(db_path, writer.message_id) == ("", "streaming")
    assert writer.pending_chars == len("Once upon a")

    clock.advance(0.2)  # 1.1 s since the writer started
    writer.append_delta(" time")
    assert _on_disk(db_path, writer.message_id) == ("Once upon a time", "streaming")
    assert (writer.flushes, writer.pending_chars) == (1, 0)

    writer.append_delta(",")
    clock.advance(0.5)
    writer.append_delta(" there")
    assert _on_disk(db_path, writer.message_id)[0] == "Once upon a time"


def test_flush_if_due_covers_a_stalled_model(
    store: ChatStore, chat: Conversation, clock: FakeClock, db_path: Path
) -> None:
    writer = store.start_reply(chat.id)
    writer.append_delta("thinking")
    assert writer.flush_if_due() is False
    clock.advance(1.0)
    assert writer.flush_if_due() is True
    assert _on_disk(db_path, writer.message_id)[0] == "thinking"


@pytest.mark.parametrize(
    ("state", "error"),
    [
        (ReplyState.COMPLETE, None),
        (ReplyState.STOPPED, None),
        (ReplyState.LENGTH, None),
        (ReplyState.ERROR, "worker crashed"),
    ],
)
def test_finish_writes_everything_at_once(
    store: ChatStore, chat: Conversation, reopen: Reopen, state: ReplyState, error: str | None
) -> None:
    writer = store.start_reply(chat.id)
    writer.append_delta("partial")
    writer.append_delta(" text")
    stats = sample_stats()
    writer.finish(state, stats=stats, sampling=sample_sampling(), error=error)

    window = reopen().load(chat.id)
    reply = window.conversation.messages[-1]
    assert (reply.id, reply.content, reply.state, reply.error) == (
        writer.message_id,
        "partial text",
        state,
        error,
    )
    assert reply.stats == stats
    assert window.meta[reply.id].sampling == sample_sampling()
    with pytest.raises(StoreError):
        writer.append_delta("more")
    with pytest.raises(StoreError):
        writer.finish(state)


def test_finish_refuses_streaming_state(store: ChatStore, chat: Conversation) -> None:
    writer = store.start_reply(chat.id)
    with pytest.raises(ValueError, match="STREAMING"):
        writer.finish(ReplyState.STREAMING)


def test_finish_reasons_map_to_states() -> None:
    assert state_for("stop") is ReplyState.COMPLETE
    assert state_for("length") is ReplyState.LENGTH
    assert state_for("cancelled") is ReplyState.STOPPED


def test_the_apps_own_message_object_keeps_its_id(
    store: ChatStore, chat: Conversation, reopen: Reopen
) -> None:
    reply = chat.start_reply()
    writer = store.start_reply(chat.id, message=reply)
    writer.finish(ReplyState.COMPLETE)
    assert reopen().load(chat.id).conversation.messages[-1].id == reply.id
    with pytest.raises(ValueError, match="assistant"):
        store.start_reply(chat.id, message=Message("user", ""))


def test_finishing_updates_the_conversation_time(store: ChatStore, chat: Conversation) -> None:
    other = store.new_conversation()
    writer = store.start_reply(chat.id)
    store.add_message(other.id, Message("user", "meanwhile"))
    assert store.latest_conversation_id() == other.id
    writer.finish(ReplyState.COMPLETE)
    assert store.latest_conversation_id() == chat.id


def test_continue_appends_to_the_same_reply(store: ChatStore, chat: Conversation, reopen: Reopen) -> None:
    first = sample_stats(gen_tokens=50)
    writer = store.start_reply(chat.id)
    writer.append_delta("The end is")
    writer.finish(ReplyState.LENGTH, stats=first, sampling=sample_sampling())

    more = store.continue_reply(writer.message_id)
    assert more.message_id == writer.message_id
    assert store.get_message(writer.message_id).state is ReplyState.STREAMING
    more.append_delta(" near.")
    more.finish(ReplyState.COMPLETE)

    window = reopen().load(chat.id)
    assert window.total == 2
    reply = window.conversation.messages[-1]
    assert (reply.content, reply.state, reply.stats) == ("The end is near.", ReplyState.COMPLETE, first)
    assert window.meta[reply.id].sampling == sample_sampling()

    with pytest.raises(ValueError, match="assistant"):
        store.continue_reply(window.conversation.messages[0].id)


def test_recover_marks_abandoned_replies_incomplete(
    db_path: Path, store: ChatStore, chat: Conversation
) -> None:
    writer = store.start_reply(chat.id)
    writer.append_delta("half a thought")
    writer.flush()
    done = store.start_reply(chat.id, parent_id=writer.message_id)
    done.finish(ReplyState.COMPLETE)
    store.close()  # the writer is abandoned, as if the app died

    survivor = ChatStore.open(db_path)
    try:
        assert survivor.recover() == 1
        assert survivor.recover() == 0
        reply = survivor.get_message(writer.message_id)
        assert (reply.content, reply.state) == ("half a thought", ReplyState.INCOMPLETE)
        assert survivor.get_message(done.message_id).state is ReplyState.COMPLETE
    finally:
        survivor.close()


def test_recovering_one_conversation_leaves_the_others_streaming(
    store: ChatStore, chat: Conversation
) -> None:
    other = store.new_conversation()
    mine = store.start_reply(chat.id)
    mine.append_delta("cut off")
    mine.flush()
    theirs = store.start_reply(other.id)
    theirs.append_delta("still coming")
    theirs.flush()
    assert store.recover(chat.id) == 1
    assert store.get_message(mine.message_id).state is ReplyState.INCOMPLETE
    assert store.get_message(theirs.message_id).state is ReplyState.STREAMING
    assert store.recover(chat.id) == 0


def test_recovering_nothing_does_not_wait_for_another_writer(db_path: Path) -> None:
    # Another lollma-tui saving its reply holds the write lock now and then: opening a chat (or
    # starting) with no reply to mark must not queue behind it, or fail after the busy timeout.
    store = ChatStore.open(db_path, busy_timeout_s=0.05)
    try:
        chat = store.new_conversation()
        store.add_message(chat.id, Message("user", "hello"))
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            assert store.recover(chat.id) == 0
            assert store.recover() == 0
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    finally:
        store.close()


def test_a_locked_file_keeps_text_buffered_until_it_can_write(
    db_path: Path, clock: FakeClock, wall: FakeClock
) -> None:
    store = ChatStore.open(db_path, clock=clock, wall_clock=wall, busy_timeout_s=0.05)
    try:
        chat = store.new_conversation()
        writer = store.start_reply(chat.id)
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            writer.append_delta("kept")
            clock.advance(1.0)
            writer.append_delta(" safe")
            assert writer.error is not None
            assert "locked" in writer.error
            assert writer.pending_chars == len("kept safe")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        clock.advance(1.0)
        writer.append_delta("!")
        assert writer.error is None
        assert _on_disk(db_path, writer.message_id)[0] == "kept safe!"
    finally:
        store.close()


def test_a_replys_thinking_is_saved_as_it_streams_before_any_text(
    store: ChatStore, chat: Conversation, clock: FakeClock, db_path: Path, reopen: Reopen
) -> None:
    # A reasoning model may think for minutes before its answer: a crash (an ssh session that
    # drops) keeps what it thought up to the last flush, as it does the text.
    writer = store.start_reply(chat.id)
    writer.append_thinking("Two plus")
    clock.advance(1.1)
    writer.append_thinking(" two")
    [(thinking, content)] = raw_rows(
        db_path, "SELECT thinking, content FROM messages WHERE id = ?", (writer.message_id,)
    )
    assert (thinking, content) == ("Two plus two", "")
    writer.append_thinking(" is four.")
    clock.advance(1.1)
    writer.append_delta("Four")
    # Never finished: the next start finds the thinking and the text as last flushed.
    reply = reopen().get_message(writer.message_id)
    assert (reply.thinking, reply.content) == ("Two plus two is four.", "Four")


def test_a_replys_thinking_is_saved_when_it_ends_and_a_continuation_keeps_it(
    store: ChatStore, chat: Conversation, reopen: Callable[[], ChatStore]
) -> None:
    writer = store.start_reply(chat.id)
    writer.append_thinking("Two plus two")
    writer.append_delta("Four.")
    writer.finish(ReplyState.COMPLETE, thinking=" is four.")
    continued = store.continue_reply(writer.message_id)
    continued.append_delta(" Really.")
    continued.finish(ReplyState.COMPLETE)  # no new thinking: the saved one stays

    again = reopen()
    reply = again.get_message(writer.message_id)
    assert (reply.content, reply.thinking) == ("Four. Really.", "Two plus two is four.")
    assert again.load(chat.id).conversation.messages[-1].thinking == "Two plus two is four."
    # Never sent back to the model.
    assert "Two plus two" not in str(again.load(chat.id).conversation.history())

"""Whether another lollma-tui uses the history file or shows a conversation: real processes, real
`flock` locks."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from other_instance import another_instance

from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.errors import ConversationInUseError
from lollma_tui.core.chat.history_users import HistoryUsers
from lollma_tui.core.chat.opening import open_store
from lollma_tui.core.chat.store import ChatStore


def test_alone_until_another_process_joins_and_alone_again_once_it_is_killed(tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    first = HistoryUsers.join(history)
    assert first.alone
    first.close()
    with another_instance(history) as other:
        second = HistoryUsers.join(history)
        assert not second.alone
        second.close()
        other.send_signal(signal.SIGKILL)  # no clean-up of its own: the kernel drops its lock
        other.wait(timeout=10)
        third = HistoryUsers.join(history)
        assert third.alone
        third.close()


def test_an_in_memory_store_is_used_by_no_one_else() -> None:
    assert HistoryUsers.join(None).alone


def test_a_reply_another_process_is_writing_is_not_marked_as_cut_off(tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    with ChatStore.open(history) as store:
        chat = store.new_conversation()
        store.add_message(chat.id, Message("user", "a long story, please"))
        writer = store.start_reply(chat.id)
        writer.append_delta("Once upon")
        writer.flush()
    with another_instance(history):
        opened = open_store(history)
        try:
            assert opened.others and opened.recovered == 0
            assert opened.store.get_message(writer.message_id).state is ReplyState.STREAMING
        finally:
            opened.store.close()
    # The other one is gone and never finished it: a crash left it, and the next start says so.
    opened = open_store(history)
    try:
        assert not opened.others and opened.recovered == 1
        assert opened.store.get_message(writer.message_id).state is ReplyState.INCOMPLETE
    finally:
        opened.store.close()
    # A store that is closed has left: the next one to open is alone.
    second = HistoryUsers.join(history)
    assert second.alone
    second.close()


def test_a_conversation_held_by_one_process_is_refused_to_another_until_it_lets_go(tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    first, second = HistoryUsers.join(history), HistoryUsers.join(history)
    try:
        assert first.hold("aaa") and first.hold("aaa")  # holding it again changes nothing
        assert second.held_elsewhere("aaa") and not first.held_elsewhere("aaa")
        assert not second.hold("aaa")
        assert second.hold("bbb")
        # Holding another lets go of the one before.
        assert first.hold("ccc")
        assert not second.held_elsewhere("aaa")
        assert second.hold("aaa")
        # The one it held before is free again, and a chat nobody ever held is free.
        assert not first.held_elsewhere("bbb") and not first.held_elsewhere("never")
        second.release()
        assert first.hold("aaa")
    finally:
        first.close()
        second.close()


def test_a_killed_holder_lets_go_and_an_in_memory_store_holds_anything(tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    users = HistoryUsers.join(history)
    try:
        with another_instance(history, holding="abc123") as other:
            assert users.held_elsewhere("abc123") and not users.hold("abc123")
            other.send_signal(signal.SIGKILL)
            other.wait(timeout=10)
            assert not users.held_elsewhere("abc123") and users.hold("abc123")
    finally:
        users.close()
    alone = HistoryUsers.join(None)
    assert alone.hold("abc123") and not alone.held_elsewhere("abc123")


def test_a_chat_open_in_another_process_is_not_deleted(tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    opened = open_store(history)
    store = opened.store
    try:
        chat = store.new_conversation()
        store.add_message(chat.id, Message("user", "still writing here"))
        with another_instance(history, holding=chat.id):
            with pytest.raises(ConversationInUseError, match="open in another lollma-tui"):
                store.delete_conversation(chat.id)
            assert store.load(chat.id).conversation.messages[0].content == "still writing here"
        store.delete_conversation(chat.id)
        assert store.count_conversations() == 0
        # Its lock file went with it.
        assert list((tmp_path / "history.db.open").iterdir()) == []
    finally:
        store.close()


def test_ids_that_are_not_plain_names_are_hashed_into_one(tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    first, second = HistoryUsers.join(history), HistoryUsers.join(history)
    try:
        assert first.hold("../../escape")
        assert second.held_elsewhere("../../escape")
        assert [p.parent for p in (tmp_path / "history.db.open").iterdir()] == [tmp_path / "history.db.open"]
        assert not (tmp_path / "escape").exists()
    finally:
        first.close()
        second.close()

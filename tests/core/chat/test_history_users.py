"""Whether another lollma-tui uses the history file: real processes, real `flock` locks."""

from __future__ import annotations

import signal
from pathlib import Path

from other_instance import another_instance

from lollma_tui.core.chat.conversation import Message, ReplyState
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

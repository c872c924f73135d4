"""Edit-and-resend and regenerate: the visible thread changes, old branches stay in the store."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from store_helpers import sample_stats

from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.store import ChatStore

Reopen = Callable[[], ChatStore]


def _turn(store: ChatStore, conversation_id: str, question: str, answer: str) -> tuple[str, str]:
    user = store.add_message(conversation_id, Message("user", question))
    writer = store.start_reply(conversation_id)
    writer.append_delta(answer)
    writer.finish(ReplyState.COMPLETE, stats=sample_stats())
    return user.id, writer.message_id


def _thread(store: ChatStore, conversation_id: str) -> list[str]:
    return [m.content for m in store.load(conversation_id).conversation.messages]


def test_edit_and_resend_replaces_later_turns_but_keeps_them(store: ChatStore, reopen: Reopen) -> None:
    chat = store.new_conversation()
    q1, a1 = _turn(store, chat.id, "q1", "a1")
    q2, _a2 = _turn(store, chat.id, "q2", "a2")
    _turn(store, chat.id, "q3", "a3")

    edited = store.branch_from(q2, "q2 edited")
    writer = store.start_reply(chat.id)
    writer.append_delta("a2 new")
    writer.finish(ReplyState.COMPLETE)

    again = reopen()
    assert _thread(again, chat.id) == ["q1", "a1", "q2 edited", "a2 new"]
    assert again.get_summary(chat.id).message_count == 4
    window = again.load(chat.id)
    assert window.meta[edited.id].parent_id == a1
    assert (window.meta[edited.id].sibling_index, window.meta[edited.id].sibling_count) == (1, 2)
    assert (window.meta[q1].sibling_index, window.meta[q1].sibling_count) == (0, 1)
    assert again.siblings(q2) == [q2, edited.id]
    # The old branch is still there, and can be brought back whole.
    assert again.locate(q2).in_thread is False
    assert again.switch_branch(q2) != q2
    assert _thread(again, chat.id) == ["q1", "a1", "q2", "a2", "q3", "a3"]
    assert again.locate(edited.id).in_thread is False


def test_editing_the_first_message_starts_a_new_root(store: ChatStore) -> None:
    chat = store.new_conversation()
    q1, _ = _turn(store, chat.id, "first", "reply")
    new = store.branch_from(q1, "first, better")
    assert _thread(store, chat.id) == ["first, better"]
    assert store.load(chat.id).meta[new.id].parent_id is None
    assert store.siblings(new.id) == [q1, new.id]
    assert store.get_summary(chat.id).title == "first"


def test_regenerate_keeps_the_old_reply_as_a_sibling(store: ChatStore, reopen: Reopen) -> None:
    chat = store.new_conversation()
    q1, a1 = _turn(store, chat.id, "q1", "a1")

    writer = store.regenerate(a1)
    writer.append_delta("a1 again")
    writer.finish(ReplyState.COMPLETE)

    again = reopen()
    window = again.load(chat.id)
    assert [m.content for m in window.conversation.messages] == ["q1", "a1 again"]
    assert window.meta[writer.message_id].parent_id == q1
    assert again.siblings(a1) == [a1, writer.message_id]
    old = again.get_message(a1)
    assert (old.content, old.stats) == ("a1", sample_stats())
    again.switch_branch(a1)
    assert _thread(again, chat.id) == ["q1", "a1"]
    with pytest.raises(ValueError, match="assistant"):
        again.regenerate(q1)


def test_switching_follows_the_newest_path_down(store: ChatStore) -> None:
    chat = store.new_conversation()
    q1, a1 = _turn(store, chat.id, "q1", "a1")
    _turn(store, chat.id, "q2", "a2")
    other = store.regenerate(a1)
    other.finish(ReplyState.COMPLETE)
    store.add_message(chat.id, Message("user", "q2 on the other branch"))

    assert store.switch_branch(a1) == store.load(chat.id).conversation.messages[-1].id
    assert _thread(store, chat.id) == ["q1", "a1", "q2", "a2"]
    store.switch_branch(q1)  # from the root: newest child at each level
    assert _thread(store, chat.id) == ["q1", "", "q2 on the other branch"]


def test_tail_window_follows_the_visible_branch(store: ChatStore) -> None:
    chat = store.new_conversation()
    ids = [_turn(store, chat.id, f"q{i}", f"a{i}") for i in range(50)]
    store.branch_from(ids[40][0], "q40 edited")
    window = store.load(chat.id, last=3)
    assert window.total == 81
    assert [m.content for m in window.conversation.messages] == ["q39", "a39", "q40 edited"]

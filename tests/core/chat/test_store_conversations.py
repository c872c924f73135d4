"""Conversations: create, list with paging, rename, delete, resolve ids, resume, windows."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from store_helpers import raw_rows, sample_sampling

from lollma_tui.core.chat.conversation import Conversation, Message
from lollma_tui.core.chat.errors import AmbiguousIdError, NotFoundError
from lollma_tui.core.chat.store import ChatStore

Reopen = Callable[[], ChatStore]


def _fill(store: ChatStore, conversation_id: str, turns: int) -> list[str]:
    ids: list[str] = []
    for i in range(turns):
        ids.append(store.add_message(conversation_id, Message("user", f"question {i}")).id)
        ids.append(store.add_message(conversation_id, Message("assistant", f"answer {i}")).id)
    return ids


def test_first_user_message_titles_the_conversation(store: ChatStore, reopen: Reopen) -> None:
    conversation = store.new_conversation("be brief")
    store.add_message(conversation.id, Message("user", "  explain   quantum\nentanglement  "))
    store.add_message(conversation.id, Message("user", "and a second question"))

    again = reopen().load(conversation.id)
    assert again.conversation.title == "explain quantum entanglement"
    assert again.conversation.system_prompt == "be brief"


def test_create_conversation_keeps_messages_already_held(store: ChatStore, reopen: Reopen) -> None:
    conversation = Conversation(system_prompt="sys")
    conversation.add_user("hello")
    reply = conversation.start_reply()
    reply.content = "hi"

    store.create_conversation(conversation)

    window = reopen().load(conversation.id)
    assert [(m.role, m.content, m.id) for m in window.conversation.messages] == [
        ("user", "hello", conversation.messages[0].id),
        ("assistant", "hi", reply.id),
    ]
    assert window.total == 2


def test_list_is_most_recent_first_with_counts_and_paging(store: ChatStore) -> None:
    created = [store.new_conversation() for _ in range(5)]
    for n, conversation in enumerate(created):
        _fill(store, conversation.id, n)
    store.add_message(created[1].id, Message("user", "bump"))  # now the most recent

    first = store.list_conversations(limit=2)
    second = store.list_conversations(limit=2, offset=2)
    rest = store.list_conversations(limit=10, offset=4)

    order = [s.id for s in first + second + rest]
    assert order == [created[1].id, created[4].id, created[3].id, created[2].id, created[0].id]
    counts = {s.id: s.message_count for s in first + second + rest}
    assert counts == {
        created[0].id: 0,
        created[1].id: 3,
        created[2].id: 4,
        created[3].id: 6,
        created[4].id: 8,
    }
    assert store.count_conversations() == 5
    assert store.latest_conversation_id() == created[1].id


def test_listing_reads_no_message_text(store: ChatStore) -> None:
    conversation = store.new_conversation()
    _fill(store, conversation.id, 3)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        store.list_conversations()
    finally:
        store._conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert selects
    assert not any("content" in s for s in selects)


def test_empty_store_has_nothing_to_resume(store: ChatStore) -> None:
    assert store.latest_conversation_id() is None
    assert store.list_conversations() == []


def test_rename_and_system_prompt_are_saved(store: ChatStore, reopen: Reopen) -> None:
    conversation = store.new_conversation()
    store.rename(conversation.id, "My chat")
    store.set_system_prompt(conversation.id, "You are terse.")

    window = reopen().load(conversation.id)
    assert (window.conversation.title, window.conversation.system_prompt) == ("My chat", "You are terse.")
    with pytest.raises(NotFoundError):
        store.rename("feedface", "x")


def test_renaming_an_older_chat_does_not_make_it_the_one_resumed(store: ChatStore, reopen: Reopen) -> None:
    older = store.new_conversation()
    store.add_message(older.id, Message("user", "about pasta"))
    newer = store.new_conversation()
    store.add_message(newer.id, Message("user", "about rust"))
    store.rename(older.id, "Pasta notes")
    again = reopen()
    assert again.latest_conversation_id() == newer.id
    assert [c.id for c in again.list_conversations()] == [newer.id, older.id]


def test_rename_is_kept_when_a_user_message_follows(store: ChatStore, reopen: Reopen) -> None:
    conversation = store.new_conversation()
    store.rename(conversation.id, "Chosen title")
    store.add_message(conversation.id, Message("user", "something else"))
    assert reopen().get_summary(conversation.id).title == "Chosen title"


def test_delete_cascades_to_messages_and_branches(store: ChatStore, db_path: Path) -> None:
    keep = store.new_conversation()
    _fill(store, keep.id, 2)
    doomed = store.new_conversation()
    ids = _fill(store, doomed.id, 3)
    store.branch_from(ids[2], "edited")

    store.delete_conversation(doomed.id)

    assert raw_rows(db_path, "SELECT count(*) FROM messages WHERE conversation_id = ?", (doomed.id,)) == [
        (0,)
    ]
    assert raw_rows(db_path, "SELECT count(*) FROM messages") == [(4,)]
    assert [s.id for s in store.list_conversations()] == [keep.id]
    with pytest.raises(NotFoundError):
        store.load(doomed.id)
    with pytest.raises(NotFoundError):
        store.delete_conversation(doomed.id)


def test_a_chat_of_a_thousand_messages_and_more_can_be_deleted(store: ChatStore, db_path: Path) -> None:
    # "too many levels of trigger recursion": each message's cascade to its reply went one
    # trigger level deeper, and SQLite stops at 1,000.
    long = store.new_conversation()
    _fill(store, long.id, 600)
    assert raw_rows(db_path, "SELECT count(*) FROM messages") == [(1200,)]
    assert store.search("answer")  # indexed, and so to be taken out of the index too
    store.delete_conversation(long.id)
    assert raw_rows(db_path, "SELECT count(*) FROM messages") == [(0,)]
    assert store.search("answer") == []
    assert raw_rows(db_path, "PRAGMA integrity_check") == [("ok",)]


def test_resolve_id_by_prefix(store: ChatStore) -> None:
    a = store.create_conversation(Conversation(id="abc123" + "0" * 26))
    b = store.create_conversation(Conversation(id="abd456" + "0" * 26))

    assert store.resolve_id(a.id) == a.id
    assert store.resolve_id("abc") == a.id
    assert store.resolve_id("ABD4") == b.id
    with pytest.raises(AmbiguousIdError):
        store.resolve_id("ab")
    with pytest.raises(NotFoundError):
        store.resolve_id("ffff")
    with pytest.raises(NotFoundError):
        store.resolve_id("a%")


def test_tail_window_of_a_long_conversation(store: ChatStore, reopen: Reopen) -> None:
    conversation = store.new_conversation()
    ids = _fill(store, conversation.id, 1000)  # 2,000 messages

    window = reopen().load(conversation.id, last=30)

    assert window.total == 2000
    assert window.start == 1970
    assert window.stop == 2000
    assert window.has_earlier
    assert [m.id for m in window.conversation.messages] == ids[1970:]
    assert window.conversation.messages[-1].content == "answer 999"
    assert [window.meta[i].index for i in ids[1970:]] == list(range(1970, 2000))


def test_range_windows_page_backwards(store: ChatStore) -> None:
    conversation = store.new_conversation()
    ids = _fill(store, conversation.id, 10)

    assert [m.id for m in store.load_range(conversation.id, 5, 9).conversation.messages] == ids[5:9]
    assert [m.id for m in store.load_range(conversation.id, 0, 3).conversation.messages] == ids[0:3]
    assert [m.id for m in store.load_range(conversation.id, 15, 40).conversation.messages] == ids[15:]
    beyond = store.load_range(conversation.id, 25, 40)
    assert beyond.conversation.messages == []
    assert beyond.start == 20
    assert [m.id for m in store.load_range(conversation.id, -3, 2).conversation.messages] == ids[:2]
    assert store.load(conversation.id, last=0).conversation.messages == []
    assert len(store.load(conversation.id).conversation.messages) == 20
    assert store.thread_length(conversation.id) == 20


def test_get_message_and_unknown_ids(store: ChatStore) -> None:
    conversation = store.new_conversation()
    (first, _) = _fill(store, conversation.id, 1)
    assert store.get_message(first).content == "question 0"
    with pytest.raises(NotFoundError):
        store.get_message("nope")
    with pytest.raises(NotFoundError):
        store.add_message("nope", Message("user", "x"))
    with pytest.raises(NotFoundError):
        store.add_message(conversation.id, Message("user", "x"), parent_id="nope")


def test_parent_must_belong_to_the_conversation(store: ChatStore) -> None:
    one = store.new_conversation()
    other = store.new_conversation()
    (foreign, _) = _fill(store, other.id, 1)
    with pytest.raises(NotFoundError):
        store.add_message(one.id, Message("user", "x"), parent_id=foreign)


def test_a_reply_whose_saved_sampling_cannot_be_read_still_opens(
    store: ChatStore, reopen: Reopen, db_path: Path
) -> None:
    # An older version saved any seed; one that no longer passes the checks costs the reply its
    # sampling line, not the whole conversation.
    conversation = store.new_conversation()
    store.add_message(conversation.id, Message("user", "hi"))
    reply = store.add_message(conversation.id, Message("assistant", "hello"), sampling=sample_sampling())
    store.close()
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "UPDATE messages SET sampling = json_set(sampling, '$.seed', 9223372036854775807) WHERE id = ?",
            (reply.id,),
        )
    conn.close()
    window = reopen().load(conversation.id)
    assert [m.content for m in window.conversation.messages] == ["hi", "hello"]
    assert window.meta[reply.id].sampling is None

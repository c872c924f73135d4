"""Full-text search across conversations (FTS5), kept in step with every write."""

from __future__ import annotations

import threading
import time

import pytest

from lollma_tui.core.chat import store_search
from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.chat.store_search import SearchCancelledError


@pytest.fixture
def filled(store: ChatStore) -> dict[str, str]:
    ids: dict[str, str] = {}
    physics = store.new_conversation()
    ids["physics"] = physics.id
    ids["q"] = store.add_message(physics.id, Message("user", "Explain quantum entanglement simply")).id
    ids["a"] = store.add_message(
        physics.id, Message("assistant", "Two particles share one quantum state.")
    ).id
    cooking = store.new_conversation()
    ids["cooking"] = cooking.id
    ids["c"] = store.add_message(cooking.id, Message("user", "How long do I boil an egg? Café style")).id
    return ids


def test_hits_name_conversation_and_message(store: ChatStore, filled: dict[str, str]) -> None:
    hits = store.search("quantum")
    assert {(h.conversation_id, h.message_id) for h in hits} == {
        (filled["physics"], filled["q"]),
        (filled["physics"], filled["a"]),
    }
    assert all(h.conversation_title == "Explain quantum entanglement simply" for h in hits)
    assert {h.role for h in hits} == {"user", "assistant"}
    assert any("[quantum]" in h.snippet for h in hits)


def test_every_word_must_match_and_the_last_is_a_prefix(store: ChatStore, filled: dict[str, str]) -> None:
    assert [h.message_id for h in store.search("quantum entang")] == [filled["q"]]
    assert [h.message_id for h in store.search("cafe")] == [filled["c"]]  # accents folded
    assert store.search("quantum egg") == []


def test_custom_marks_for_the_ui(store: ChatStore, filled: dict[str, str]) -> None:
    (hit,) = store.search("egg", marks=("<<", ">>"))
    assert "<<egg>>" in hit.snippet


@pytest.mark.parametrize("query", ['"', "AND", "NEAR(", "a OR", "*", "-x", "col:umn", "(", "'; DROP", "  "])
def test_query_syntax_in_user_text_never_raises(store: ChatStore, filled: dict[str, str], query: str) -> None:
    store.search(query)


def _index_matches_text(store: ChatStore) -> None:
    # FTS5 compares its index with the messages table (valid while no reply is streaming).
    store._conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")


def test_replies_are_indexed_when_they_stop_streaming(store: ChatStore, filled: dict[str, str]) -> None:
    writer = store.start_reply(filled["cooking"])
    writer.append_delta("Nine minutes for a hard-boiled ")
    writer.flush()
    assert store.search("minutes") == []  # not while it grows: see schema.FTS_STATEMENTS
    writer.append_delta("ostrich egg")
    writer.finish(ReplyState.LENGTH)
    assert [h.message_id for h in store.search("ostrich minutes")] == [writer.message_id]
    _index_matches_text(store)

    more = store.continue_reply(writer.message_id)
    more.append_delta(", or an hour for a dinosaur egg")
    more.flush()
    more.finish(ReplyState.COMPLETE)
    assert [h.message_id for h in store.search("dinosaur")] == [writer.message_id]
    _index_matches_text(store)


def test_recovered_replies_become_searchable(store: ChatStore, filled: dict[str, str]) -> None:
    writer = store.start_reply(filled["cooking"])
    writer.append_delta("interrupted porridge")
    writer.flush()
    assert store.recover() == 1
    assert [h.message_id for h in store.search("porridge")] == [writer.message_id]
    _index_matches_text(store)


def test_deleted_conversations_leave_the_index(store: ChatStore, filled: dict[str, str]) -> None:
    store.branch_from(filled["c"], "How long for a duck egg?")
    store.delete_conversation(filled["cooking"])
    assert store.search("egg") == []
    assert len(store.search("quantum")) == 2
    _index_matches_text(store)


def test_hits_on_hidden_branches_can_be_located(store: ChatStore, filled: dict[str, str]) -> None:
    store.branch_from(filled["q"], "Explain superposition instead")
    (hit,) = store.search("entanglement")
    location = store.locate(hit.message_id)
    assert (location.conversation_id, location.index, location.in_thread) == (filled["physics"], 0, False)
    store.switch_branch(hit.message_id)
    assert store.locate(hit.message_id).in_thread


def test_words_inside_chinese_and_japanese_text_are_found(store: ChatStore) -> None:
    # These scripts write no spaces: the index holds a whole run as one word, so only the
    # characters a message starts with could be found.
    chat = store.new_conversation()
    chinese = store.add_message(chat.id, Message("user", "我喜欢编程语言和数据库")).id
    japanese = store.add_message(chat.id, Message("assistant", "日本語のテキストを検索する")).id
    store.add_message(chat.id, Message("user", "plain words"))
    assert [h.message_id for h in store.search("数据库")] == [chinese]
    assert [h.message_id for h in store.search("検索")] == [japanese]
    assert [h.message_id for h in store.search("テキスト 検索")] == [japanese]
    (hit,) = store.search("编程")
    assert "[编程]" in hit.snippet
    assert store.search("编程 検索") == []


def test_a_word_ending_in_a_symbol_is_not_taken_for_its_first_letter(
    store: ChatStore, filled: dict[str, str]
) -> None:
    chat = store.new_conversation()
    cpp = store.add_message(chat.id, Message("user", "Is C++ faster than C#?")).id
    assert [h.message_id for h in store.search("C++")] == [cpp]  # not "Café" too
    assert [h.message_id for h in store.search("C#")] == [cpp]


def test_a_reply_repeating_the_word_is_not_searched_through_sqlite_s_snippet(store: ChatStore) -> None:
    # A looping model: SQLite's snippet() took time growing with the square of the matches in one
    # message (2 s for 20,000), holding the store's lock all along.
    chat = store.new_conversation()
    store.add_message(chat.id, Message("assistant", "First answer " + "long " * 20_000))
    store.add_message(chat.id, Message("assistant", "First answer short " + "words " * 20_000))
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    (hit,) = store.search("long")
    store._conn.set_trace_callback(None)
    assert not [sql for sql in statements if "snippet(" in sql]
    assert hit.snippet.startswith("First answer [long] [long]")
    assert len(hit.snippet) < 100


def test_snippets_are_cut_around_the_first_match_with_or_without_the_index(store: ChatStore) -> None:
    chat = store.new_conversation()
    text = "x " * 40 + "Un café crème, s'il vous plaît; the Straße is long and the café is open " + "y " * 40
    store.add_message(chat.id, Message("user", text))
    store.add_message(chat.id, Message("user", "z" * store_search.SNIPPET_SCAN + " needle"))
    (accents,) = store.search("cafe cre")  # accents folded, the last word a prefix marked whole
    assert accents.snippet == "… x x x x x x x x x x x x x Un [café] [crème], s'il vous plaît; the S…"
    (far,) = store.search("needle")  # beyond what is looked at: the start of the message
    assert far.snippet == "z" * store_search.SNIPPET_WIDTH + "…"
    # The LIKE scan (no FTS5, or a word in Chinese) cuts with the same helper, marks and length.
    without_index = ChatStore(store._conn, path=None, fts=False)
    (scanned,) = without_index.search("café")
    assert scanned.snippet == accents.snippet.replace("[crème]", "crème")
    store.add_message(chat.id, Message("user", "我喜欢编程语言"))
    (chinese,) = store.search("编程")
    assert chinese.snippet == "我喜欢[编程]语言"


def test_a_cancelled_search_stops_and_leaves_the_store_usable(
    store: ChatStore, filled: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_search, "PROGRESS_STEPS", 1)  # a look at every step of the statement
    with pytest.raises(SearchCancelledError):
        store.search("quantum", cancelled=lambda: True)
    inside, stop = threading.Event(), threading.Event()
    deadline = time.monotonic() + 30

    def stalled() -> bool:
        # The statement stays here, holding the store's lock, until told to stop (30 s at most).
        inside.set()
        stop.wait(max(0.0, deadline - time.monotonic()))
        return stop.is_set()

    outcome: list[object] = []

    def search() -> None:
        try:
            outcome.append(store.search("quantum", cancelled=stalled))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=search)
    thread.start()
    assert inside.wait(10)
    assert not store._lock.acquire(timeout=0.05)  # a save would wait now...
    stop.set()
    thread.join(10)
    assert [type(item) for item in outcome] == [SearchCancelledError]
    assert store._lock.acquire(timeout=5)  # ...and not once the search is stopped
    store._lock.release()
    assert not store._conn.in_transaction
    # No progress handler is left behind: `stop` is still set, yet these run to the end.
    assert len(store.search("quantum")) == 2
    store.add_message(filled["cooking"], Message("user", "saved after the search"))
    assert len(store.search("saved")) == 1

"""Schema versions: a real v1 file upgrades with its data intact and gains the new features."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import dump, sample_stats

from lollma_tui.core.chat import codec, schema
from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.errors import StoreTooNewError
from lollma_tui.core.chat.opening import open_store
from lollma_tui.core.chat.store import ChatStore


def _make_v1(path: Path) -> None:
    """A file as the first release wrote it: v1 DDL, flat messages, stats JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    for statement in schema.V1_STATEMENTS:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO conversations VALUES ('c1', 'Old chat', 'sys', 10.0, 20.0)")
    conn.execute("INSERT INTO conversations VALUES ('c2', '', '', 11.0, 30.0)")
    rows = [
        ("m1", "c1", "user", "what is a photon", "complete", None, 11.0, None),
        ("m2", "c1", "assistant", "a quantum of light", "complete", None, 12.0, codec.dumps(sample_stats())),
        ("m3", "c2", "user", "hello", "complete", None, 13.0, None),
        ("m4", "c1", "user", "and a gluon?", "complete", None, 14.0, None),
        ("m5", "c1", "assistant", "it carries the strong", "streaming", None, 15.0, None),
    ]
    conn.executemany(
        "INSERT INTO messages(id, conversation_id, role, content, state, error, created_at, stats)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()


@pytest.fixture
def v1_path(db_path: Path) -> Path:
    _make_v1(db_path)
    return db_path


@pytest.fixture
def upgraded(v1_path: Path) -> Iterator[ChatStore]:
    store = ChatStore.open(v1_path)
    yield store
    store.close()


def test_v1_file_is_upgraded_in_place(v1_path: Path, upgraded: ChatStore) -> None:
    conn = sqlite3.connect(v1_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST_VERSION
        columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    finally:
        conn.close()
    assert {"parent_id", "depth", "sampling", "thinking"} <= columns


def test_v1_data_survives_as_linear_threads(upgraded: ChatStore) -> None:
    window = upgraded.load("c1")
    assert [(m.id, m.content) for m in window.conversation.messages] == [
        ("m1", "what is a photon"),
        ("m2", "a quantum of light"),
        ("m4", "and a gluon?"),
        ("m5", "it carries the strong"),
    ]
    assert [window.meta[i].parent_id for i in ("m1", "m2", "m4", "m5")] == [None, "m1", "m2", "m4"]
    assert window.conversation.messages[1].stats == sample_stats()
    assert (window.conversation.title, window.conversation.system_prompt) == ("Old chat", "sys")
    assert [(s.id, s.message_count) for s in upgraded.list_conversations()] == [("c2", 1), ("c1", 4)]


def test_new_features_work_on_upgraded_data(upgraded: ChatStore) -> None:
    assert upgraded.recover() == 1
    assert upgraded.get_message("m5").state is ReplyState.INCOMPLETE
    assert [hit.message_id for hit in upgraded.search("photon")] == ["m1"]
    upgraded.branch_from("m4", "and a quark?")
    assert [m.content for m in upgraded.load("c1").conversation.messages][-1] == "and a quark?"
    assert upgraded.siblings("m4")[0] == "m4"
    upgraded.add_message("c2", Message("user", "again"))
    assert upgraded.load("c2").total == 2


def test_reopening_an_upgraded_file_changes_nothing(v1_path: Path, upgraded: ChatStore) -> None:
    upgraded.close()
    before = dump(v1_path)
    ChatStore.open(v1_path).close()
    assert dump(v1_path) == before


def test_each_step_is_atomic(v1_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("step failed")

    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, (schema.LATEST_VERSION + 1, broken)))
    conn = sqlite3.connect(v1_path, isolation_level=None)
    try:
        with pytest.raises(RuntimeError):
            schema.migrate(conn, target=schema.LATEST_VERSION + 1)
        assert schema.user_version(conn) == schema.LATEST_VERSION
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert "half_done" not in tables


def test_a_newer_schema_is_refused_and_left_alone(db_path: Path) -> None:
    store = ChatStore.open(db_path)
    store.new_conversation()
    store.close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {schema.LATEST_VERSION + 5}")
    conn.close()
    before = db_path.read_bytes()

    with pytest.raises(StoreTooNewError):
        ChatStore.open(db_path)
    opened = open_store(db_path)
    try:
        assert opened.notice is not None
        assert "newer lollma-tui" in opened.notice
        assert not opened.store.persistent
    finally:
        opened.store.close()
    assert db_path.read_bytes() == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["history.db"]


def test_search_works_without_fts5(v1_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "fts5_available", lambda conn: False)
    store = ChatStore.open(v1_path)
    try:
        assert not store.has_full_text_search
        hits = store.search("quantum LIGHT")
        assert [(h.message_id, h.conversation_id) for h in hits] == [("m2", "c1")]
        assert "[quantum]" in hits[0].snippet
        assert store.search("100%") == []
    finally:
        store.close()
    # A later start with FTS5 available adds the index over the existing text.
    monkeypatch.undo()
    store = ChatStore.open(v1_path)
    try:
        assert store.has_full_text_search
        assert [h.message_id for h in store.search("gluon")] == ["m4"]
    finally:
        store.close()

"""Opening the history only to read it (`open_store_read_only`): nothing on disk changes."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from other_instance import another_instance

from lollma_tui.core.chat import schema
from lollma_tui.core.chat.conversation import Message
from lollma_tui.core.chat.errors import StoreError, StoreTooNewError
from lollma_tui.core.chat.opening import open_store_read_only
from lollma_tui.core.chat.store import ChatStore


def _saved(path: Path) -> list[str]:
    with ChatStore.open(path) as store:
        ids = [store.new_conversation().id for _ in range(3)]
        store.add_message(ids[0], Message("user", "a lighthouse keeper's log"))
    return ids


def test_reading_leaves_the_file_its_mode_and_its_folder_as_they_were(db_path: Path) -> None:
    ids = _saved(db_path)
    db_path.chmod(0o644)  # the app would tighten this to 0600
    before = db_path.read_bytes()
    with another_instance(db_path, holding=ids[1]):
        store = open_store_read_only(db_path)
        try:
            assert sorted(s.id for s in store.list_conversations()) == sorted(ids)
            assert [hit.conversation_id for hit in store.search("lighthouse")] == [ids[0]]
            assert [store.held_elsewhere(i) for i in ids] == [False, True, False]
            with pytest.raises(StoreError, match="readonly"):
                store.new_conversation()
        finally:
            store.close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o644
    assert db_path.read_bytes() == before


def _at_version(path: Path, version: int) -> None:
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        schema.migrate(conn, target=min(version, schema.LATEST_VERSION))
        conn.execute(f"PRAGMA user_version = {version:d}")
    finally:
        conn.close()


def test_an_older_schema_is_refused_not_upgraded(db_path: Path) -> None:
    _at_version(db_path, schema.LATEST_VERSION - 1)
    with pytest.raises(StoreError, match="run lollma-tui once to upgrade it"):
        open_store_read_only(db_path)
    conn = sqlite3.connect(db_path)
    try:
        assert schema.user_version(conn) == schema.LATEST_VERSION - 1
    finally:
        conn.close()


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    _at_version(db_path, schema.LATEST_VERSION + 1)
    with pytest.raises(StoreTooNewError, match="newer lollma-tui"):
        open_store_read_only(db_path)

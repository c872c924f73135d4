"""The history file: private permissions, default location, damaged and locked files."""

from __future__ import annotations

import os
import random
import re
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from lollma_tui.core.chat.connection import header_problem
from lollma_tui.core.chat.conversation import Message
from lollma_tui.core.chat.errors import StoreCorruptError
from lollma_tui.core.chat.opening import default_store_path, move_aside, open_store
from lollma_tui.core.chat.store import ChatStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _garbage(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def _real_db(path: Path, conversations: int = 3) -> list[str]:
    store = ChatStore.open(path)
    ids = []
    for n in range(conversations):
        chat = store.new_conversation()
        for i in range(20):
            store.add_message(chat.id, Message("user", f"message {n}.{i} " + "x" * 400))
        ids.append(chat.id)
    store.close()
    return ids


def _aside(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if ".corrupt-" in p.name)


@pytest.fixture
def open_umask() -> Iterator[None]:
    # With no umask, only the modes the store sets itself keep the files private.
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_database_and_side_files_are_private(db_path: Path) -> None:
    store = ChatStore.open(db_path)
    try:
        chat = store.new_conversation()
        store.add_message(chat.id, Message("user", "secret"))
        wal = db_path.with_name("history.db-wal")
        shm = db_path.with_name("history.db-shm")
        assert wal.exists()
        assert shm.exists()
        assert (_mode(db_path), _mode(wal), _mode(shm)) == (0o600, 0o600, 0o600)
        assert _mode(db_path.parent) == 0o700
    finally:
        store.close()


def test_loose_existing_files_are_tightened(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.touch()
    db_path.chmod(0o644)
    wal = db_path.with_name("history.db-wal")
    wal.touch()
    wal.chmod(0o664)
    store = ChatStore.open(db_path)
    try:
        assert _mode(db_path) == 0o600
        assert _mode(wal) == 0o600
    finally:
        store.close()


def test_default_path_is_the_user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOLLMA_DATA_DIR", str(tmp_path / "mine"))
    assert default_store_path() == tmp_path / "mine" / "history.db"
    monkeypatch.delenv("LOLLMA_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "lollma-tui" / "history.db"


def _assert_fresh_store_replaced(db_path: Path, opened_store: ChatStore) -> None:
    assert opened_store.persistent
    chat = opened_store.new_conversation()
    opened_store.add_message(chat.id, Message("user", "new life"))
    opened_store.close()
    again = ChatStore.open(db_path)
    try:
        assert [s.title for s in again.list_conversations()] == ["new life"]
    finally:
        again.close()


def test_garbage_file_is_moved_aside_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    original = _garbage(10_000)
    db_path.write_bytes(original)

    opened = open_store(db_path)

    assert opened.moved_aside is not None
    assert re.fullmatch(r"history\.db\.corrupt-\d{8}-\d{6}", opened.moved_aside.name)
    assert opened.moved_aside.read_bytes() == original
    assert opened.notice is not None
    assert "damaged" in opened.notice
    assert opened.moved_aside.name in opened.notice
    assert "\n" not in opened.notice
    _assert_fresh_store_replaced(db_path, opened.store)


@pytest.mark.parametrize("keep", [0.5, 50 / 1e9])
def test_truncated_file_is_moved_aside(db_path: Path, keep: float) -> None:
    _real_db(db_path)
    whole = db_path.read_bytes()
    cut = whole[: max(50, int(len(whole) * keep))]
    db_path.write_bytes(cut)

    opened = open_store(db_path)

    assert opened.moved_aside is not None
    assert opened.moved_aside.read_bytes() == cut
    assert opened.notice is not None
    assert "damaged" in opened.notice
    _assert_fresh_store_replaced(db_path, opened.store)


def test_valid_header_with_garbage_pages_is_caught_by_sqlite(db_path: Path) -> None:
    _real_db(db_path)
    whole = db_path.read_bytes()
    damaged = whole[:100] + _garbage(len(whole) - 100)
    db_path.write_bytes(damaged)

    with pytest.raises(StoreCorruptError):
        ChatStore.open(db_path)
    opened = open_store(db_path)

    assert opened.moved_aside is not None
    assert opened.moved_aside.read_bytes() == damaged
    _assert_fresh_store_replaced(db_path, opened.store)


def test_the_wal_of_a_damaged_file_goes_with_it(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(_garbage(4096))
    wal_bytes = _garbage(3000, seed=8)
    db_path.with_name("history.db-wal").write_bytes(wal_bytes)

    opened = open_store(db_path)
    try:
        assert opened.moved_aside is not None
        assert opened.moved_aside.with_name(opened.moved_aside.name + "-wal").read_bytes() == wal_bytes
    finally:
        opened.store.close()


def test_moving_aside_never_replaces_an_earlier_copy(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(b"first")
    first = move_aside(path, now=1_700_000_000)
    path.write_bytes(b"second")
    second = move_aside(path, now=1_700_000_000)

    assert first != second
    assert (first.read_bytes(), second.read_bytes()) == (b"first", b"second")
    assert not path.exists()


def test_locked_file_is_left_alone_and_the_session_runs_in_memory(db_path: Path) -> None:
    (kept,) = _real_db(db_path, conversations=1)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        opened = open_store(db_path, busy_timeout_s=0.1)
        assert opened.notice is not None
        assert "locked" in opened.notice
        assert "not be saved" in opened.notice
        assert opened.moved_aside is None
        assert not opened.store.persistent
        chat = opened.store.new_conversation()
        opened.store.add_message(chat.id, Message("user", "still usable"))
        assert opened.store.load(chat.id).total == 1
        opened.store.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert _aside(db_path.parent) == []
    store = ChatStore.open(db_path)
    try:
        assert [s.id for s in store.list_conversations()] == [kept]
    finally:
        store.close()


def test_exclusive_lock_by_another_program_in_rollback_mode(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("CREATE TABLE theirs (x)")
    other.execute("BEGIN EXCLUSIVE")
    try:
        before = db_path.read_bytes()
        opened = open_store(db_path, busy_timeout_s=0.1)
        assert opened.notice is not None
        assert "locked" in opened.notice
        opened.store.close()
        assert db_path.read_bytes() == before
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _aside(db_path.parent) == []


def test_unusable_location_falls_back_to_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    opened = open_store(blocker / "history.db")
    try:
        assert not opened.store.persistent
        assert opened.notice is not None
        assert "not be saved" in opened.notice
    finally:
        opened.store.close()
    assert blocker.read_text() == "not a folder"


def test_a_healthy_file_opens_without_notice(db_path: Path) -> None:
    _real_db(db_path, conversations=2)
    opened = open_store(db_path)
    try:
        assert (opened.notice, opened.moved_aside, opened.recovered) == (None, None, 0)
        assert opened.store.count_conversations() == 2
        assert opened.store.integrity_check() == []
    finally:
        opened.store.close()
    assert _aside(db_path.parent) == []


def test_header_check_spots_truncation_but_trusts_a_live_wal(db_path: Path) -> None:
    _real_db(db_path)
    assert header_problem(db_path) is None
    whole = db_path.read_bytes()
    db_path.write_bytes(whole[: len(whole) // 2])
    problem = header_problem(db_path)
    assert problem is not None
    assert problem.startswith("truncated")
    # With a WAL present a checkpoint may be half-copied; SQLite repairs that itself.
    db_path.with_name("history.db-wal").write_bytes(b"x" * 32)
    assert header_problem(db_path) is None

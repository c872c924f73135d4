"""`lollma-tui history list/show/export/search` only read: a read-only snapshot, a history another
program holds the write lock on, or one an older lollma-tui wrote are read (or refused) as they
are, never written to.

A read-only folder is a read-only bind mount in a mount namespace of its own when the tests run
as root (root writes through chmod), else the folder's mode.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from history_support import Saved

from lollma_tui.core.chat import schema
from lollma_tui.core.chat.store import ChatStore

ROOT = Path(__file__).resolve().parents[2]
_REMOUNT = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lollma_tui.cli_history", *args]


def _run(command: list[str], data: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TZ": "UTC", "LOLLMA_DATA_DIR": str(data)}
    return subprocess.run(
        command,
        cwd=ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(_command(*args), data)


def run_read_only(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command with `data` (the history's folder) read-only for it."""
    if os.geteuid() == 0:
        return _run(["unshare", "-m", "sh", "-c", _REMOUNT, str(data), *_command(*args)], data)
    data.chmod(0o555)
    try:
        return _run(_command(*args), data)
    finally:
        data.chmod(0o755)


@pytest.fixture
def read_only_works(tmp_path: Path) -> None:
    """Skips the test where a folder cannot be made read-only here (a container without mounts)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("needs unshare to mount a folder read-only")
        made = subprocess.run(
            ["unshare", "-m", "sh", "-c", _REMOUNT, str(probe), "touch", str(probe / "x")],
            capture_output=True,
            timeout=30,
        )
        if made.returncode == 0 or b"Read-only" not in made.stderr:
            pytest.skip(f"cannot mount a folder read-only here: {made.stderr.decode(errors='replace')}")
    else:
        probe.chmod(0o555)
        try:
            writable = os.access(probe, os.W_OK)
        finally:
            probe.chmod(0o755)
        if writable:
            pytest.skip("a read-only folder is still writable here")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("list",), "Quantum chat"),
        (("show", "QUANTUM"), "Entanglement links two particles"),
        (("export", "QUANTUM", "-f", "json"), '"title": "Quantum chat"'),
        (("search", "zebras"), "Quantum chat"),
    ],
)
def test_a_read_only_history_is_read(
    read_only_works: None, saved: Saved, history_path: Path, command: tuple[str, ...], expected: str
) -> None:
    # It said "Cannot open the chat history at …: Read-only file system; this session's chats
    # will not be saved" and exited 1.
    args = tuple(saved.quantum if arg == "QUANTUM" else arg for arg in command)
    data = history_path.parent
    before = _files(data)
    result = run_read_only(data, *args)
    assert (result.returncode, result.stderr) == (0, "")
    assert expected in result.stdout
    assert _files(data) == before
    if command[0] != "export":  # which says when it was made
        assert result.stdout == run_cli(data, *args).stdout


def test_a_snapshot_of_a_history_in_use_includes_what_its_wal_holds(
    read_only_works: None, history_path: Path, tmp_path: Path
) -> None:
    # Taken while the app ran: the last chats are only in the -wal, which must be read (a file
    # opened as unchanging would skip it).
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    with ChatStore.open(history_path) as store:
        store.create_conversation()
        store.rename(store.new_conversation().id, "only in the wal")
        for name in ("history.db", "history.db-wal", "history.db-shm"):
            shutil.copy2(history_path.with_name(name), snapshot / name)
    assert (snapshot / "history.db-wal").stat().st_size > 0
    result = run_read_only(snapshot, "list")
    assert (result.returncode, result.stderr) == (0, "")
    assert len(result.stdout.splitlines()) == 2
    assert "only in the wal" in result.stdout


def test_a_damaged_read_only_history_is_one_line(read_only_works: None, history_path: Path) -> None:
    # It said it "could not be replaced (Read-only file system); this session's chats will not
    # be saved": words for the app.
    history_path.parent.mkdir(parents=True)
    history_path.write_bytes(b"not a database" * 100)
    result = run_read_only(history_path.parent, "list")
    assert result.returncode == 1
    assert result.stderr == "lollma-tui history: the chat history file is damaged (not a SQLite database)\n"


def test_a_history_locked_by_another_program_is_still_read(saved: Saved, history_path: Path) -> None:
    # It waited for the write lock for 3 s and gave up: "locked by another program … (close the
    # other lollma-tui and restart)". Reading needs no write lock.
    holder = sqlite3.connect(history_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        result = run_cli(history_path.parent, "list")
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert (result.returncode, result.stderr) == (0, "")
    assert len(result.stdout.splitlines()) == 3


@pytest.fixture
def old_history(history_path: Path) -> Path:
    history_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(history_path, isolation_level=None)
    try:
        schema.migrate(conn, target=schema.LATEST_VERSION - 1)
    finally:
        conn.close()
    return history_path


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return schema.user_version(conn)
    finally:
        conn.close()


def test_an_older_history_is_read_where_it_can_be_upgraded(old_history: Path) -> None:
    # In a folder it may write, a command that reads upgrades an older history as the app does.
    result = run_cli(old_history.parent, "list")
    assert result.returncode == 0, result.stderr
    assert _user_version(old_history) == schema.LATEST_VERSION


def test_a_newer_history_is_refused_in_words_for_the_command(history_path: Path) -> None:
    history_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(history_path, isolation_level=None)
    try:
        schema.migrate(conn)
        conn.execute(f"PRAGMA user_version = {schema.LATEST_VERSION + 1:d}")
    finally:
        conn.close()
    result = run_cli(history_path.parent, "list")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "written by a newer lollma-tui" in line
    assert "this session" not in line

"""Opening the history file: permissions, a cheap health check, pragmas, migrations, the lock probe.

Decisions made here:

- The file holds private chats, so it is created 0600 in a 0700 directory before SQLite touches it;
  SQLite gives its -wal and -shm side files the mode of the main file. A pre-existing file with
  looser bits is tightened.
- WAL mode with ``synchronous=NORMAL``: each commit is a WAL append without an fsync, so the
  once-a-second flush of a streaming reply is cheap. A process crash (kill -9) loses nothing that
  was committed; only a power loss or OS crash can lose the last commits.
- "Locked" means: the write lock could not be taken within the busy timeout (default 3 s). It is
  probed at open with an empty ``BEGIN IMMEDIATE``, because in WAL mode reads never block and a
  lock would otherwise show up only at the first save, mid-conversation.
- "Corrupt" means: the header is not SQLite's, the header says the file is longer than it is
  (a truncated copy), or SQLite reports SQLITE_CORRUPT / SQLITE_NOTADB while reading the schema.
  No full integrity scan runs at start-up: it reads the whole file, which is what opening lazily
  is meant to avoid; `ChatStore.integrity_check` is there for a doctor command.
- Commands that only read (`lollma-tui history list`) open with `connect_read_only`, which writes
  nothing: they work on a read-only snapshot or filesystem, and do not wait for the write lock.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from lollma_tui.core.chat import schema
from lollma_tui.core.chat.errors import (
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreTooNewError,
    StoreTooOldError,
)

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_CORRUPT = 11
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

_HEADER_MAGIC = b"SQLite format 3\x00"


def store_error(exc: sqlite3.Error) -> StoreError:
    """One-line store error for a sqlite3 exception, typed by what the app should do about it."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text:
        return StoreLockedError("the chat history is locked by another program")
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StoreCorruptError(f"the chat history file is damaged ({text})")
    return StoreError(f"chat history error: {text}")


def prepare_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_EXCL-free create: an existing file is left as it is, apart from its mode bits.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _tighten(fd)
    finally:
        os.close(fd)
    # Side files left by an earlier run are reused by SQLite as they are, so they get the same care.
    for suffix in ("-wal", "-shm"):
        try:
            fd = os.open(path.with_name(path.name + suffix), os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            _tighten(fd)
        finally:
            os.close(fd)


def _tighten(fd: int) -> None:
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077:
        os.fchmod(fd, mode & 0o700)


def header_problem(path: Path) -> str | None:
    """Why the file cannot be a healthy SQLite database, judged from its first 100 bytes; else None."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None  # SQLite treats an empty file as a new database
    with path.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(_HEADER_MAGIC):
        return "not a SQLite database"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return "bad page size in header"
    # The in-header page count is only trusted when its "valid-for" counter matches, as SQLite does.
    # With a live WAL a checkpoint may be half-copied into the main file; SQLite repairs that from
    # the WAL, so the size test is skipped rather than moving a healthy file aside.
    wal = path.with_name(path.name + "-wal")
    wal_live = wal.exists() and wal.stat().st_size > 0
    page_count = int.from_bytes(header[28:32], "big")
    if not wal_live and header[24:28] == header[92:96] and page_count * page_size > size:
        return f"truncated: {size} of {page_count * page_size} bytes"
    return None


def connect(path: Path | None, busy_timeout_s: float) -> tuple[sqlite3.Connection, bool]:
    """A ready connection (migrated, write lock probed) and whether full-text search is available.

    Raises StoreCorruptError, StoreLockedError, StoreTooNewError or StoreError; never moves files.
    """
    if path is not None:
        try:
            problem = header_problem(path)
            if problem is None:
                prepare_file(path)
        except OSError as exc:
            raise StoreError(f"cannot open the chat history at {path}: {exc.strerror or exc}") from exc
        if problem is not None:
            raise StoreCorruptError(f"the chat history file is damaged ({problem})")
    target = ":memory:" if path is None else str(path)
    # isolation_level=None: transactions are explicit (the store issues BEGIN IMMEDIATE itself).
    conn = sqlite3.connect(target, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # parses the schema: finds damage
        found = schema.user_version(conn)
        if found > schema.LATEST_VERSION:
            # Checked before any pragma that writes (journal_mode), so such a file is not touched.
            raise StoreTooNewError(
                f"the chat history was written by a newer lollma-tui (schema {found}, this one"
                f" knows up to {schema.LATEST_VERSION}); it was left untouched"
            )
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # After a checkpoint the WAL is cut back to this size instead of keeping its high-water mark.
        conn.execute("PRAGMA journal_size_limit = 4194304")
        try:
            schema.migrate(conn)
        except schema.SchemaTooNewError as exc:  # another process upgraded it meanwhile
            raise StoreTooNewError(f"the chat history was written by a newer lollma-tui ({exc})") from exc
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")
        conn.execute("SELECT count(*) FROM conversations").fetchone()
        conn.execute("SELECT max(n) FROM messages").fetchone()
        fts = schema.ensure_fts(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise _opening_error(exc, busy_timeout_s) from exc
    except BaseException:
        conn.close()
        raise
    return conn, fts


def _opening_error(exc: sqlite3.Error, busy_timeout_s: float) -> StoreError:
    error = store_error(exc)
    if isinstance(error, StoreLockedError):
        return StoreLockedError(
            f"the chat history is locked by another program (waited {busy_timeout_s:g} s)"
        )
    return error


def connect_read_only(path: Path, busy_timeout_s: float) -> tuple[sqlite3.Connection, bool]:
    """A connection that never writes to the history, and whether full-text search is available.

    Nothing is created or re-moded, no pragma that writes is run, nothing is migrated and the
    write lock is not probed. Raises StoreCorruptError, StoreLockedError, StoreTooNewError or
    StoreTooOldError (only a writer may upgrade a schema) or StoreError.
    """
    try:
        problem = header_problem(path)
    except OSError as exc:
        raise StoreError(f"cannot read the chat history at {path}: {exc.strerror or exc}") from exc
    if problem is not None:
        raise StoreCorruptError(f"the chat history file is damaged ({problem})")
    conn = sqlite3.connect(
        _read_only_uri(path),
        uri=True,
        timeout=busy_timeout_s,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # parses the schema: finds damage
        found = schema.user_version(conn)
        if found > schema.LATEST_VERSION:
            raise StoreTooNewError(
                f"the chat history was written by a newer lollma-tui (schema {found}, this one"
                f" knows up to {schema.LATEST_VERSION})"
            )
        if found < schema.LATEST_VERSION:
            raise StoreTooOldError(
                f"the chat history is from an older lollma-tui (schema {found}, this one reads"
                f" {schema.LATEST_VERSION}); run lollma-tui once to upgrade it"
            )
        # Without the index (a sqlite with no FTS5 made the file) search falls back to LIKE;
        # making it would be a write.
        fts = schema.has_fts(conn)
    except sqlite3.Error as exc:
        conn.close()
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF == _SQLITE_CANTOPEN:
            raise StoreError(f"cannot read the chat history at {path}: {exc}") from exc
        raise _opening_error(exc, busy_timeout_s) from exc
    except BaseException:
        conn.close()
        raise
    return conn, fts


def _read_only_uri(path: Path) -> str:
    uri = f"{path.absolute().as_uri()}?mode=ro"
    # A WAL database is read through its -shm file, which SQLite makes beside it: in a folder
    # that cannot be written (a snapshot) it cannot, and the file would not open. With no -wal
    # every commit is in the main file, and no one can be writing one into this folder, so it is
    # read as a file that does not change. A -wal there is read as it is (it may hold commits).
    if not os.access(path.parent, os.W_OK) and not path.with_name(path.name + "-wal").exists():
        uri += "&immutable=1"
    return uri

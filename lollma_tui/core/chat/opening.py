"""Opening the store at start-up without ever losing the user's history or refusing to start.

- Damaged file (not SQLite, truncated, malformed schema): it and its -wal/-shm/-journal side
  files are moved aside as ``history.db.corrupt-<UTC timestamp>`` (never over an existing file),
  and a fresh store is created in its place. The -wal must move too: left behind, SQLite would
  replay the damaged file's log into the new one.
- Locked (another program kept the write lock past the busy timeout): the file is left exactly
  as it is, because another live process owns it and renaming a database under a live WAL
  connection can corrupt it. This session runs on an in-memory store and says so.
- Written by a newer lollma-tui, or the folder cannot be written: also in memory, file untouched.
- Open in another lollma-tui (`HistoryUsers`): its reply may be streaming into the file now, so
  replies left streaming are not marked as cut off by a crash, and `StoreOpen.others` says so.

`StoreOpen.notice` is the one line the app shows; it is None when all went well.

`open_store_read_only` is for commands that only read: it raises instead, and changes nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from lollma_tui.core import paths
from lollma_tui.core.chat.connection import connect_read_only
from lollma_tui.core.chat.errors import StoreCorruptError, StoreError, StoreLockedError
from lollma_tui.core.chat.history_users import OPEN_SUFFIX, HistoryUsers
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.chat.writer import Clock

DB_FILENAME = "history.db"
_SIDE_FILES = ("-wal", "-shm", "-journal")
_NOT_SAVED = "this session's chats will not be saved"


def default_store_path() -> Path:
    """Where the history lives unless told otherwise (platformdirs' user data dir, or LOLLMA_DATA_DIR)."""
    return paths.data_dir() / DB_FILENAME


@dataclass(frozen=True, slots=True)
class StoreOpen:
    store: ChatStore
    notice: str | None
    """One line for the user when the history could not be opened as is; None when all is well."""
    recovered: int
    """Replies found still streaming from a crashed run, now marked INCOMPLETE."""
    moved_aside: Path | None = None
    others: bool = False
    """Another lollma-tui has the file open (its replies were left as they are)."""


def open_store(
    path: Path | None = None,
    *,
    busy_timeout_s: float = 3.0,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
    flush_interval_s: float = 1.0,
) -> StoreOpen:
    """Open the history for the app: never raises for a bad or busy file (see the module doc)."""
    path = default_store_path() if path is None else path

    def attempt(target: Path | None) -> ChatStore:
        return ChatStore.open(
            target,
            busy_timeout_s=busy_timeout_s,
            clock=clock,
            wall_clock=wall_clock,
            flush_interval_s=flush_interval_s,
        )

    notice: str | None = None
    moved: Path | None = None
    try:
        store = attempt(path)
    except StoreCorruptError as exc:
        try:
            moved = move_aside(path)
            store = attempt(path)
            notice = f"{_capital(str(exc))}; it was moved to {moved.name} and a new history was started"
        except (OSError, StoreError) as again:
            store = attempt(None)
            reason = again.strerror if isinstance(again, OSError) and again.strerror else str(again)
            notice = f"{_capital(str(exc))} and could not be replaced ({reason}); {_NOT_SAVED}"
    except StoreLockedError as exc:
        store = attempt(None)
        notice = f"{_capital(str(exc))}; {_NOT_SAVED} (close the other lollma-tui and restart)"
    except StoreError as exc:
        store = attempt(None)
        notice = f"{_capital(str(exc))}; {_NOT_SAVED}"
    store.users = users = HistoryUsers.join(store.path)
    recovered = store.recover() if users.alone else 0
    users.share()
    return StoreOpen(store, notice, recovered, moved, others=not users.alone)


def open_store_read_only(path: Path, *, busy_timeout_s: float = 3.0) -> ChatStore:
    """The history at `path` for reading only; raises `StoreError` subclasses (see
    `connect_read_only`). Nothing is moved aside, migrated or marked as recovered: a writer does
    that, and a reader must work where nothing can be written."""
    conn, fts = connect_read_only(path, busy_timeout_s)
    store = ChatStore(conn, path=path, fts=fts)
    # Not joined as a user (that makes and locks a file): a reader never leaves a reply
    # streaming. It can still see which conversations another lollma-tui shows.
    store.users = HistoryUsers(None, alone=True, folder=path.with_name(path.name + OPEN_SUFFIX))
    return store


def move_aside(path: Path, *, now: float | None = None) -> Path:
    """Rename a damaged database and its side files to ``<name>.corrupt-<stamp>``; returns the new path.

    Uses link-then-unlink so an existing file of that name is never replaced (a counter is added).
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    attempt = 0
    while True:
        suffix = f".corrupt-{stamp}" + (f"-{attempt}" if attempt else "")
        target = path.with_name(path.name + suffix)
        if not any(target.with_name(target.name + side).exists() for side in _SIDE_FILES):
            try:
                _move_no_replace(path, target)
                break
            except FileExistsError:
                pass
        attempt += 1
    for side in _SIDE_FILES:
        source = path.with_name(path.name + side)
        if source.exists():
            _move_no_replace(source, target.with_name(target.name + side))
    return target


def _move_no_replace(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:
        # Filesystems without hard links: check, then rename (a narrow race, not a silent overwrite
        # of anything this app wrote, since the stamp is fresh).
        if target.exists():
            raise FileExistsError(target) from None
        os.rename(source, target)
        return
    os.unlink(source)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]

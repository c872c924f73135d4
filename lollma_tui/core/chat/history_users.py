"""Whether another lollma-tui has the same history file open.

Each process that opens the history holds a shared `flock` on a file beside it
(``history.db.users``) for as long as it runs; the kernel drops it when the process ends, however
it ends. On opening, a process first asks for the lock alone (exclusive, without waiting).
Granted: no other lollma-tui runs on this history, so a reply left streaming was cut off by a
crash and may be marked so. Refused: another one is running and may be writing that reply now.
Either way it then shares the lock, so the next one to open sees it.

The conversation a process shows is held the same way, alone, on a file of its own in the
folder beside the history (``history.db.open/<id>``), so that two windows never write into one
thread and one does not delete what the other is writing to.

Where `fcntl` is missing (Windows), or the lock file cannot be made, a process counts as alone,
as before this check existed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import time
from pathlib import Path

SUFFIX = ".users"
OPEN_SUFFIX = ".open"
"""The folder of the conversations' lock files, beside the history."""
SHARE_WAIT_S = 3.0
"""How long to wait for another process that holds the lock alone (it is marking its crashed
replies, a few milliseconds); past that this one goes on without a share."""


_PLAIN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


class HistoryUsers:
    __slots__ = ("_fd", "_folder", "_held", "alone")

    def __init__(self, fd: int | None, *, alone: bool, folder: Path | None = None) -> None:
        self._fd = fd
        self.alone = alone
        """No other lollma-tui had this history open when this one joined."""
        self._folder = folder
        """Where the conversations' lock files are; None: conversations are not held."""
        self._held: tuple[str, int] | None = None

    @classmethod
    def join(cls, history: Path | None) -> HistoryUsers:
        """Join the processes using `history` (None: an in-memory store, used by no one else)."""
        if history is None or sys.platform == "win32":
            return cls(None, alone=True)
        import fcntl

        try:
            fd = os.open(history.with_name(history.name + SUFFIX), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return cls(None, alone=True)
        folder = history.with_name(history.name + OPEN_SUFFIX)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            users = cls(fd, alone=False, folder=folder)
            users.share()
            return users
        return cls(fd, alone=True, folder=folder)

    def share(self) -> None:
        """Let other processes join; call once what needed this one alone is done."""
        if self._fd is None or sys.platform == "win32":
            return
        import fcntl

        deadline = time.monotonic() + SHARE_WAIT_S
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.01)

    def hold(self, conversation_id: str) -> bool:
        """Hold `conversation_id` as the one this process shows, letting go of the one held
        before. False when another process holds it: then nothing changes."""
        if self._holds(conversation_id):
            return True
        try:
            fd = self._lock(conversation_id, create=True)
        except BlockingIOError:
            return False
        except OSError:
            fd = None  # no lock file can be made here: held as far as this process can tell
        self.release()
        if fd is not None:
            self._held = (conversation_id, fd)
        return True

    def release(self) -> None:
        """Let go of the conversation held, if any."""
        if self._held is not None:
            os.close(self._held[1])  # closing drops the lock
            self._held = None

    def held_elsewhere(self, conversation_id: str) -> bool:
        """Whether another process holds `conversation_id` now."""
        if self._holds(conversation_id):
            return False
        try:
            fd = self._lock(conversation_id, create=False)
        except BlockingIOError:
            return True
        except OSError:
            return False  # no lock file: no process ever held it
        if fd is not None:
            os.close(fd)  # it was free: let go at once
        return False

    def _holds(self, conversation_id: str) -> bool:
        return self._held is not None and self._held[0] == conversation_id

    def forget(self, conversation_id: str) -> None:
        """The conversation is deleted: its lock file goes too."""
        if self._holds(conversation_id):
            self.release()
        if self._folder is not None:
            # Never held here, or already gone: nothing to remove.
            with contextlib.suppress(OSError):
                os.unlink(self._folder / _file_name(conversation_id))

    def _lock(self, conversation_id: str, *, create: bool) -> int | None:
        """A descriptor holding the conversation's lock alone; None where there are no locks.
        Raises `BlockingIOError` when another process holds it."""
        if self._folder is None or sys.platform == "win32":
            return None
        import fcntl

        if create:
            self._folder.mkdir(mode=0o700, exist_ok=True)
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        fd = os.open(self._folder / _file_name(conversation_id), flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def close(self) -> None:
        self.release()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _file_name(conversation_id: str) -> str:
    # Ids are hex; anything else (an imported file's) is hashed rather than trusted as a name.
    if _PLAIN_ID.fullmatch(conversation_id):
        return conversation_id
    return hashlib.sha256(conversation_id.encode()).hexdigest()[:32]

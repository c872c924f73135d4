"""Whether another lollma-tui has the same history file open.

Each process that opens the history holds a shared `flock` on a file beside it
(``history.db.users``) for as long as it runs; the kernel drops it when the process ends, however
it ends. On opening, a process first asks for the lock alone (exclusive, without waiting).
Granted: no other lollma-tui runs on this history, so a reply left streaming was cut off by a
crash and may be marked so. Refused: another one is running and may be writing that reply now.
Either way it then shares the lock, so the next one to open sees it.

Where `fcntl` is missing (Windows), or the lock file cannot be made, a process counts as alone,
as before this check existed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

SUFFIX = ".users"
SHARE_WAIT_S = 3.0
"""How long to wait for another process that holds the lock alone (it is marking its crashed
replies, a few milliseconds); past that this one goes on without a share."""


class HistoryUsers:
    __slots__ = ("_fd", "alone")

    def __init__(self, fd: int | None, *, alone: bool) -> None:
        self._fd = fd
        self.alone = alone
        """No other lollma-tui had this history open when this one joined."""

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
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            users = cls(fd, alone=False)
            users.share()
            return users
        return cls(fd, alone=True)

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

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

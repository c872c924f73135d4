"""Another lollma-tui process on the same history file, as far as the file's users can tell: a
child Python process that joins them (`HistoryUsers`), holds a conversation if told to, and
stays until told to go or killed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHILD = """
import sys
from pathlib import Path
from lollma_tui.core.chat.history_users import HistoryUsers
users = HistoryUsers.join(Path(sys.argv[1]))
users.share()
if len(sys.argv) > 2 and not users.hold(sys.argv[2]):
    print("could not hold", sys.argv[2], flush=True)
print("joined alone" if users.alone else "joined", flush=True)
sys.stdin.read()
"""


@contextmanager
def another_instance(history: Path, holding: str | None = None) -> Iterator[subprocess.Popen[str]]:
    """Held while the block runs, showing the conversation `holding`; the process is gone after
    it (it may also be killed inside)."""
    argv = [sys.executable, "-c", CHILD, str(history), *([holding] if holding else [])]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("joined"), f"the other process did not join: {line!r}"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)

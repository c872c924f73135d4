"""The log file a worker writes (llama.cpp's own output included) and what is worth showing.

llama.cpp prints hundreds of loader lines; when a worker fails, the user should read the few
that explain it: an error line if there is one, the crash site that Python's faulthandler
recorded, and never one of our own notes (such as the chat-template line).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path

ROTATE_BYTES = 5 * 1024 * 1024
_TAIL_BYTES = 32 * 1024
OWN_NOTE_PREFIX = "lollma-tui:"
"""Lines the workers print themselves; never shown as the cause of a failure."""

_ERROR_WORDS = ("error", "failed", "invalid", "unable", "assert", "abort", "exception", "requires")
_NOT_ERRORS = ("set_abort_callback",)
"""Lines with an error word that llama.cpp prints on every load: never the cause of a failure."""
_GENERIC_ENDINGS = ("failed to load model",)
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


def open_log(log_path: Path, title: str) -> tuple[int, str]:
    """An fd on the log, created 0600, rotated when large, headed with `title`; caller closes.

    The log only explains failures: one that cannot be opened (a state folder left to root by
    a `sudo lollma-tui`) or written (a full disk) must not stop the worker. Then the fd is on
    /dev/null or the full file, and the second value says why, else it is ""."""
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            if log_path.stat().st_size > ROTATE_BYTES:
                # Copied, then emptied in place: a running worker (the loaded one, when its spare
                # starts) keeps writing where its crash is read. Renamed, its lines went to ".1"
                # and its crash was reported without a cause.
                shutil.copyfile(log_path, log_path.with_name(log_path.name + ".1"))
                os.truncate(log_path, 0)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    except OSError as error:
        return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC), _cannot_write(log_path, error)
    try:
        os.write(fd, f"\n=== {title} {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
    except OSError as error:
        return fd, _cannot_write(log_path, error)
    return fd, ""


def _cannot_write(log_path: Path, error: OSError) -> str:
    return f"cannot write its log {log_path}: {error.strerror or error}"


def log_size(log_path: Path) -> int:
    try:
        return log_path.stat().st_size
    except OSError:
        return 0


def read_since(log_path: Path, since: int) -> str:
    """What the log gained after offset `since` (its last 32 KiB at most)."""
    try:
        with open(log_path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            start = since if since <= size else 0  # rotated meanwhile: read the new file's end
            log.seek(max(start, size - _TAIL_BYTES))
            return log.read().decode(errors="replace")
    except OSError:
        return ""


def failure_detail(text: str, *, errors_only: bool = False) -> str:
    """The part of a worker's log that explains a failure, in one line ("" when nothing does).
    `errors_only`: the worker said why itself; only a line that reads as an error adds to it
    (the log's last lines were "Model metadata: {…}" after a chat template's error)."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("===") and not ln.startswith(OWN_NOTE_PREFIX)]
    fatal = next((i for i, ln in enumerate(lines) if ln.startswith("Fatal Python error")), None)
    if fatal is not None:
        # faulthandler wrote the crash: name it, where it happened, and what llama.cpp said last.
        parts = [lines[fatal]]
        site = _crash_site(lines[fatal + 1 :])
        if site:
            parts.append(f"in {site}")
        before = [ln for ln in lines[:fatal] if not ln.startswith(("Thread 0x", "File ", "Current thread"))]
        if before:
            parts.append(f"after: {before[-1]}")
        return " · ".join(parts)
    errors = [
        ln
        for ln in lines
        if any(word in ln.lower() for word in _ERROR_WORDS) and not any(n in ln for n in _NOT_ERRORS)
    ]
    # llama.cpp ends a failed load with the same line whatever the reason: the reason is before it.
    specific = [ln for ln in errors if not ln.lower().endswith(_GENERIC_ENDINGS)]
    if specific or errors:
        return (specific or errors)[-1]
    return "" if errors_only else " · ".join(lines[-2:])


def _crash_site(lines: list[str]) -> str:
    """The innermost frame of the crashing thread, as ``func (file:line)``."""
    try:
        start = next(i for i, ln in enumerate(lines) if ln.startswith("Current thread"))
    except StopIteration:
        # faulthandler marks no thread as current when the one that crashed runs no Python (one
        # of llama.cpp's compute threads): the threads it lists were only waiting.
        return "a native thread" if any(ln.startswith("Thread 0x") for ln in lines) else ""
    for line in lines[start + 1 :]:
        if line.startswith("Thread 0x"):
            break  # the next thread's frames
        match = _FRAME.search(line)
        if match:
            name = Path(match["file"]).name
            return f"{match['func']} ({name}:{match['line']})"
    return ""

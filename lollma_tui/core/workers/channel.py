"""The child side of a worker process: the protocol pipe, the log, and dying with the app.

A worker is started by `process.WorkerProcess` with its stderr on the log file. `open_channel`
keeps the protocol on a private copy of stdout and points fd 1 at the log too, so nothing
llama.cpp or Python prints can reach the app's terminal. It also makes sure the worker never
outlives the app: on Linux the kernel kills it when the app dies (parent-death signal), and
everywhere the end of its stdin (the app's end of the pipe closing) ends it.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import io
import os
import queue
import signal
import sys
import threading
from typing import IO, Any

from lollma_tui.core.workers import wire
from lollma_tui.core.workers.wire import EV_ERROR, OP_CANCEL, OP_SHUTDOWN, PARENT_PID_ENV

_PR_SET_PDEATHSIG = 1


class Channel:
    """Requests in on stdin (cancels act at once, the rest queue), events out on the protocol fd."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._lock = threading.Lock()
        self.requests: queue.Queue[dict[str, Any]] = queue.Queue()
        self._cancel_lock = threading.Lock()
        self._cancelled: set[int] = set()
        self.current: int | None = None
        self.cancel_event = threading.Event()

    def send(self, message: dict[str, Any]) -> None:
        data = wire.encode(message)
        with self._lock:
            self._out.write(data)
            self._out.flush()

    def begin(self, request_id: int) -> threading.Event:
        """Mark `request_id` as running; the event is set when the app cancels it."""
        with self._cancel_lock:
            self.current = request_id
            self.cancel_event = threading.Event()
            if request_id in self._cancelled:
                self.cancel_event.set()
            return self.cancel_event

    def end(self) -> None:
        with self._cancel_lock:
            if self.current is not None:
                self._cancelled.discard(self.current)
            self.current = None

    def listen(self, stdin: IO[bytes]) -> None:
        """Read requests on a daemon thread until the app goes away."""
        threading.Thread(target=self._read_requests, args=(stdin,), name="requests", daemon=True).start()

    def _read_requests(self, stdin: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in stdin:
                try:
                    message = wire.decode(line)
                except wire.ProtocolError as error:
                    self.send({"ev": EV_ERROR, "kind": "protocol", "message": str(error)})
                    continue
                if message.get("op") == OP_CANCEL:
                    self._cancel(message.get("id"))
                    continue
                self.requests.put(message)
                if message.get("op") == OP_SHUTDOWN:
                    return
        # The app closed its end or died: whatever this worker is doing is no longer wanted,
        # and a blocking llama.cpp call would otherwise keep it alive.
        _flush_and_exit()

    def _cancel(self, request_id: object) -> None:
        if not isinstance(request_id, int):
            return
        with self._cancel_lock:
            self._cancelled.add(request_id)
            if self.current == request_id:
                self.cancel_event.set()


def open_channel() -> Channel:
    """Set up this process as a worker; call first thing in its ``main``."""
    protocol_fd = os.dup(1)
    # fd 2 is the log the app opened for us; fd 1 joins it.
    os.dup2(2, 1)
    sys.stdout = _LogStream(1)
    sys.stderr = _LogStream(2)
    # A crash inside llama.cpp then leaves the Python stack that led to it in the log.
    faulthandler.enable(file=sys.stderr)
    _die_with_parent()
    return Channel(os.fdopen(protocol_fd, "wb", buffering=0))


class _LogStream(io.TextIOWrapper):
    """Text to the log that a full disk cannot fail: llama-cpp-python prints while it loads,
    and an ENOSPC there ended the load (the log only explains failures)."""

    def __init__(self, fd: int) -> None:
        raw = io.FileIO(fd, "w", closefd=False)
        super().__init__(raw, encoding="utf-8", errors="replace", line_buffering=True, write_through=True)

    def write(self, text: str) -> int:
        try:
            return super().write(text)
        except OSError:
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            super().flush()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    expected = os.environ.get(PARENT_PID_ENV)
    # The app may have died before the signal was armed; then we are already an orphan.
    if expected and expected.isdigit() and os.getppid() != int(expected):
        _flush_and_exit()


def _flush_and_exit(code: int = 0) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def finish(code: int = 0) -> None:
    """End the worker now: the kernel frees the model's memory (a GPU context too) as it exits.

    Interpreter teardown would only add time to every swap, which waits for this exit.
    """
    _flush_and_exit(code)

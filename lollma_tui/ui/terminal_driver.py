"""Textual's Linux and macOS terminal driver, made safe to stop and continue from outside, and
quiet while nothing is typed.

Textual restarts application mode on every SIGCONT, meant for the return from its own Ctrl+Z
suspend (SIGTSTP), which first stopped application mode. A process stopped from outside with
SIGSTOP (``kill -STOP``, a debugger, a benchmark pausing the app) cannot catch that signal, so
application mode is still running when SIGCONT comes: the restart adds a second input thread
reading the same terminal. Typed keys are then split between the two threads and reach the app
out of order (an Enter sent half a message and left the rest in the prompt), and quitting can
hang on a thread still waiting for input. The SIGCONT handler here restarts only what was
stopped.

Textual's input thread wakes ten times a second to see whether it should stop, whether anything
was typed or not: about 0.16 % of a core, as much as the rest of an idle app, and more than half
of what `top -d 1` costs. Here it sleeps until a key comes or the driver wakes it to stop. It
still looks again every `INPUT_POLL_S` for a short while after input, so that a lone Esc, which
the parser holds back in case a key sequence follows, is let go after Textual's own delay.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from codecs import getincrementaldecoder
from threading import Event, Lock
from typing import Any

from textual import constants
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

INPUT_POLL_S = 0.1
"""How often the input thread looks while the parser may be holding back a key."""

READ_SIZE = 4096


class _WakingEvent(Event):
    """The driver's stop flag: setting it also wakes the input thread from its wait."""

    def __init__(self) -> None:
        super().__init__()
        self._wake_fd: int | None = None
        self._wake_lock = Lock()

    def wake_through(self, fd: int | None) -> None:
        """Write to `fd` on each set from now on (None: the thread has ended)."""
        with self._wake_lock:
            self._wake_fd = fd

    def set(self) -> None:
        super().set()
        with self._wake_lock:
            if self._wake_fd is not None:
                # A full pipe means the thread is awake already.
                with contextlib.suppress(OSError):
                    os.write(self._wake_fd, b"\0")


class ContinuableDriver(LinuxDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop_flag = _WakingEvent()
        self.exit_event = self._stop_flag

    def write(self, data: str) -> None:
        # A resume that found the terminal gone (closed while the app was stopped with Ctrl+Z)
        # starts no writer; the old one has ended, and its queue, once full, held the quit
        # forever: an orphan process sampling the hardware.
        if not self._writer_gone():
            super().write(data)

    def close(self) -> None:
        if not self._writer_gone():
            super().close()

    def _writer_gone(self) -> bool:
        writer = self._writer_thread
        return writer is not None and not writer.is_alive()

    def _sigcont_application(self, *_: object) -> None:
        reader = self._key_thread
        if reader is not None and reader.is_alive():
            # Not suspended by Textual: the terminal was never given back, so nothing needs
            # restarting.
            return
        super()._sigcont_application()

    def run_input_thread(self) -> None:
        # A pipe per thread: a suspend closes the driver and starts a new thread on resume.
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        self._stop_flag.wake_through(wake_write)
        try:
            self._read_until_stopped(wake_read)
        finally:
            self._stop_flag.wake_through(None)
            os.close(wake_read)
            os.close(wake_write)

    def _read_until_stopped(self, wake_read: int) -> None:
        parser = XTermParser(self._debug)
        # A byte that is not UTF-8 (a latin-1 terminal's "é") is a replacement character, not
        # an exception that ended the app.
        decode = getincrementaldecoder("utf-8")(errors="replace").decode
        sources = [self.fileno, wake_read]
        # Longer than the parser ever holds a key back, so that its timeout is always seen.
        lively_s = constants.ESCAPE_DELAY + 2 * INPUT_POLL_S
        last_input = float("-inf")
        try:
            while not self.exit_event.is_set():
                lively = time.monotonic() - last_input < lively_s
                ready, _, _ = select.select(sources, [], [], INPUT_POLL_S if lively else None)
                if self.fileno in ready:
                    data = os.read(self.fileno, READ_SIZE)
                    if data:
                        last_input = time.monotonic()
                        for event in parser.feed(decode(data)):
                            self.process_message(event)
                    else:
                        sources.remove(self.fileno)  # piped input ended: nothing more will come
                for event in parser.tick():
                    self.process_message(event)
        finally:
            try:
                for _ in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass

"""Subcommands' output to a terminal or a pipe that may go away while they run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TextIO


def drop_stream(stream: TextIO) -> None:
    """Point `stream`'s file at /dev/null: what is still buffered could never be written, and
    Python's own flush on the way out would fail again, as a traceback."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


class GuardedOutput:
    """A text stream whose reader may leave (`| head`, a terminal hung up): the first write or
    flush that fails is the last one tried, and `on_lost` is told once, with the reason."""

    def __init__(self, stream: TextIO, on_lost: Callable[[OSError | ValueError], None] | None = None) -> None:
        self._stream = stream
        self._on_lost = on_lost
        self.lost: OSError | ValueError | None = None

    def write(self, text: str, /) -> int:
        if self.lost is None:
            try:
                self._stream.write(text)
            except (OSError, ValueError) as error:
                self._lose(error)
        return len(text)

    def flush(self) -> None:
        if self.lost is None:
            try:
                self._stream.flush()
            except (OSError, ValueError) as error:
                self._lose(error)

    def _lose(self, error: OSError | ValueError) -> None:
        self.lost = error
        drop_stream(self._stream)
        if self._on_lost is not None:
            self._on_lost(error)

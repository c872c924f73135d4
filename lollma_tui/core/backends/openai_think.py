"""Separating ``<think>…</think>`` from the answer in streamed text.

Servers that do not parse reasoning themselves (llama-server without ``--reasoning-format``,
LM Studio with some models, plain vLLM) send a reasoning model's thoughts inline, wrapped in
think tags. Chunks split anywhere, tags included, so the splitter holds back a tail that could
be the start of a tag until the next chunk settles it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

OPEN = "<think>"
CLOSE = "</think>"

Piece = tuple[Literal["text", "thinking"], str]


class ThinkSplitter:
    def __init__(self) -> None:
        self._thinking = False
        self._held = ""

    @property
    def thinking(self) -> bool:
        return self._thinking

    def feed(self, chunk: str) -> Iterator[Piece]:
        """The pieces of `chunk` that are settled, in order, as ("text" | "thinking", str)."""
        buffer = self._held + chunk
        self._held = ""
        while buffer:
            tag = CLOSE if self._thinking else OPEN
            at = buffer.find(tag)
            if at >= 0:
                if at:
                    yield self._piece(buffer[:at])
                buffer = buffer[at + len(tag) :]
                self._thinking = not self._thinking
                continue
            keep = _partial_tag_suffix(buffer, tag)
            if keep:
                self._held = buffer[-keep:]
                buffer = buffer[:-keep]
            if buffer:
                yield self._piece(buffer)
            return

    def flush(self) -> Iterator[Piece]:
        """What is still held back once the stream has ended (an unfinished tag is just text)."""
        if self._held:
            held, self._held = self._held, ""
            yield self._piece(held)

    def _piece(self, text: str) -> Piece:
        return ("thinking" if self._thinking else "text", text)


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is a proper start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0

"""Separating a reasoning model's ``<think>…</think>`` block from its answer in streamed text.

Models such as Qwen3 and DeepSeek-R1 write their thoughts inline, wrapped in think tags, when
nothing parses them on the way: llama.cpp in our worker, llama-server without
``--reasoning-format``, LM Studio with some models, plain vLLM. Chunks split anywhere, tags
included, so the splitter holds back a tail that could be the start of a tag until the next
chunk settles it.

A reply has at most one block, at its start: a ``<think>`` later on is the answer talking about
the tag. Some chat templates open the block in the prompt (DeepSeek-R1's ends with
``<think>\\n``): the reply then starts inside it, which the caller says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

OPEN = "<think>"
CLOSE = "</think>"

Piece = tuple[Literal["text", "thinking"], str]


def opens_thinking(prompt_end: str) -> bool:
    """Whether a prompt ending with `prompt_end` leaves the model inside a think block."""
    return prompt_end.rstrip().endswith(OPEN)


class ThinkSplitter:
    def __init__(self, *, thinking: bool = False, answering: bool = False) -> None:
        """`thinking`: the prompt opened the block; `answering`: the reply is already under way
        (a continued one), so a tag at the start is text."""
        self._thinking = thinking
        self._answering = answering and not thinking
        self._after_block = False
        self._held = ""

    @property
    def thinking(self) -> bool:
        return self._thinking

    def feed(self, chunk: str) -> Iterator[Piece]:
        """The pieces of `chunk` that are settled, in order, as ("text" | "thinking", str)."""
        buffer = self._held + chunk
        self._held = ""
        while buffer:
            if self._thinking:
                at = buffer.find(CLOSE)
                if at < 0:
                    keep = _partial_tag_suffix(buffer, CLOSE)
                    self._held, buffer = buffer[len(buffer) - keep :], buffer[: len(buffer) - keep]
                    if buffer:
                        yield ("thinking", buffer)
                    return
                if at:
                    yield ("thinking", buffer[:at])
                buffer = buffer[at + len(CLOSE) :]
                self._thinking = False
                self._answering = self._after_block = True
                continue
            if self._answering:
                if self._after_block:
                    # The blank lines between the block and the answer belong to neither.
                    buffer = buffer.lstrip()
                    if not buffer:
                        return
                    self._after_block = False
                yield ("text", buffer)
                return
            start = buffer.lstrip()
            if start.startswith(OPEN):
                buffer = start[len(OPEN) :]
                self._thinking = True
                continue
            if OPEN.startswith(start):
                self._held = buffer  # blank so far, or the start of the tag
                return
            self._answering = True

    def flush(self) -> Iterator[Piece]:
        """What is still held back once the stream has ended (an unfinished tag is just text)."""
        if self._held:
            held, self._held = self._held, ""
            yield ("thinking" if self._thinking else "text", held)


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is a proper start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0

"""Shared names and helpers for the Ollama tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from lollma_tui.core.backends.base import ChatEvent, ChatMessage, ReplyDone, TextDelta, ThinkingDelta
from lollma_tui.core.settings import BackendKind, LoadSettings

Q4 = "tinyllama:1b-q4_K_M"
Q8 = "tinyllama:1b-q8_0"
F16 = "tinyllama:1b-fp16"
THINKER = "qwen3:0.6b"


def ollama_settings(model: str = Q4, **changes: Any) -> LoadSettings:
    return LoadSettings(backend=BackendKind.OLLAMA, model=model).with_changes(**changes)


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage("user", text)]


async def collect(events: AsyncIterator[ChatEvent]) -> tuple[str, str, ReplyDone]:
    """(text, thinking, done) of a whole reply; fails if it does not end with one ReplyDone."""
    text, thinking = [], []
    done: ReplyDone | None = None
    async for event in events:
        assert done is None, "nothing may follow ReplyDone"
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ThinkingDelta):
            thinking.append(event.text)
        else:
            done = event
    assert done is not None, "the stream ended without ReplyDone"
    return "".join(text), "".join(thinking), done

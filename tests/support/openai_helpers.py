"""Shared steps of the OpenAI backend tests: load a model, collect a reply's events."""

from __future__ import annotations

from collections.abc import Sequence

from lollma_tui.core.backends.base import ChatEvent, ChatMessage, ReplyDone, TextDelta, ThinkingDelta
from lollma_tui.core.backends.openai import OpenAIBackend
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings

QUESTION = [ChatMessage("user", "Say hello.")]


def openai_settings(model: str, **changes: object) -> LoadSettings:
    return LoadSettings(backend=BackendKind.OPENAI, model=model, **changes)  # type: ignore[arg-type]


async def reply(
    backend: OpenAIBackend, messages: Sequence[ChatMessage] = QUESTION, **sampling: object
) -> list[ChatEvent]:
    return [e async for e in backend.stream_chat(messages, SamplingSettings(**sampling))]  # type: ignore[arg-type]


def text_of(events: Sequence[ChatEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def thinking_of(events: Sequence[ChatEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, ThinkingDelta))


def done_of(events: Sequence[ChatEvent]) -> ReplyDone:
    last = events[-1]
    assert isinstance(last, ReplyDone), last
    return last

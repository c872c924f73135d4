"""Helpers shared by the hot-swap tests (fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

from lollma_tui.core.backends.base import Backend, ChatMessage, ReplyDone, TextDelta
from lollma_tui.core.session import ModelSession, SwapProgress
from lollma_tui.core.settings import BackendKind, SamplingSettings

GREEDY = SamplingSettings(temperature=0.0, seed=1, max_tokens=12)
ENDLESS = SamplingSettings(temperature=0.0, seed=1, repeat_penalty=1.0, max_tokens=3000)
"""Greedy on the random tiny model never samples EOS, so only a stop ends it early."""


Factory = Callable[[BackendKind], Backend]


class Phases:
    """A progress listener that keeps what it heard."""

    def __init__(self) -> None:
        self.heard: list[SwapProgress] = []

    def __call__(self, progress: SwapProgress) -> None:
        self.heard.append(progress)

    @property
    def names(self) -> list[str]:
        return [p.phase.value for p in self.heard]


async def ask(session: ModelSession, prompt: str = "tell me about the cache") -> tuple[str, ReplyDone]:
    text = ""
    done: ReplyDone | None = None
    async for event in session.stream_chat([ChatMessage("user", prompt)]):
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, ReplyDone):
            done = event
    assert done is not None
    return text, done

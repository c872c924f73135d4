"""The live tokens/s figure while a reply streams, at most a few times a second."""

from __future__ import annotations

import time

SHOW_EVERY_S = 0.25
"""How often the live tokens/s figure may change while a reply streams."""


class TokenRate:
    def __init__(self) -> None:
        self._started: tuple[float, int] | None = None
        self._shown_at = 0.0

    def begin(self) -> None:
        self._started = None
        self._shown_at = 0.0

    def update(self, tokens: int | None, at: float | None = None) -> float | None:
        """The rate to show now, given the reply's token count so far and when the engine made the
        last one (`time.monotonic()`; None: when it arrived here); None: leave it as it is."""
        if tokens is None:
            return None
        now = time.monotonic()
        made_at = now if at is None else at
        if self._started is None:
            self._started = (made_at, tokens)
            return None
        if now - self._shown_at < SHOW_EVERY_S:
            return None
        started_at, started_tokens = self._started
        # A figure over a few tokens is noise (the first ones come slower): wait for a span.
        if made_at - started_at >= SHOW_EVERY_S and tokens > started_tokens:
            self._shown_at = now
            return (tokens - started_tokens) / (made_at - started_at)
        return None

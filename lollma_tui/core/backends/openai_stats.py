"""Per-reply figures from an OpenAI-compatible stream, whoever measured them.

Servers differ (reference/backends.md §G): llama-server puts `timings` on its last chunk; vLLM,
Ollama's /v1 and others send `usage` in a last chunk when asked with
``stream_options.include_usage``; LM Studio adds `stats` with tokens/s. Where a server says
nothing, we time the chunks ourselves and say so in `ReplyStats.source`.

The server's figures are read with limits: a counter that is not a finite number in range is
dropped with a note, and the reply falls back to the next source down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lollma_tui.core.backends.base import ReplyStats, RunSetup, StatsSource
from lollma_tui.core.checked import (
    WireError,
    mapping,
    optional_integer,
    optional_number,
    optional_text,
)

MAX_TOKENS = 1 << 31
MAX_MS = 7 * 24 * 3600 * 1000.0
MAX_RATE = 1e7
"""Tokens per second above this are a broken counter, not a fast machine."""


@dataclass(frozen=True, slots=True)
class Timings:
    """llama-server's `timings` object (also llamafile's)."""

    prompt_n: int | None
    prompt_ms: float | None
    prompt_per_second: float | None
    predicted_n: int | None
    predicted_ms: float | None
    predicted_per_second: float | None
    cache_n: int | None

    @classmethod
    def read(cls, value: object) -> Timings:
        data = mapping(value, "timings")
        return cls(
            prompt_n=optional_integer(data, "prompt_n", "timings", high=MAX_TOKENS),
            prompt_ms=optional_number(data, "prompt_ms", "timings", low=0.0, high=MAX_MS),
            prompt_per_second=optional_number(data, "prompt_per_second", "timings", low=0.0, high=MAX_RATE),
            predicted_n=optional_integer(data, "predicted_n", "timings", high=MAX_TOKENS),
            predicted_ms=optional_number(data, "predicted_ms", "timings", low=0.0, high=MAX_MS),
            predicted_per_second=optional_number(
                data, "predicted_per_second", "timings", low=0.0, high=MAX_RATE
            ),
            cache_n=optional_integer(data, "cache_n", "timings", high=MAX_TOKENS),
        )


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None

    @classmethod
    def read(cls, value: object) -> Usage:
        data = mapping(value, "usage")
        details = data.get("prompt_tokens_details")
        cached = None
        if details is not None:
            cached = optional_integer(
                mapping(details, "usage.prompt_tokens_details"),
                "cached_tokens",
                "usage.prompt_tokens_details",
                high=MAX_TOKENS,
            )
        return cls(
            prompt_tokens=optional_integer(data, "prompt_tokens", "usage", high=MAX_TOKENS),
            completion_tokens=optional_integer(data, "completion_tokens", "usage", high=MAX_TOKENS),
            cached_tokens=cached,
        )


@dataclass(frozen=True, slots=True)
class LmStudioStats:
    """LM Studio's `stats` object (its /api/v0 endpoints)."""

    tokens_per_second: float | None
    time_to_first_token_s: float | None
    generation_time_s: float | None
    stop_reason: str | None

    @classmethod
    def read(cls, value: object) -> LmStudioStats:
        data = mapping(value, "stats")
        return cls(
            tokens_per_second=optional_number(data, "tokens_per_second", "stats", low=0.0, high=MAX_RATE),
            time_to_first_token_s=optional_number(
                data, "time_to_first_token", "stats", low=0.0, high=MAX_MS / 1000
            ),
            generation_time_s=optional_number(data, "generation_time", "stats", low=0.0, high=MAX_MS / 1000),
            stop_reason=optional_text(data, "stop_reason", "stats", max_length=100),
        )


@dataclass(slots=True)
class StreamFigures:
    """What one reply's stream said about itself, gathered chunk by chunk."""

    timings: Timings | None = None
    usage: Usage | None = None
    lm_studio: LmStudioStats | None = None
    problems: list[str] = field(default_factory=list)
    """Figures the server sent that could not be used, and why (for the log, not the chat)."""

    def take(self, extra: Mapping[str, Any] | None, usage: object) -> None:
        """Keep the figures of a chunk: its `usage`, and its non-standard `timings` / `stats`."""
        if usage is not None:
            self.usage = self._read(Usage.read, usage) or self.usage
        if not extra:
            return
        if "timings" in extra:
            self.timings = self._read(Timings.read, extra["timings"]) or self.timings
        if "stats" in extra:
            self.lm_studio = self._read(LmStudioStats.read, extra["stats"]) or self.lm_studio

    def _read(self, reader: Any, value: object) -> Any:
        try:
            return reader(value)
        except WireError as error:
            self.problems.append(str(error))
            return None


@dataclass(frozen=True, slots=True)
class Clock:
    """Our own timings of a reply (perf_counter seconds)."""

    started: float
    first_at: float | None
    last_at: float | None
    ended: float
    chunks: int
    """Chunks that carried text or thinking."""
    arrivals: tuple[tuple[float, int], ...] = ()
    """When each chunk whose arrival is known came, and how many chunks had come by then:
    chunks read in a batch after a pause arrived at some moment the pause hides."""

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_at is None else self.first_at - self.started

    def rate(self, tokens: int) -> float | None:
        """Tokens after the first over the time they took to arrive."""
        if self.first_at is not None and self.chunks:
            first_at = self.first_at
            paces = [
                ((count - 1) / (at - first_at), count)
                for at, count in self.arrivals
                if count >= 2 and at > first_at
            ]
            # A stamp is taken when the chunk is read, never before it came: a read held up (a
            # busy loop, a collection) makes a chunk look waited for and late, so the fastest
            # pace is the truest. The reply's later half, where known, stands for all of it.
            later = [pace for pace, count in paces if 2 * (count - 1) >= self.chunks - 1]
            if paces:
                # The chunks' pace, in tokens (a chunk may hold more than one).
                return max(later or [pace for pace, _ in paces]) * tokens / self.chunks
        if tokens < 2 or self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return None
        return (tokens - 1) / (self.last_at - self.first_at)


def reply_stats(setup: RunSetup, figures: StreamFigures, clock: Clock) -> ReplyStats:
    """The reply's stats from the best source the stream offered."""
    timings, usage, studio = figures.timings, figures.usage, figures.lm_studio
    prompt_tokens = usage.prompt_tokens if usage is not None else None
    evaluated: int | None = None
    if prompt_tokens is not None and usage is not None and usage.cached_tokens is not None:
        evaluated = max(0, prompt_tokens - usage.cached_tokens)
    gen_tokens = usage.completion_tokens if usage is not None else None
    prompt_tps: float | None = None
    gen_tps: float | None
    if timings is not None and timings.predicted_per_second is not None:
        if timings.prompt_n is not None:
            evaluated = timings.prompt_n
            prompt_tokens = timings.prompt_n + (timings.cache_n or 0)
        prompt_tps = timings.prompt_per_second
        gen_tokens = timings.predicted_n if timings.predicted_n is not None else gen_tokens
        source, gen_tps = StatsSource.SERVER_TIMINGS, timings.predicted_per_second
    elif studio is not None and studio.tokens_per_second is not None:
        source, gen_tps = StatsSource.SERVER_STATS, studio.tokens_per_second
    elif gen_tokens is not None:
        source, gen_tps = StatsSource.CLIENT_CLOCK, clock.rate(gen_tokens)
    else:
        source, gen_tps = StatsSource.CLIENT_CHUNKS, clock.rate(clock.chunks)
    if gen_tokens is None:
        gen_tokens = clock.chunks
    return ReplyStats(
        setup=setup,
        ttft_s=clock.ttft_s,
        prompt_tokens=prompt_tokens,
        prompt_tokens_evaluated=evaluated,
        prompt_tps=prompt_tps,
        gen_tokens=gen_tokens,
        gen_tps=gen_tps,
        total_s=clock.ended - clock.started,
        source=source,
    )

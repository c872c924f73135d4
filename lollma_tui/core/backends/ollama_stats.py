"""Per-reply figures from Ollama's final chunk, and a guess at what came from its prompt cache.

Ollama reports durations in nanoseconds on the final (``done``) chunk only. Its
``prompt_eval_count`` counts cached prompt tokens too while ``prompt_eval_duration`` covers only
the evaluated ones, so prompt tokens/s is inflated whenever the runner reused its cache. The
server does not say how much it reused; `PromptCacheTracker` estimates it from the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass

from ollama import ChatResponse

from lollma_tui.core.backends.base import ReplyStats, RunSetup

Transcript = tuple[tuple[str, str], ...]
"""(role, content) pairs, as sent."""

RELOAD_EVIDENCE_S = 0.25
"""A load_duration this long means the runner (re)started, so its prompt cache was empty."""

_COUNT_MAX = (1 << 63) - 1


def _count(value: int | None) -> int | None:
    # A negative or past-64-bit figure is not a measurement; dividing by it could overflow.
    return value if value is not None and 0 <= value <= _COUNT_MAX else None


@dataclass(frozen=True, slots=True)
class FinalFigures:
    """The metrics of a final chunk; Go leaves zero values out, hence the Nones."""

    done_reason: str | None
    prompt_eval_count: int | None
    prompt_eval_duration_ns: int | None
    eval_count: int | None
    eval_duration_ns: int | None
    load_duration_ns: int | None
    total_duration_ns: int | None

    @classmethod
    def from_response(cls, part: ChatResponse) -> FinalFigures:
        return cls(
            done_reason=part.done_reason,
            prompt_eval_count=_count(part.prompt_eval_count),
            prompt_eval_duration_ns=_count(part.prompt_eval_duration),
            eval_count=_count(part.eval_count),
            eval_duration_ns=_count(part.eval_duration),
            load_duration_ns=_count(part.load_duration),
            total_duration_ns=_count(part.total_duration),
        )

    @property
    def load_s(self) -> float | None:
        return self.load_duration_ns / 1e9 if self.load_duration_ns is not None else None

    @property
    def reloaded(self) -> bool:
        return (self.load_s or 0.0) >= RELOAD_EVIDENCE_S


class PromptCacheTracker:
    """Remembers the last exchange to estimate how much of the next prompt the runner reused.

    llama.cpp keeps the previous request's tokens (prompt, then reply) in its KV cache and
    reuses the longest common prefix. A prompt that continues the previous conversation
    therefore reuses all of it; one that repeats the previous prompt (a regenerated reply)
    reuses the prompt. At least one token is always evaluated.
    """

    def __init__(self) -> None:
        self._prompt: Transcript = ()
        self._with_reply: Transcript | None = None
        self._prompt_tokens = 0
        self._total_tokens = 0
        self._unsure = False

    def forget(self) -> None:
        """The runner was (re)loaded or unloaded: nothing is cached any more."""
        self._prompt, self._with_reply = (), None
        self._prompt_tokens = self._total_tokens = 0
        self._unsure = False

    def lose_track(self) -> None:
        """A request was stopped or failed midway: the runner keeps some of it (the prompt it
        read, part of a reply), how much is unknown, until the next reply that ends."""
        self.forget()
        self._unsure = True

    def cached_tokens(self, transcript: Transcript, prompt_tokens: int) -> int | None:
        """How many of the prompt's tokens the runner reused; None when that is unknown."""
        if self._unsure:
            return None
        if not self._prompt or prompt_tokens <= 1:
            return 0
        reused = 0
        if self._with_reply is not None and _extends(transcript, self._with_reply):
            reused = self._total_tokens
        elif _extends(transcript, self._prompt):
            reused = self._prompt_tokens
        return max(0, min(reused, prompt_tokens - 1))

    def record(
        self, transcript: Transcript, reply: str, prompt_tokens: int, gen_tokens: int, *, thought: bool
    ) -> None:
        self._prompt = transcript
        # A thinking model's cache holds its thinking tokens, which the next prompt leaves out
        # (only the answer is sent back), so only the prompt part will match.
        self._with_reply = None if thought else (*transcript, ("assistant", reply))
        self._prompt_tokens = prompt_tokens
        self._total_tokens = prompt_tokens + gen_tokens
        self._unsure = False


def _extends(transcript: Transcript, prefix: Transcript) -> bool:
    return len(transcript) >= len(prefix) and transcript[: len(prefix)] == prefix


def reply_stats(
    setup: RunSetup,
    final: FinalFigures,
    *,
    ttft_s: float | None,
    total_s: float,
    cached_tokens: int | None,
) -> ReplyStats:
    """The reply's figures; with `cached_tokens` unknown, so are the prompt's speed and how
    much of it was read (a prompt speed over all of its tokens would be far too high)."""
    prompt_tokens = final.prompt_eval_count
    evaluated: int | None = None
    prompt_tps: float | None = None
    if prompt_tokens and cached_tokens is not None:
        evaluated = max(prompt_tokens - cached_tokens, 1)
        if final.prompt_eval_duration_ns:
            prompt_tps = evaluated / (final.prompt_eval_duration_ns / 1e9)
    gen_tokens = final.eval_count or 0
    gen_tps = gen_tokens / (final.eval_duration_ns / 1e9) if gen_tokens and final.eval_duration_ns else None
    return ReplyStats(
        setup=setup,
        ttft_s=ttft_s,
        prompt_tokens=prompt_tokens,
        prompt_tokens_evaluated=evaluated,
        prompt_tps=prompt_tps,
        gen_tokens=gen_tokens,
        gen_tps=gen_tps,
        total_s=total_s,
        load_s=final.load_s,
    )


def partial_stats(
    setup: RunSetup,
    *,
    ttft_s: float | None,
    total_s: float,
    pieces: int,
    first_s: float | None,
    last_s: float | None,
) -> ReplyStats:
    """Figures for a reply stopped before Ollama sent its final chunk: measured client-side.

    Ollama streams about one token per chunk, so chunks stand in for tokens.
    """
    gen_tps = None
    if pieces > 1 and first_s is not None and last_s is not None and last_s > first_s:
        gen_tps = (pieces - 1) / (last_s - first_s)
    return ReplyStats(
        setup=setup,
        ttft_s=ttft_s,
        prompt_tokens=None,
        prompt_tokens_evaluated=None,
        prompt_tps=None,
        gen_tokens=pieces,
        gen_tps=gen_tps,
        total_s=total_s,
    )

"""Will the next message fit the model's context, and if not, which turns to leave out."""

from __future__ import annotations

from dataclasses import dataclass

TURN_OVERHEAD_TOKENS = 8
"""Tokens a chat template adds around each message (role markers, separators); an upper-ish
figure for common templates, added to the tokenizer's count of the text itself."""

DEFAULT_REPLY_RESERVE = 256
"""Room kept for the reply when no token limit is set."""


def estimate_tokens(text: str) -> int:
    """A tokenizer-free guess (about four characters a token) for backends that cannot count."""
    return (len(text) + 3) // 4


@dataclass(frozen=True, slots=True)
class ContextCheck:
    used: int
    needed: int
    n_ctx: int
    exact: bool
    """False when part of the figure is an estimate rather than the model's tokenizer."""

    @property
    def total(self) -> int:
        return self.used + self.needed

    @property
    def overflows(self) -> bool:
        return self.total > self.n_ctx


def reply_reserve(max_tokens: int | None, n_ctx: int) -> int:
    """Room kept for the reply: its token limit, but no more than a quarter of the context
    (a limit as large as the context would leave no room for the chat itself), or in a small
    context `DEFAULT_REPLY_RESERVE` up to half of it."""
    wanted = max_tokens if max_tokens is not None else DEFAULT_REPLY_RESERVE
    return min(wanted, max(min(DEFAULT_REPLY_RESERVE, n_ctx // 2), n_ctx // 4))


def keep_from(turn_tokens: list[int], budget: int, first: int = 0) -> int:
    """Index of the earliest message to keep so the rest (and what comes next) fits `budget`.

    `turn_tokens` are the messages' sizes in order; at least the last message is always kept.
    """
    total = sum(turn_tokens[first:])
    start = first
    while total > budget and start < len(turn_tokens) - 1:
        total -= turn_tokens[start]
        start += 1
    return start

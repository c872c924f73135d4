from __future__ import annotations

from lollma_tui.core.chat.context_budget import ContextCheck, estimate_tokens, keep_from, reply_reserve


def test_overflow_counts_what_is_used_and_what_comes_next() -> None:
    assert not ContextCheck(used=3000, needed=1000, n_ctx=4096, exact=True).overflows
    assert ContextCheck(used=3000, needed=1100, n_ctx=4096, exact=True).overflows


def test_keep_from_drops_the_oldest_turns_only_as_far_as_needed() -> None:
    sizes = [100, 400, 50, 300, 80]
    assert keep_from(sizes, 1000) == 0
    assert keep_from(sizes, 800) == 2  # 930 in all; without the first two, 430
    assert keep_from(sizes, 400) == 3  # 380
    assert keep_from(sizes, 10) == 4  # the newest message always stays
    assert keep_from(sizes, 400, first=4) == 4


def test_estimates_and_reserve() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcdefgh") == 2
    assert reply_reserve(None, 4096) > 0 and reply_reserve(64, 4096) == 64
    assert reply_reserve(None, 512) == reply_reserve(None, 4096)


def test_a_reply_limit_as_large_as_the_context_does_not_make_every_message_overflow() -> None:
    # With max_tokens 4096 in a 4096 context, a 62-token chat "would overflow" and truncating
    # left out every earlier turn, at every message.
    assert reply_reserve(4096, 4096) <= 1024
    assert not ContextCheck(used=62, needed=20 + reply_reserve(4096, 4096), n_ctx=4096, exact=True).overflows
    assert reply_reserve(3000, 32768) == 3000
    # At /ctx 256 the room kept for the reply was all 256 tokens: "Hi" in an empty chat overflowed.
    assert reply_reserve(400, 256) == 128 and reply_reserve(None, 256) == 128
    assert not ContextCheck(used=0, needed=10 + reply_reserve(400, 256), n_ctx=256, exact=True).overflows
    assert reply_reserve(None, 512) == 256 and reply_reserve(400, 2048) == 400

"""The live tok/s: measured on the engine's clock where the backend gives one."""

from __future__ import annotations

import time

from lollma_tui.ui.controllers.token_rate import SHOW_EVERY_S, TokenRate


def test_the_engine_clock_decides_the_rate_not_when_tokens_arrive() -> None:
    rate = TokenRate()
    rate.begin()
    start = time.monotonic() - 10.0  # the engine made these a while ago; the UI reads them late
    assert rate.update(1, start) is None  # the first token only starts the clock
    assert rate.update(101, start + 0.5) == 200.0


def test_without_engine_times_the_rate_is_tokens_over_time_since_the_first() -> None:
    rate = TokenRate()
    rate.begin()
    assert rate.update(1) is None
    time.sleep(SHOW_EVERY_S + 0.05)
    shown = rate.update(11)
    assert shown is not None and 0 < shown <= 10 / SHOW_EVERY_S


def test_the_figure_changes_at_most_every_quarter_second_and_restarts_per_reply() -> None:
    rate = TokenRate()
    rate.begin()
    base = time.monotonic()
    rate.update(1, base)
    assert rate.update(51, base + 0.5) == 100.0
    assert rate.update(101, base + 0.6) is None  # shown just now: left as it is
    rate.begin()
    assert rate.update(1, base + 5.0) is None  # a new reply starts its own clock


def test_no_figure_until_the_reply_spans_a_quarter_second() -> None:
    rate = TokenRate()
    rate.begin()
    base = time.monotonic()
    rate.update(1, base)
    assert rate.update(3, base + 0.01) is None  # two tokens 10 ms apart say little
    assert rate.update(80, base + SHOW_EVERY_S) == 79 / SHOW_EVERY_S

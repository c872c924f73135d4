"""How figures read everywhere: sizes, rates, durations, percentages."""

from __future__ import annotations

from lollma_tui.core import formatting as fmt


def test_sizes_rates_durations_and_percentages() -> None:
    assert fmt.size(412 * fmt.MiB) == "412 MiB"
    assert fmt.size(int(7.93 * fmt.GiB)) == "7.9 GiB"
    assert fmt.size(-3 * fmt.GiB) == "-3.0 GiB"
    assert fmt.size(0) == "0 B" and fmt.size(None) == fmt.MISSING
    assert fmt.used_of_total(int(7.9 * fmt.GiB), 24 * fmt.GiB) == "7.9/24 GiB"
    assert fmt.rate(77.34) == "77.3" and fmt.rate(123.4) == "123" and fmt.rate(None) == fmt.MISSING
    assert fmt.seconds(0.19) == "0.19 s" and fmt.seconds(12.34) == "12.3 s"
    assert fmt.percent(99.6) == "100%" and fmt.share(0.634) == "63%"


def test_a_count_takes_its_noun_in_the_right_number() -> None:
    assert fmt.counted(1, "thread") == "1 thread"
    assert fmt.counted(2, "thread") == "2 threads"
    assert fmt.counted(0, "code block") == "0 code blocks"
    assert fmt.counted(1, "reply", "replies") == "1 reply"
    assert fmt.counted(3, "reply", "replies") == "3 replies"

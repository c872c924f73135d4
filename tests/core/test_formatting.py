"""How figures read: sizes, rates, durations, percentages, and the run and reply lines."""

from __future__ import annotations

from lollma_tui.core import formatting as fmt
from lollma_tui.core.backends.base import ReplyStats, RunSetup
from lollma_tui.core.settings import BackendKind

SETUP = RunSetup(BackendKind.LLAMA_CPP, "Gemma 3 270m", "Q4_K_M", 0, 18, 2048, 2)


def stats(**changes: object) -> ReplyStats:
    values: dict[str, object] = {
        "setup": SETUP,
        "ttft_s": 0.19,
        "prompt_tokens": 40,
        "prompt_tokens_evaluated": 40,
        "prompt_tps": 250.0,
        "gen_tokens": 128,
        "gen_tps": 77.04,
        "total_s": 1.9,
    }
    values.update(changes)
    return ReplyStats(**values)  # type: ignore[arg-type]


def test_stats_line_reads_like_the_design() -> None:
    line = fmt.format_stats(stats())
    assert line.startswith("0.19 s to first token")
    assert "prompt 40 tok @ 250 tok/s" in line
    assert "77.0 tok/s" in line and "128 tokens" in line


def test_cached_prompt_does_not_claim_a_prompt_rate() -> None:
    line = fmt.format_stats(stats(prompt_tokens_evaluated=3, prompt_tps=9000.0))
    assert "37 cached" in line
    assert "9000" not in line


def test_gpu_layers_count_the_output_head() -> None:
    assert fmt.format_gpu_layers(0, 18) == "ngl 0/19"
    assert fmt.format_gpu_layers(-1, 18) == "ngl 19/19"
    assert fmt.format_gpu_layers(40, 18) == "ngl 19/19"
    assert "ctx 2048" in fmt.format_setup(SETUP)


def test_sizes_rates_durations_and_percentages() -> None:
    assert fmt.size(412 * fmt.MiB) == "412 MiB"
    assert fmt.size(int(7.93 * fmt.GiB)) == "7.9 GiB"
    assert fmt.size(-3 * fmt.GiB) == "-3.0 GiB"
    assert fmt.size(0) == "0 B" and fmt.size(None) == fmt.MISSING
    assert fmt.used_of_total(int(7.9 * fmt.GiB), 24 * fmt.GiB) == "7.9/24 GiB"
    assert fmt.rate(77.34) == "77.3" and fmt.rate(123.4) == "123" and fmt.rate(None) == fmt.MISSING
    assert fmt.seconds(0.19) == "0.19 s" and fmt.seconds(12.34) == "12.3 s"
    assert fmt.percent(99.6) == "100%" and fmt.share(0.634) == "63%"

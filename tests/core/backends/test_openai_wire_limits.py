"""The readers of server replies: explicit limits, type checks, and failure per item with a reason."""

from __future__ import annotations

import json
import math

import pytest

from lollma_tui.core.backends.base import RunSetup, StatsSource
from lollma_tui.core.backends.openai_extras import (
    ServerExtras,
    read_lmstudio_models,
    read_metrics,
    read_model_ids,
    read_props,
    read_slots,
)
from lollma_tui.core.backends.openai_request import quant_in_names
from lollma_tui.core.backends.openai_stats import Clock, StreamFigures, reply_stats
from lollma_tui.core.checked import WireError
from lollma_tui.core.settings import BackendKind

SETUP = RunSetup(BackendKind.OPENAI, "m", "", 0, None, 4096, None)
CLOCK = Clock(started=0.0, first_at=0.5, last_at=1.5, ended=1.6, chunks=11)


def stats_from(extra: dict[str, object] | None, usage: object = None):  # type: ignore[no-untyped-def]
    figures = StreamFigures()
    figures.take(extra, usage)
    return reply_stats(SETUP, figures, CLOCK), figures


@pytest.mark.parametrize(
    "bad",
    [math.nan, math.inf, -1.0, 1e12, "fast", True, None],
    ids=["nan", "inf", "neg", "huge", "str", "bool", "null"],
)
def test_a_broken_timing_falls_back_to_our_clock_with_a_reason(bad: object) -> None:
    # Pass the value through JSON as a server would (NaN and Infinity are what Python accepts).
    timings = json.loads(json.dumps({"predicted_per_second": bad, "predicted_n": 11, "prompt_n": 3}))
    stats, figures = stats_from({"timings": timings}, {"prompt_tokens": 3, "completion_tokens": 11})
    if bad is None:
        assert stats.source is StatsSource.CLIENT_CLOCK and not figures.problems
        return
    assert stats.source is StatsSource.CLIENT_CLOCK
    assert stats.gen_tps == pytest.approx(10.0)  # (11 - 1) tokens over the 1 s they took
    assert figures.problems and figures.problems[0].startswith("timings.predicted_per_second:")


def test_usage_gives_counts_and_the_cached_share() -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 11, "prompt_tokens_details": {"cached_tokens": 60}}
    stats, _ = stats_from(None, usage)
    assert (stats.prompt_tokens, stats.prompt_tokens_evaluated, stats.gen_tokens) == (100, 40, 11)
    assert stats.prompt_cached


def test_a_negative_count_in_usage_is_refused() -> None:
    stats, figures = stats_from(None, {"prompt_tokens": -5, "completion_tokens": 2})
    assert stats.source is StatsSource.CLIENT_CHUNKS and stats.gen_tokens == 11
    assert "usage.prompt_tokens: -5 is outside" in figures.problems[0]


def test_llama_server_cache_counts_into_the_prompt() -> None:
    timings = {
        "prompt_n": 4,
        "cache_n": 96,
        "prompt_per_second": 50.0,
        "predicted_n": 11,
        "predicted_per_second": 9.0,
    }
    stats, _ = stats_from({"timings": timings})
    assert (stats.prompt_tokens, stats.prompt_tokens_evaluated, stats.gen_tps) == (100, 4, 9.0)
    assert stats.source is StatsSource.SERVER_TIMINGS


def test_slots_fail_per_entry() -> None:
    slots, problems = read_slots(
        [{"id": 0, "n_ctx": 4096, "is_processing": True}, {"id": 1, "n_ctx": -3}, "x"]
    )
    assert [(s.id, s.n_ctx, s.processing) for s in slots] == [(0, 4096, True)]
    assert problems == [
        "/slots[1].n_ctx: -3 is outside 0..16777216",
        "/slots[2]: expected an object, got a string",
    ]


def test_too_many_slots_is_refused_whole() -> None:
    with pytest.raises(WireError, match="more than the 1024 accepted"):
        read_slots([{"id": i} for i in range(2000)])


def test_lmstudio_models_fail_per_entry() -> None:
    data = {
        "data": [{"id": "a", "state": "loaded", "max_context_length": 4096}, {"id": 7}, {"id": "b" * 600}]
    }
    models, problems = read_lmstudio_models(data)
    assert [(m.id, m.loaded, m.max_context) for m in models] == [("a", True, 4096)]
    assert len(problems) == 2 and "expected a string" in problems[0] and "more than the 512" in problems[1]


def test_model_ids_are_checked() -> None:
    ids, problems = read_model_ids(["ok", "", None, "x" * 513])
    assert ids == ("ok",)
    assert len(problems) == 3


def test_props_must_look_like_llama_server() -> None:
    with pytest.raises(WireError, match="not llama-server"):
        read_props({"hello": 1}, ServerExtras())
    found = read_props({"build_info": "b1", "default_generation_settings": {"n_ctx": "big"}}, ServerExtras())
    assert found.version == "b1" and found.n_ctx is None
    assert found.problems == ("/props.n_ctx: expected an integer, got a string",)


def test_metrics_lines_fail_one_by_one() -> None:
    body = (
        "llamacpp:kv_cache_usage_ratio 7.5\n"  # a ratio above 1
        "llamacpp:requests_processing 2\n"
        'vllm:num_requests_waiting{model_name="a"} NaN\n'
        "llamacpp:requests_deferred {broken\n"
        "some_other_metric 1\n"
    )
    metrics, _kind, problems = read_metrics(body)
    assert metrics.requests_running == 2
    assert metrics.kv_cache_usage is None and metrics.requests_waiting is None
    assert len(problems) == 3
    assert problems[0].startswith("/metrics llamacpp:kv_cache_usage_ratio: 7.5 is outside")


def test_quantization_is_read_from_names() -> None:
    assert quant_in_names("Qwen2.5-7B-Instruct-Q4_K_M.gguf") == "Q4_K_M"
    assert quant_in_names("org/model@q8_0") == "Q8_0"
    assert quant_in_names("gpt-4o", None) == ""

"""Each server's dialect through the backend: where the figures come from, what extras are found."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from openai_helpers import QUESTION, done_of, openai_settings, reply, text_of, thinking_of
from openai_server import Flavour, OpenAITestServer, Script, ServedSpec

from lollma_tui.core.backends import openai as openai_backend
from lollma_tui.core.backends.base import (
    BackendError,
    ChatMessage,
    ReplyDone,
    ReplyStats,
    StatsSource,
    TextDelta,
)
from lollma_tui.core.backends.openai import OpenAIBackend
from lollma_tui.core.backends.openai_extras import ServerKind
from lollma_tui.core.settings import SamplingSettings

Factory = Callable[..., OpenAIBackend]

EXPECTED_SOURCE = {
    Flavour.LLAMA_SERVER: StatsSource.SERVER_TIMINGS,
    Flavour.VLLM: StatsSource.CLIENT_CLOCK,
    Flavour.LM_STUDIO: StatsSource.SERVER_STATS,
    Flavour.PLAIN: StatsSource.CLIENT_CHUNKS,
}
EXPECTED_KIND = {
    Flavour.LLAMA_SERVER: ServerKind.LLAMA_SERVER,
    Flavour.VLLM: ServerKind.VLLM,
    Flavour.LM_STUDIO: ServerKind.LM_STUDIO,
    Flavour.PLAIN: ServerKind.UNKNOWN,
}


async def test_each_dialect_streams_and_reports_who_measured(
    any_flavour_server: OpenAITestServer, make_backend: Factory
) -> None:
    server = any_flavour_server
    server.queue("one two three four five six")
    backend = make_backend(server.base_url)
    await backend.load(openai_settings(server.models[0].id))
    events = await reply(backend)
    done = done_of(events)
    assert text_of(events) == "one two three four five six"
    assert done.finish_reason == "stop"
    assert done.stats.source is EXPECTED_SOURCE[server.flavour]
    assert done.stats.gen_tokens == 6
    assert backend.extras.kind is EXPECTED_KIND[server.flavour]
    # Usage is asked for on every request: vLLM sends token counts only then.
    assert server.chat_requests()[-1].body["stream_options"] == {"include_usage": True}


async def test_llama_server_timings_are_the_reply_figures(
    llama_server: OpenAITestServer, make_backend: Factory
) -> None:
    llama_server.tokens_per_second = 400.0
    backend = make_backend(llama_server.base_url)
    await backend.load(openai_settings(llama_server.models[0].id))
    done = done_of(await reply(backend))
    timings = llama_server.records.replies[-1]
    assert done.stats.gen_tps == pytest.approx(timings["predicted_per_second"])
    assert done.stats.prompt_tps == pytest.approx(timings["prompt_per_second"])
    assert done.stats.prompt_tokens == timings["prompt_n"] + timings["cache_n"]


TRIES = 3
"""A machine busy elsewhere holds our reads up at random, and a reply then reads low: each test
gets three replies, while the defects they catch made every reply read low."""


async def paces(
    server: OpenAITestServer, backend: OpenAIBackend, words: int, held_at: int | None = None
) -> list[tuple[ReplyStats, float]]:
    """(our figures, the server's own pace in tok/s) of each reply, up to the first that agree within 20 %;
    `held_at`: the loop is blocked for 80 ms when that many text pieces have come."""
    seen: list[tuple[ReplyStats, float]] = []
    for _ in range(TRIES):
        server.queue(" ".join(f"w{i}" for i in range(words)))
        texts = 0
        done: ReplyDone | None = None
        async for event in backend.stream_chat(QUESTION, SamplingSettings()):
            if isinstance(event, TextDelta):
                texts += 1
                if texts == held_at:
                    time.sleep(0.08)  # blocks the loop, as a busy app does
            elif isinstance(event, ReplyDone):
                done = event
        assert done is not None and done.stats.gen_tokens == words
        sent = server.records.replies[-1]["predicted_per_second"]
        seen.append((done.stats, sent))
        if done.stats.gen_tps == pytest.approx(sent, rel=0.2):
            break
    return seen


def pace_agrees(seen: list[tuple[ReplyStats, float]]) -> bool:
    return seen[-1][0].gen_tps == pytest.approx(seen[-1][1], rel=0.2)


@pytest.mark.parametrize("flavour", [Flavour.VLLM, Flavour.PLAIN])
async def test_a_server_without_timings_is_timed_by_when_its_tokens_arrive(
    flavour: Flavour, make_backend: Factory
) -> None:
    # The stream is read in batches, every 50 ms: the last tokens were stamped when read, up
    # to 50 ms after they came, and a short reply at 100 tok/s read as 60 to 80.
    with OpenAITestServer(flavour, tokens_per_second=100.0) as server:
        backend = make_backend(server.base_url)
        await backend.load(openai_settings(server.models[0].id))
        seen = await paces(server, backend, words=12)
        assert pace_agrees(seen), [(stats.gen_tps, sent) for stats, sent in seen]
        assert all(stats.source is EXPECTED_SOURCE[flavour] for stats, _ in seen)


async def test_a_held_up_read_does_not_slow_the_measured_pace(make_backend: Factory) -> None:
    # The app's loop is busy at times (a render, a collection): chunks that came meanwhile were
    # read after it as if just arrived, and the reply's pace read a quarter low.
    with OpenAITestServer(Flavour.PLAIN, tokens_per_second=100.0) as server:
        backend = make_backend(server.base_url)
        await backend.load(openai_settings(server.models[0].id))
        seen = await paces(server, backend, words=24, held_at=20)
        assert pace_agrees(seen), [(stats.gen_tps, sent) for stats, sent in seen]


async def test_llama_server_extras_are_found(llama_server: OpenAITestServer, make_backend: Factory) -> None:
    backend = make_backend(llama_server.base_url)
    loaded = await backend.load(openai_settings(llama_server.models[0].id))
    extras = backend.extras
    assert extras.label == "llama-server b4500-0abc123"
    assert extras.n_ctx == llama_server.n_ctx == loaded.n_ctx
    assert extras.model_path == f"/models/{llama_server.models[0].id}.gguf"
    assert [s.n_ctx for s in extras.slots] == [llama_server.n_ctx]
    assert extras.metrics is not None and extras.metrics.kv_cache_usage == 0.25
    assert extras.metrics.gen_tps == pytest.approx(198.7)
    assert set(extras.endpoints) == {"/props", "/health", "/slots", "/metrics"}
    assert loaded.quant == "Q4_K_M"  # spelled in the model id
    assert not extras.problems


async def test_vllm_metrics_and_version(make_backend: Factory) -> None:
    models = [ServedSpec("meta-llama/Llama-3.1-8B-Instruct"), ServedSpec("Qwen/Qwen3-0.6B")]
    with OpenAITestServer(Flavour.VLLM, models=models) as server:
        extras = await make_backend(server.base_url).probe()
    assert extras.label == "vLLM 0.9.1"
    assert extras.metrics is not None
    # One series per model: requests add up, the cache usage is the highest.
    assert (extras.metrics.requests_running, extras.metrics.requests_waiting) == (2, 4)
    assert extras.metrics.kv_cache_usage == 0.125


async def test_vllm_says_the_context_it_serves_each_model_with(make_backend: Factory) -> None:
    # Its /v1/models `max_model_len` was not read: "ctx 4096 (assumed)" on a 32k server, and the
    # "Context full" question at 4,096 tokens.
    models = [
        ServedSpec("Qwen/Qwen2.5-7B", max_context=32768),
        ServedSpec("Qwen/Qwen3-0.6B", max_context=40960),
    ]
    with OpenAITestServer(Flavour.VLLM, models=models) as server:
        backend = make_backend(server.base_url)
        loaded = await backend.load(openai_settings("Qwen/Qwen3-0.6B"))
    assert (loaded.n_ctx, loaded.n_ctx_assumed) == (40960, False)
    assert not any("does not say its context size" in note for note in loaded.notes)


async def test_a_warm_up_that_gets_no_answer_does_not_hold_the_load(
    make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that never answered the one-token warm-up held the load, and with it every change
    # of model or backend, for the whole HTTP timeout (300 s).
    monkeypatch.setattr(openai_backend, "WARM_UP_WAIT_S", 0.5)
    with OpenAITestServer(Flavour.LM_STUDIO) as server:
        server.one_shot_delay_s = 60.0
        backend = make_backend(server.base_url, timeout_s=120.0)
        started = time.monotonic()
        loaded = await backend.load(openai_settings("qwen2.5-7b-instruct-q4_k_m"))
        assert time.monotonic() - started < 5.0
        assert any("did not answer a one-token request in 0.5 s" in note for note in loaded.notes)
        # The model is chosen: a reply goes to it.
        assert "Hello from the test server" in text_of(await reply(backend))


async def test_lm_studio_models_carry_quantization_and_context(make_backend: Factory) -> None:
    models = [
        ServedSpec("granite-3.0-2b-instruct", "Q8_0", "granite", 4096),
        ServedSpec("qwen3-4b", loaded=False),
    ]
    with OpenAITestServer(Flavour.LM_STUDIO, models=models) as server:
        backend = make_backend(server.base_url)
        loaded = await backend.load(openai_settings("granite-3.0-2b-instruct"))
        listed = await backend.list_models()
    assert (loaded.quant, loaded.architecture, loaded.n_ctx) == ("Q8_0", "granite", 4096)
    assert [(m.id, m.loaded) for m in listed] == [("granite-3.0-2b-instruct", True), ("qwen3-4b", False)]


async def test_reasoning_content_and_think_tags_become_thinking(
    llama_server: OpenAITestServer, make_backend: Factory
) -> None:
    llama_server.queue(
        Script(text="The answer is 4.", reasoning="two plus two"),
        Script(text="<think>weigh it up</think>Forty-two."),
    )
    backend = make_backend(llama_server.base_url)
    await backend.load(openai_settings(llama_server.models[0].id))
    first = await reply(backend)
    assert thinking_of(first).split() == ["two", "plus", "two"]
    assert text_of(first) == "The answer is 4."
    second = await reply(backend)
    assert thinking_of(second) == "weigh it up"
    assert text_of(second) == "Forty-two."


async def test_sampling_reaches_the_server_with_llama_cpp_samplers(
    llama_server: OpenAITestServer, make_backend: Factory
) -> None:
    backend = make_backend(llama_server.base_url)
    await backend.load(openai_settings(llama_server.models[0].id))
    await reply(backend, temperature=0.3, top_k=7, min_p=0.2, repeat_penalty=1.3, seed=5, max_tokens=3)
    body = llama_server.chat_requests()[-1].body
    assert (body["temperature"], body["top_k"], body["min_p"], body["repeat_penalty"]) == (0.3, 7, 0.2, 1.3)
    assert (body["seed"], body["max_tokens"]) == (5, 3)


async def test_a_continued_reply_sends_the_assistant_text_last(
    llama_server: OpenAITestServer, make_backend: Factory
) -> None:
    backend = make_backend(llama_server.base_url)
    await backend.load(openai_settings(llama_server.models[0].id))
    await reply(backend, [*QUESTION, ChatMessage("assistant", "Hello")])
    messages = llama_server.chat_requests()[-1].body["messages"]
    assert messages[-1] == {"role": "assistant", "content": "Hello"}


async def test_vllm_is_asked_to_continue_and_a_server_that_cannot_refuses_first(
    make_backend: Factory,
) -> None:
    # Sent as a plain message, vLLM, LM Studio or llama-cpp-python's server started a new
    # answer after the cut one, and /continue glued the two together.
    continuing = [*QUESTION, ChatMessage("assistant", "Hello")]
    with OpenAITestServer(Flavour.VLLM) as vllm:
        backend = make_backend(vllm.base_url)
        await backend.load(openai_settings(vllm.models[0].id))
        await reply(backend, continuing)
        body = vllm.chat_requests()[-1].body
        assert (body["continue_final_message"], body["add_generation_prompt"]) == (True, False)
        await reply(backend)  # a new question is answered as one
        assert "continue_final_message" not in vllm.chat_requests()[-1].body
    with OpenAITestServer(Flavour.LM_STUDIO) as studio:
        backend = make_backend(studio.base_url)
        await backend.load(openai_settings(studio.models[0].id))
        asked = len(studio.chat_requests())
        with pytest.raises(BackendError, match="cannot continue a reply"):
            await reply(backend, continuing)
        assert len(studio.chat_requests()) == asked


async def test_a_server_that_stops_answering_has_its_live_figures_dropped(make_backend: Factory) -> None:
    # The panel kept "0/1 slots busy" and the KV cache figure of a server that had gone.
    from lollma_tui.core.backends.describe import format_server

    with OpenAITestServer(Flavour.LLAMA_SERVER) as server:
        backend = make_backend(server.base_url)
        await backend.load(openai_settings(server.models[0].id))
        extras = await backend.refresh_extras()
        assert extras.slots and extras.metrics is not None and not extras.silent
    gone = await backend.refresh_extras()
    assert gone.silent and gone.slots == () and gone.metrics is None
    lines = format_server(gone)
    assert lines[0] == "llama-server b4500-0abc123" and lines[-1] == "not answering: its figures are gone"
    assert not any("busy" in line or "KV cache" in line for line in lines)  # what it set at start stays

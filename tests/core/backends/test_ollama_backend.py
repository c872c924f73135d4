"""OllamaBackend through the real ollama client over real HTTP to the test server."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys

import pytest
from ollama_server import OllamaTestServer, Script
from ollama_test_support import F16, Q4, Q8, THINKER, collect, ollama_settings, user

from lollma_tui.core.backends.base import (
    Backend,
    BackendError,
    BackendState,
    BackendStatus,
    ChatMessage,
    ReplyDone,
    TextDelta,
    ThinkingDelta,
)
from lollma_tui.core.backends.describe import format_gpu_layers, format_loaded, setup_parts
from lollma_tui.core.backends.ollama import OllamaBackend
from lollma_tui.core.settings import AUTO, SamplingSettings


def test_is_a_backend() -> None:
    assert isinstance(OllamaBackend("127.0.0.1:1"), Backend)


def test_importing_the_backends_package_does_not_import_httpx() -> None:
    code = (
        "import sys, lollma_tui.core.backends, lollma_tui.core.backends.base\n"
        "assert 'httpx' not in sys.modules and 'ollama' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_host_comes_from_argument_then_env_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert OllamaBackend().base_url == "http://127.0.0.1:11434"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:9999")
    assert OllamaBackend().base_url == "http://0.0.0.0:9999"
    assert OllamaBackend("https://box.example").base_url == "https://box.example:443"


async def test_load_reports_the_model_from_show_and_ps(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    loaded = await backend.load(ollama_settings(Q4, n_gpu_layers=11, n_ctx=1024, n_threads=2))
    assert (loaded.name, loaded.architecture, loaded.quant) == (Q4, "llama", "Q4_K_M")
    assert (loaded.n_layers, loaded.n_ctx, loaded.n_ctx_train) == (22, 1024, 2048)
    assert loaded.n_gpu_layers == 11
    assert loaded.n_params == 1_100_048_384
    assert loaded.chat_format_source == "server"
    assert "Placement: 50% GPU / 50% CPU" in loaded.notes
    (running,) = ollama_server.loaded()
    assert loaded.size_bytes == running.size
    assert backend.status.state is BackendState.READY
    # The load is one request with empty messages carrying the runner options.
    (load,) = [r.body for r in ollama_server.requests_to("/api/chat")]
    assert load["messages"] == []
    assert load["options"] == {"num_ctx": 1024, "num_batch": 512, "num_gpu": 11, "num_thread": 2}
    assert load["keep_alive"] == "5m"


async def test_streams_a_scripted_reply_with_stats_from_the_final_chunk(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    await backend.load(ollama_settings(Q4, n_gpu_layers=-1))
    ollama_server.queue_reply(
        Script(
            text="Quantum states link up.",
            tokens_per_second=200,
            prompt_eval_count=40,
            prompt_tokens_per_second=800,
        )
    )
    events = [event async for event in backend.stream_chat(user("explain entanglement"), SamplingSettings())]
    assert all(isinstance(e, TextDelta) for e in events[:-1])
    assert "".join(e.text for e in events[:-1] if isinstance(e, TextDelta)) == "Quantum states link up."
    done = events[-1]
    assert isinstance(done, ReplyDone)
    assert done.finish_reason == "stop"
    stats = done.stats
    assert stats.gen_tokens == 5
    assert stats.gen_tps == pytest.approx(200.0)
    assert stats.prompt_tokens == 40
    assert stats.prompt_tps == pytest.approx(800.0)
    assert not stats.prompt_cached
    assert stats.ttft_s is not None
    assert 0 < stats.ttft_s < stats.total_s
    assert stats.load_s is not None
    assert stats.load_s >= 0
    assert stats.setup.gpu_share == 1.0
    assert stats.setup.n_gpu_layers == 23  # 22 layers and the output head
    assert backend.status.state is BackendState.READY


async def test_options_reach_the_server_as_a_plain_dict(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    await backend.load(
        ollama_settings(Q4, n_gpu_layers=3, n_ctx=1024, n_batch=128, n_threads=4, use_mmap=False)
    )
    sampling = SamplingSettings(
        temperature=0.3,
        top_p=0.8,
        top_k=20,
        min_p=0.07,
        repeat_penalty=1.2,
        seed=7,
        max_tokens=2,
        stop=("END",),
    )
    text, _, done = await collect(backend.stream_chat(user("hi"), sampling))
    assert ollama_server.generations[-1].options == {
        "num_ctx": 1024,
        "num_batch": 128,
        "num_gpu": 3,
        "num_thread": 4,
        "use_mmap": False,
        "temperature": 0.3,
        "top_k": 20,
        "top_p": 0.8,
        "min_p": 0.07,
        "repeat_penalty": 1.2,
        "seed": 7,
        "num_predict": 2,
        "stop": ["END"],
    }
    # num_predict took effect on the server.
    assert done.finish_reason == "length"
    assert done.stats.gen_tokens == 2
    assert text == "Hello!"


async def test_gpu_layers_auto_and_all(backend: OllamaBackend, ollama_server: OllamaTestServer) -> None:
    loaded = await backend.load(ollama_settings(Q8, n_gpu_layers=AUTO))
    assert "num_gpu" not in ollama_server.requests_to("/api/chat")[-1].body["options"]
    # The server put everything on its 24 GiB "GPU": 22 layers and the output head, "ngl 23/23".
    assert loaded.n_gpu_layers == 23
    assert format_gpu_layers(loaded.n_gpu_layers, loaded.n_layers) == "ngl 23/23"
    loaded = await backend.load(ollama_settings(Q8, n_gpu_layers=-1))
    assert ollama_server.requests_to("/api/chat")[-1].body["options"]["num_gpu"] == 999
    assert loaded.n_gpu_layers == 23
    loaded = await backend.load(ollama_settings(Q8, n_gpu_layers=0))
    assert loaded.n_gpu_layers == 0
    assert "Placement: 100% CPU" in loaded.notes


async def test_gpu_layers_are_unknown_while_ollama_has_not_said_where_it_put_them(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    # At keep_alive 0 the model is gone from /api/ps after every request: the card and each
    # reply's set-up said "ngl 0/23" for a model the server had run on its GPU.
    loaded = await backend.load(ollama_settings(Q8, n_gpu_layers=AUTO, keep_alive="0"))
    assert loaded.placement is None
    assert "· ngl ?/23 ·" in format_loaded(loaded)
    _, _, done = await collect(backend.stream_chat(user("hi"), SamplingSettings()))
    assert setup_parts(done.stats.setup)["gpu layers"] == "ngl ?/23"
    kept = await backend.load(ollama_settings(Q8, n_gpu_layers=AUTO))
    assert "· ngl 23/23 ·" in format_loaded(kept)


async def test_changing_gpu_layers_reloads_exactly_once(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    await backend.load(ollama_settings(Q4, n_gpu_layers=4, n_ctx=1024))
    for _ in range(3):
        await collect(backend.stream_chat(user("hi"), SamplingSettings(temperature=0.1)))
    assert ollama_server.reload_count == 0
    await backend.load(ollama_settings(Q4, n_gpu_layers=8, n_ctx=1024))
    assert ollama_server.reload_count == 1
    for temperature in (0.2, 0.9):
        await collect(backend.stream_chat(user("hi"), SamplingSettings(temperature=temperature)))
    assert ollama_server.reload_count == 1
    assert [g.options["num_gpu"] for g in ollama_server.generations] == [4, 4, 4, 8, 8]
    assert ollama_server.loads[-1].options.num_gpu == 8


async def test_swapping_quantization_unloads_the_previous_tag(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    await backend.load(ollama_settings(Q4))
    loaded = await backend.load(ollama_settings(F16))
    assert loaded.quant == "F16"
    assert [r.spec.name for r in ollama_server.loaded()] == [F16]
    assert [(u.model, u.reason) for u in ollama_server.unloads] == [(Q4, "request")]


async def test_keep_alive_is_sent_and_bare_numbers_become_seconds(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    await backend.load(ollama_settings(Q4, keep_alive="300"))
    assert ollama_server.requests_to("/api/chat")[-1].body["keep_alive"] == 300.0
    await collect(backend.stream_chat(user("hi"), SamplingSettings()))
    assert ollama_server.generations[-1].keep_alive == 300.0
    await backend.load(ollama_settings(Q4, keep_alive="1h"))
    assert ollama_server.requests_to("/api/chat")[-1].body["keep_alive"] == "1h"


async def test_thinking_model_streams_thinking_deltas(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    await backend.load(ollama_settings(THINKER))
    ollama_server.queue_reply(Script(text="It is 4.", thinking="Two plus two."))
    events = [e async for e in backend.stream_chat(user("2+2?"), SamplingSettings())]
    kinds = [type(e).__name__ for e in events]
    assert kinds == [*sorted(kinds[:-1], key=lambda k: k != "ThinkingDelta"), "ReplyDone"]
    assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == "Two plus two."
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "It is 4."
    assert ollama_server.requests_to("/api/chat")[-1].body["think"] is True
    # The thinking tokens are counted as generated tokens.
    done = events[-1]
    assert isinstance(done, ReplyDone)
    assert done.stats.gen_tokens == 8

    backend.think = False
    _, thinking, _ = await collect(backend.stream_chat(user("2+2?"), SamplingSettings()))
    assert thinking == ""
    assert ollama_server.requests_to("/api/chat")[-1].body["think"] is False


async def test_think_is_not_sent_to_models_without_the_capability(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    await backend.load(ollama_settings(Q4))
    await collect(backend.stream_chat(user("hi"), SamplingSettings()))
    assert "think" not in ollama_server.requests_to("/api/chat")[-1].body


async def test_prompt_served_from_cache_is_marked(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    await backend.load(ollama_settings(Q4))
    first = user("Tell me about layers.")
    text, _, done = await collect(backend.stream_chat(first, SamplingSettings()))
    assert not done.stats.prompt_cached
    follow_up = [*first, ChatMessage("assistant", text), ChatMessage("user", "And caches?")]
    _, _, done = await collect(backend.stream_chat(follow_up, SamplingSettings()))
    server_view = ollama_server.generations[-1]
    assert server_view.cached_tokens
    assert server_view.prompt_eval_count
    assert done.stats.prompt_cached
    assert done.stats.prompt_tokens == server_view.prompt_eval_count
    # The estimate matches what the runner (here: the scripted engine) really reused.
    assert done.stats.prompt_tokens_evaluated == server_view.prompt_eval_count - server_view.cached_tokens
    # After a reload nothing is cached any more.
    await backend.load(ollama_settings(Q4, n_ctx=1024))
    _, _, done = await collect(backend.stream_chat(follow_up, SamplingSettings()))
    assert not done.stats.prompt_cached


async def test_after_a_failed_reply_the_prompt_speed_is_unknown_not_inflated(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    # The runner kept its cache through a failed (or stopped) request, the estimate was
    # dropped, and the next prompt's tokens were all divided by the time of the new ones alone:
    # "47 tok @ 2938 tok/s" on a server reading 500, and not marked cached.
    await backend.load(ollama_settings(Q4))
    first = user("Tell me about layers.")
    text, _, _ = await collect(backend.stream_chat(first, SamplingSettings()))
    follow_up = [*first, ChatMessage("assistant", text), ChatMessage("user", "And caches?")]
    ollama_server.fail_stream("server busy", after=0)
    with pytest.raises(BackendError):
        await collect(backend.stream_chat(follow_up, SamplingSettings()))
    ollama_server.clear_faults()
    text, _, done = await collect(backend.stream_chat(follow_up, SamplingSettings()))
    assert ollama_server.generations[-1].cached_tokens  # the runner did reuse its cache
    assert done.stats.prompt_tps is None and done.stats.prompt_tokens_evaluated is None
    assert done.stats.prompt_tokens == ollama_server.generations[-1].prompt_eval_count
    # The next reply that ends puts the estimate back on its feet.
    again = [*follow_up, ChatMessage("assistant", text), ChatMessage("user", "More?")]
    _, _, done = await collect(backend.stream_chat(again, SamplingSettings()))
    server_view = ollama_server.generations[-1]
    assert done.stats.prompt_tokens_evaluated == server_view.prompt_eval_count - server_view.cached_tokens


async def test_cancel_mid_stream_reaches_the_server(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    await backend.load(ollama_settings(Q4))
    ollama_server.queue_reply(Script(text=" ".join(["slow"] * 200), tokens_per_second=40))
    events: list[object] = []

    async def consume() -> None:
        async for event in backend.stream_chat(user("long story"), SamplingSettings()):
            events.append(event)

    task = asyncio.create_task(consume())
    await ollama_server.until(lambda: len(events) >= 3)
    await backend.cancel()
    await asyncio.wait_for(task, 2)
    done = events[-1]
    assert isinstance(done, ReplyDone)
    assert done.finish_reason == "cancelled"
    assert 3 <= done.stats.gen_tokens < 200
    (gone,) = await ollama_server.until(lambda: ollama_server.disconnects)
    assert gone.pieces_sent < 200
    assert not gone.done
    # Still usable.
    text, _, done = await collect(backend.stream_chat(user("again"), SamplingSettings()))
    assert text == Script().text
    assert done.finish_reason == "stop"


async def test_cancel_from_inside_the_loop(backend: OllamaBackend, ollama_server: OllamaTestServer) -> None:
    await backend.load(ollama_settings(Q4))
    ollama_server.queue_reply(Script(text=" ".join(["slow"] * 200), tokens_per_second=40))
    events = []
    async for event in backend.stream_chat(user("long story"), SamplingSettings()):
        events.append(event)
        if len(events) == 2:
            await backend.cancel()
    assert isinstance(events[-1], ReplyDone)
    assert events[-1].finish_reason == "cancelled"
    assert len(events) == 3
    await ollama_server.until(lambda: ollama_server.disconnects)


async def test_a_consumer_that_walks_away_closes_the_stream(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    await backend.load(ollama_settings(Q4))
    ollama_server.queue_reply(Script(text=" ".join(["slow"] * 200), tokens_per_second=40))
    stream = backend.stream_chat(user("long story"), SamplingSettings())
    assert isinstance(await anext(stream), TextDelta)  # type: ignore[arg-type]
    await stream.aclose()  # type: ignore[attr-defined]
    (gone,) = await ollama_server.until(lambda: ollama_server.disconnects)
    assert gone.pieces_sent < 200
    assert backend.status.state is BackendState.READY


async def test_unload(backend: OllamaBackend, ollama_server: OllamaTestServer) -> None:
    await backend.unload()  # nothing loaded: fine
    await backend.load(ollama_settings(Q4))
    await backend.unload()
    assert ollama_server.loaded() == []
    unload = ollama_server.requests_to("/api/chat")[-1].body
    assert (unload["messages"], unload["keep_alive"]) == ([], 0)
    assert backend.status.state is BackendState.UNLOADED
    assert backend.loaded is None


async def test_closing_keeps_a_model_asked_to_stay_loaded_for_good(ollama_server: OllamaTestServer) -> None:
    # keep_alive -1 is the user's "keep it until the server stops"; quitting unloaded it anyway.
    kept = OllamaBackend(ollama_server.host, timeout_s=5.0, connect_timeout_s=2.0)
    await kept.load(ollama_settings(Q4, keep_alive="-1"))
    await kept.close()
    assert [r.spec.name for r in ollama_server.loaded()] == [Q4]
    # Any other keep_alive is this app's own: the model leaves with it.
    freed = OllamaBackend(ollama_server.host, timeout_s=5.0, connect_timeout_s=2.0)
    await freed.load(ollama_settings(Q4, keep_alive="30m"))
    await freed.close()
    assert ollama_server.loaded() == []


async def test_status_listener_sees_each_transition(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    seen: list[BackendStatus] = []
    backend.set_status_listener(seen.append)
    await backend.load(ollama_settings(Q4))
    await collect(backend.stream_chat(user("hi"), SamplingSettings()))
    assert [s.state for s in seen] == [
        BackendState.LOADING,
        BackendState.READY,
        BackendState.GENERATING,
        BackendState.READY,
    ]
    assert seen[-1].loaded is not None
    assert seen[-1].loaded.name == Q4


async def test_model_management(backend: OllamaBackend, ollama_server: OllamaTestServer) -> None:
    models = {m.name: m for m in await backend.list_models()}
    assert {m.quantization for name, m in models.items() if name.startswith("tinyllama")} == {
        "Q4_K_M",
        "Q8_0",
        "F16",
    }
    assert models[Q4].family == "llama"
    assert models[Q4].parameter_size == "1.1B"
    assert await backend.running() == []

    await backend.load(ollama_settings(Q4, n_gpu_layers=6))
    (running,) = await backend.running()
    assert running.name == Q4
    assert running.context_length == 2048
    assert running.placement == "27% GPU / 73% CPU"
    assert running.gpu_share == pytest.approx(6 / 22, abs=1e-6)

    info = await backend.show(THINKER)
    assert (info.architecture, info.n_layers, info.n_ctx_train) == ("qwen3", 28, 40960)
    assert info.can_think
    assert info.head_count == 16
    assert info.head_count_kv == 8

    assert await backend.version() == "0.33.0"
    assert await backend.ping() == "0.33.0"

    progress = [p async for p in backend.pull("smollm2:135m")]
    assert progress[0].status == "pulling manifest"
    assert progress[-1].status == "success"
    layer = next(p for p in progress if p.digest)
    assert layer.total
    assert layer.digest.startswith("sha256:")
    assert any(p.fraction == 1.0 for p in progress)
    assert "smollm2:135m" in {m.name for m in await backend.list_models()}
    await backend.delete("smollm2:135m")
    assert "smollm2:135m" not in ollama_server.installed_names()


async def test_a_pull_outlives_the_backend_it_was_asked_of(ollama_server: OllamaTestServer) -> None:
    # A move to llama.cpp or another host closes the chat's Ollama backend while a pull runs:
    # that ended the download ("Lost the connection to Ollama"), as Ollama stops a pull whose
    # client goes away.
    ollama_server.delay_pull_steps(0.1)
    backend = OllamaBackend(ollama_server.host, timeout_s=5.0, connect_timeout_s=2.0)
    pull = backend.pull("smollm2:135m")
    first = await anext(pull)
    await backend.close()
    rest = [progress async for progress in pull]
    assert first.status == "pulling manifest" and rest[-1].status == "success"
    assert "smollm2:135m" in ollama_server.installed_names()


async def test_a_pull_whose_stream_ends_before_success_fails(
    backend: OllamaBackend, ollama_server: OllamaTestServer
) -> None:
    # A stream cut cleanly after a progress line installed nothing, and was reported as pulled.
    ollama_server.reply_raw(
        "/api/pull", b'{"status":"pulling manifest"}\n', content_type="application/x-ndjson"
    )
    with pytest.raises(BackendError, match=r"ended the pull before it finished \(last: pulling manifest\)"):
        _ = [progress async for progress in backend.pull("smollm2:135m")]
    assert "smollm2:135m" not in ollama_server.installed_names()


async def test_a_model_ollama_keeps_on_the_cpu_is_not_blamed_on_a_llama_cpp_build() -> None:
    # An Ollama server without a GPU (size_vram 0): the load line said "CPU-only llama.cpp
    # build", and the drawer treated GPU layers as ignored there.
    with OllamaTestServer(vram_bytes=0) as server:
        backend = OllamaBackend(server.host, timeout_s=5.0, connect_timeout_s=2.0)
        try:
            loaded = await backend.load(ollama_settings(Q4).with_changes(n_gpu_layers=AUTO))
        finally:
            await backend.close()
    assert loaded.placement == "100% CPU"
    assert loaded.gpu_offload_supported
    assert "llama.cpp" not in format_loaded(loaded)
    # A model whose quantization the server does not say: "nofamily:x () loaded in …".
    assert format_loaded(dataclasses.replace(loaded, quant="")).startswith(f"{loaded.name} loaded in ")


async def test_process_ids_finds_the_local_server(backend: OllamaBackend) -> None:
    # The test server listens in this very process.
    assert backend.process_ids() == (os.getpid(),)
    assert backend.process_ids() == (os.getpid(),)  # cached, still right
    assert OllamaBackend("http://ollama.example.invalid:11434").process_ids() == ()


async def test_the_conversation_is_not_touched(backend: OllamaBackend) -> None:
    await backend.load(ollama_settings(Q4))
    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "hi")]
    snapshot = list(messages)
    await collect(backend.stream_chat(messages, SamplingSettings()))
    assert messages == snapshot

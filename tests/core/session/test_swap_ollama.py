"""Swaps that involve Ollama (the test server over real HTTP) and switches between backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import psutil
from ollama_server import OllamaTestServer
from ollama_server.engines import Script
from ollama_server.server import free_port
from swap_support import Factory, Phases, ask

from lollma_tui.core.backends.base import Backend
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.backends.ollama import OllamaBackend
from lollma_tui.core.session import ModelSession
from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings

MakeSession = Callable[..., ModelSession]

Q4 = "tinyllama:1b-q4_K_M"
Q8 = "tinyllama:1b-q8_0"


def ollama(model: str = Q4, **changes: object) -> LoadSettings:
    return LoadSettings(backend=BackendKind.OLLAMA, model=model, n_ctx=2048).with_changes(**changes)


async def test_quant_switch_loads_the_other_tag(
    make_session: MakeSession, both_backends: Factory, ollama_server: OllamaTestServer
) -> None:
    session = make_session(both_backends, ollama())
    assert (await session.load()).ok
    variants = await session.quant_variants()
    assert {v.quant for v in variants} == {"Q4_K_M", "Q8_0", "F16"}
    target = await session.settings_for_quant("q8_0")
    assert target.model == Q8 and target.backend is BackendKind.OLLAMA

    phases = Phases()
    result = await session.swap(target, progress=phases)
    assert result.ok and result.loaded is not None and result.loaded.quant == "Q8_0"
    assert phases.names == ["estimating", "unloading", "loading", "done"]
    assert [load.model for load in ollama_server.loads] == [Q4, Q8]
    # The old tag was unloaded on request (keep_alive 0) before the new one loaded.
    assert [(u.model, u.reason) for u in ollama_server.unloads] == [(Q4, "request")]
    assert [r.spec.name for r in ollama_server.loaded()] == [Q8]
    _, done = await ask(session)
    assert ollama_server.generations[-1].model == Q8
    assert done.stats.setup.quant == "Q8_0"


async def test_runner_option_change_reloads_but_keep_alive_does_not(
    make_session: MakeSession, both_backends: Factory, ollama_server: OllamaTestServer
) -> None:
    session = make_session(both_backends, ollama())
    await session.load()
    loads = len(ollama_server.loads)

    kept = await session.swap(session.settings.with_changes(keep_alive="30m"))
    assert kept.ok and not kept.reloaded
    assert len(ollama_server.loads) == loads  # the runner was not restarted
    await ask(session)
    assert ollama_server.generations[-1].keep_alive == "30m"

    ignored = await session.swap(session.settings.with_changes(flash_attn=True))
    assert ignored.ok and not ignored.reloaded and len(ollama_server.loads) == loads

    smaller = await session.swap(session.settings.with_changes(n_ctx=1024))
    assert smaller.ok and smaller.reloaded
    assert ollama_server.loads[-1].model == Q4 and ollama_server.loads[-1].options.num_ctx == 1024


async def test_failed_ollama_load_rolls_back(
    make_session: MakeSession, both_backends: Factory, ollama_server: OllamaTestServer
) -> None:
    session = make_session(both_backends, ollama())
    await session.load()
    ollama_server.fail_next_load("llama runner process has terminated: out of memory")
    result = await session.swap(ollama(Q8))
    assert result.rolled_back and not result.ok
    assert "out of memory" in result.message and result.message.endswith(f"— back on {Q4}")
    assert session.loaded is not None and session.loaded.name == Q4
    assert session.settings.model == Q4
    text, _ = await ask(session)
    assert text


async def test_unknown_tag_rolls_back_with_the_servers_reason(
    make_session: MakeSession, both_backends: Factory
) -> None:
    session = make_session(both_backends, ollama())
    await session.load()
    result = await session.swap(ollama("nosuchmodel:7b"))
    assert result.rolled_back and "nosuchmodel:7b" in result.message
    assert session.loaded is not None and session.loaded.name == Q4


async def test_switching_llama_cpp_to_ollama_and_back(
    make_session: MakeSession, both_backends: Factory, ollama_server: OllamaTestServer, tiny_f16: Path
) -> None:
    changes: list[Backend] = []
    session = make_session(
        both_backends, LoadSettings(model=str(tiny_f16), n_ctx=512), on_backend_change=changes.append
    )
    await session.load()
    (worker,) = session.process_ids()
    text, done = await ask(session)
    assert text and done.stats.setup.backend is BackendKind.LLAMA_CPP

    to_ollama = await session.swap(ollama())
    assert to_ollama.ok and session.kind is BackendKind.OLLAMA
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE
    assert [c.kind for c in changes] == [BackendKind.OLLAMA]
    text, done = await ask(session)
    assert text and done.stats.setup.backend is BackendKind.OLLAMA

    back_settings = session.settings.with_changes(
        backend=BackendKind.LLAMA_CPP, model=session.last_models[BackendKind.LLAMA_CPP], n_ctx=512
    )
    back = await session.swap(back_settings)
    assert back.ok and session.kind is BackendKind.LLAMA_CPP
    assert (Q4, "request") in [(u.model, u.reason) for u in ollama_server.unloads]
    assert ollama_server.loaded() == []
    text, done = await ask(session)
    assert text and done.stats.setup.backend is BackendKind.LLAMA_CPP
    assert [c.kind for c in changes] == [BackendKind.OLLAMA, BackendKind.LLAMA_CPP]

    # A tag the server lacks is refused before the model in use is unloaded.
    (worker,) = session.process_ids()
    failed = await session.swap(ollama("nosuchmodel:7b"))
    assert failed.refused and session.kind is BackendKind.LLAMA_CPP
    assert "has no model 'nosuchmodel:7b'" in failed.message
    assert session.process_ids() == (worker,)
    text, _ = await ask(session)
    assert text


async def test_a_switch_to_a_server_that_is_down_leaves_the_model_in_use_loaded(
    make_session: MakeSession, tmp_path: Path, tiny_f16: Path
) -> None:
    # Reloading the model in use after a failed switch can take minutes: ask the server first.
    def make(kind: BackendKind) -> Backend:
        if kind is BackendKind.OLLAMA:
            return OllamaBackend(f"127.0.0.1:{free_port()}", timeout_s=5.0, connect_timeout_s=2.0)
        return LlamaCppBackend(log_path=tmp_path / "llama.log")

    session = make_session(make, LoadSettings(model=str(tiny_f16), n_ctx=512))
    await session.load()
    (worker,) = session.process_ids()
    result = await session.swap(ollama())
    assert result.refused and result.message.startswith(f"Not switching to {Q4}")
    assert "not reachable" in result.message
    assert session.kind is BackendKind.LLAMA_CPP and session.process_ids() == (worker,)
    text, _ = await ask(session)
    assert text


async def test_a_cpu_only_llama_cpp_s_zero_layers_do_not_keep_ollama_on_the_cpu(
    make_session: MakeSession, both_backends: Factory, ollama_server: OllamaTestServer, tiny_f16: Path
) -> None:
    # The 0 GPU layers of a CPU-only llama-cpp-python build went with the chat to Ollama, which
    # then ran on the CPU of a GPU box (num_gpu 0), unlike `ollama run` or a start on Ollama.
    session = make_session(both_backends, LoadSettings(model=str(tiny_f16), n_ctx=512))
    await session.load()
    cpu_only = session.gpu_offload_supported is False
    moved = await session.swap(ollama(n_gpu_layers=0))
    assert moved.ok and session.kind is BackendKind.OLLAMA
    sent = ollama_server.loads[-1].requested
    if cpu_only:  # this build (CI's too): the server places the layers
        assert "num_gpu" not in sent and session.settings.n_gpu_layers == AUTO
        # And says so: a 0 chosen in the drawer was replaced without a word.
        assert any(note.startswith("GPU layers: Ollama places them") for note in moved.notes), moved.notes
    else:  # a build that offloads: 0 was a choice, and stays one
        assert sent["num_gpu"] == 0
    # Asked for on Ollama itself, 0 is a choice.
    await session.swap(session.settings.with_changes(n_gpu_layers=0))
    assert ollama_server.loads[-1].requested["num_gpu"] == 0


async def test_a_gguf_path_is_refused_for_ollama(
    make_session: MakeSession, both_backends: Factory, tiny_f16: Path
) -> None:
    session = make_session(both_backends, ollama())
    await session.load()
    result = await session.swap(ollama(str(tiny_f16)))
    assert result.refused and "Ollama loads installed models by name" in result.message
    assert session.loaded is not None and session.loaded.name == Q4


async def test_a_tag_the_server_lacks_leaves_the_model_in_use_loaded(
    make_session: MakeSession, both_backends: Factory, ollama_server: OllamaTestServer
) -> None:
    session = make_session(both_backends, ollama())
    await session.load()
    result = await session.swap(ollama("llama3.2:1b"))
    assert not result.ok and result.rolled_back and "has no model 'llama3.2:1b'" in result.message
    # Asked about first: Q4 was never unloaded, so going back to it loaded nothing again.
    assert ollama_server.unloads == []
    assert [load.model for load in ollama_server.loads] == [Q4]
    assert session.loaded is not None and session.loaded.name == Q4
    _, done = await ask(session)
    assert done.stats.gen_tokens > 0


async def test_a_keep_alive_change_during_a_reply_lets_the_reply_finish(
    make_session: MakeSession, both_backends: Factory, ollama_server: OllamaTestServer
) -> None:
    session = make_session(both_backends, ollama())
    await session.load()
    words = " ".join(f"w{i}" for i in range(8))  # within the 12 tokens a reply may have here
    ollama_server.queue_reply(Script(text=words, tokens_per_second=10))
    reply = asyncio.create_task(ask(session))
    await asyncio.sleep(0.25)
    assert session.replying
    result = await session.swap(session.settings.with_changes(keep_alive="30m"))
    # Stopped before: the reply ended at the change, although nothing had to be reloaded.
    assert result.ok and not result.stopped_reply and not result.reloaded
    text, done = await reply
    assert (text, done.finish_reason) == (words, "stop")
    assert session.settings.keep_alive == "30m"
    await ask(session)
    assert ollama_server.generations[-1].keep_alive == "30m"


async def test_a_keep_alive_change_that_fails_leaves_the_model_usable(
    make_session: MakeSession, both_backends: Factory, ollama_server: OllamaTestServer
) -> None:
    session = make_session(both_backends, ollama())
    await session.load()
    ollama_server.reply_raw("/api/chat", b'{"error":"server busy"}', status=500)
    result = await session.swap(session.settings.with_changes(keep_alive="30m"))
    assert not result.ok and result.message.startswith("Could not apply keep_alive")
    # The model never left the server: the chat goes on with it, as it was.
    assert session.loaded is not None and session.loaded.name == Q4
    assert session.settings.keep_alive != "30m"
    _, done = await ask(session)
    assert done.stats.gen_tokens > 0

"""The llama.cpp backend against a real worker process and real GGUF files."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from gguf_factory import CHATML_TEMPLATE, WORDS, TinyModelSpec, write_tiny_gguf
from slow_worker import slow_loading_python

from lollma_tui.core.backends.base import (
    BackendCrashedError,
    BackendError,
    BackendState,
    BackendStatus,
    ChatMessage,
    ContextOverflowError,
    ModelLoadError,
    ReplyDone,
    TextDelta,
    ThinkingDelta,
)
from lollma_tui.core.backends.llamacpp import (
    LOAD_BYTES_PER_S,
    LOAD_TIMEOUT_BASE_S,
    LlamaCppBackend,
    load_timeout_s,
)
from lollma_tui.core.backends.llamacpp_worker import DELTA_EVERY_S
from lollma_tui.core.chat.conversation import Conversation, ReplyState
from lollma_tui.core.settings import LoadSettings, SamplingSettings

GREEDY = SamplingSettings(temperature=0.0, seed=1, max_tokens=24)
ENDLESS = SamplingSettings(temperature=0.0, seed=1, repeat_penalty=1.0, max_tokens=3000)
"""Greedy on the random tiny model loops without ever sampling EOS, so only a stop ends it early."""


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[LlamaCppBackend]:
    backend = LlamaCppBackend(log_path=tmp_path / "llama.log")
    yield backend
    await backend.close()


async def collect(backend: LlamaCppBackend, prompt: str, sampling: SamplingSettings) -> tuple[str, ReplyDone]:
    text = ""
    done: ReplyDone | None = None
    async for event in backend.stream_chat([ChatMessage("user", prompt)], sampling):
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, ReplyDone):
            done = event
    assert done is not None
    return text, done


async def test_load_reports_what_llama_cpp_loaded(backend: LlamaCppBackend, tiny_gguf: Path) -> None:
    statuses: list[BackendStatus] = []
    backend.set_status_listener(statuses.append)
    loaded = await backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=1000))
    assert loaded.architecture == "llama"
    assert loaded.quant == "F16"
    assert loaded.n_layers == 2
    assert loaded.n_ctx == 1024  # llama.cpp rounds the context up to a multiple of 256
    assert loaded.chat_format_source == "gguf"
    assert loaded.n_params is not None and loaded.n_params > 100_000
    assert [s.state for s in statuses] == [BackendState.LOADING, BackendState.READY]
    (pid,) = backend.process_ids()
    assert psutil.Process(pid).is_running() and pid != os.getpid()


async def test_a_context_that_is_not_a_multiple_of_256_is_usable_to_its_end(
    backend: LlamaCppBackend, tiny_gguf: Path
) -> None:
    # Asked 300, llama.cpp made a context of 512 but llama-cpp-python kept room for 300 tokens:
    # past them every reply failed with "could not broadcast input array from shape (51,) into
    # shape (6,)", while the context meter said there was room left.
    loaded = await backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=300))
    assert loaded.n_ctx == 512
    _, done = await collect(backend, "the cache " * 36, GREEDY)
    assert done.stats.prompt_tokens is not None and 300 < done.stats.prompt_tokens < 480
    assert done.stats.gen_tokens == GREEDY.max_tokens


async def test_the_threads_asked_for_evaluate_the_prompt_too(
    backend: LlamaCppBackend, tiny_gguf: Path
) -> None:
    # /threads 1 used every core for the prompt: a thread sweep showed no prompt-speed effect,
    # and bench's best (which measures -t for both) did not carry over to the chat.
    one = await backend.load(LoadSettings(model=str(tiny_gguf), n_threads=1))
    assert (one.n_threads, one.n_threads_batch) == (1, 1)
    auto = await backend.load(LoadSettings(model=str(tiny_gguf), n_threads=None))
    assert auto.n_threads_batch == max(auto.n_threads or 1, os.cpu_count() or 1)


async def test_the_batch_in_effect_is_reported_where_llama_cpp_lowers_it(
    backend: LlamaCppBackend, tiny_gguf: Path
) -> None:
    # A batch of 4096 with ctx 256 runs as 256: the card, /settings and /compare rows said 4096,
    # so rows that differ only there were the same run.
    from lollma_tui.core.chat.setting_commands import describe_settings

    settings = LoadSettings(model=str(tiny_gguf), n_ctx=256, n_batch=4096)
    loaded = await backend.load(settings)
    assert loaded.n_batch is not None and loaded.n_batch <= loaded.n_ctx == 256
    assert loaded.setup().n_batch == loaded.n_batch
    assert f"(actual: {loaded.n_batch}, at most the context)" in describe_settings(
        settings, SamplingSettings(), loaded
    )
    fits = await backend.load(settings.with_changes(n_batch=128))
    assert fits.n_batch == 128


async def test_mlock_that_could_not_lock_the_model_is_said(tmp_path: Path, tiny_gguf: Path) -> None:
    # A user's usual memlock limit (8 MiB here) and no CAP_IPC_LOCK: llama.cpp wrote a warning in
    # its log and ran unlocked, while the app showed "use_mlock on" and nothing else.
    wrapper = tmp_path / "python-low-memlock"
    wrapper.write_text(
        "#!/bin/sh\nexec prlimit --memlock=65536:65536 setpriv --inh-caps=-all --bounding-set=-ipc_lock "
        f'{sys.executable} "$@"\n'
    )
    wrapper.chmod(0o755)
    backend = LlamaCppBackend(log_path=tmp_path / "llama.log", python=str(wrapper), keep_spare=False)
    try:
        loaded = await backend.load(LoadSettings(model=str(tiny_gguf), use_mlock=True))
        assert any("only 0 MiB of the model is locked in RAM" in note for note in loaded.notes), loaded.notes
        unlocked = await backend.load(LoadSettings(model=str(tiny_gguf), use_mlock=False))
        assert not any("locked in RAM" in note for note in unlocked.notes)
    finally:
        await backend.close()


async def test_llama_cpp_log_goes_to_the_log_file(
    backend: LlamaCppBackend, tiny_gguf: Path, tmp_path: Path
) -> None:
    await backend.load(LoadSettings(model=str(tiny_gguf)))
    log = (tmp_path / "llama.log").read_text()
    assert "llama_model_loader" in log or "print_info" in log
    assert oct((tmp_path / "llama.log").stat().st_mode & 0o777) == "0o600"


async def test_stream_yields_text_then_measured_stats(backend: LlamaCppBackend, tiny_gguf: Path) -> None:
    await backend.load(LoadSettings(model=str(tiny_gguf)))
    text, done = await collect(backend, "tell me about the cache", GREEDY)
    assert text.strip()
    stats = done.stats
    assert done.finish_reason in ("length", "stop")
    assert stats.gen_tokens > 1 and stats.gen_tps is not None and stats.gen_tps > 0
    assert stats.prompt_tokens is not None and stats.prompt_tokens > 5
    assert stats.prompt_tokens_evaluated == stats.prompt_tokens
    assert stats.ttft_s is not None and 0 < stats.ttft_s < stats.total_s
    assert stats.setup.quant == "F16" and stats.setup.n_layers == 2


async def test_tokens_reach_the_app_in_batches_not_a_message_each(
    backend: LlamaCppBackend, tiny_gguf: Path
) -> None:
    await backend.load(LoadSettings(model=str(tiny_gguf)))
    sampling = SamplingSettings(temperature=0.0, seed=1, repeat_penalty=1.0, max_tokens=400)
    deltas: list[TextDelta] = []
    done: ReplyDone | None = None
    started = time.monotonic()
    async for event in backend.stream_chat([ChatMessage("user", "go on")], sampling):
        if isinstance(event, TextDelta):
            deltas.append(event)
        elif isinstance(event, ReplyDone):
            done = event
    elapsed = time.monotonic() - started
    assert done is not None and done.stats.gen_tokens == 400
    counts = [delta.tokens for delta in deltas]
    assert counts == sorted(counts) and counts[-1] == 400  # the last batch carries the full count
    assert counts[0] is not None and counts[0] <= 3  # the first text goes at once
    # At most one message per interval (plus the first and the last), whatever the token rate.
    assert len(deltas) <= elapsed / DELTA_EVERY_S + 2, f"{len(deltas)} messages in {elapsed:.2f} s"


async def test_counters_are_per_reply_and_a_repeated_prompt_is_cached(
    backend: LlamaCppBackend, tiny_gguf: Path
) -> None:
    await backend.load(LoadSettings(model=str(tiny_gguf)))
    _, first = await collect(backend, "the same question", GREEDY)
    _, second = await collect(backend, "the same question", GREEDY)
    assert first.stats.gen_tokens == second.stats.gen_tokens == GREEDY.max_tokens
    assert second.stats.prompt_cached  # the KV prefix was reused, so its prompt rate is unreliable
    assert second.stats.prompt_tokens_evaluated is not None
    assert second.stats.prompt_tokens_evaluated < first.stats.prompt_tokens_evaluated  # type: ignore[operator]


async def test_a_random_seed_differs_from_one_load_to_the_next(tmp_path: Path, tiny_gguf: Path) -> None:
    # Near-uniform sampling, so two replies only match if they were drawn with the same seed.
    wild = SamplingSettings(temperature=3.0, top_p=1.0, top_k=0, min_p=0.0, seed=None, max_tokens=16)
    first_replies = []
    for run in range(2):
        backend = LlamaCppBackend(log_path=tmp_path / f"llama-{run}.log")
        try:
            await backend.load(LoadSettings(model=str(tiny_gguf)))
            text, _ = await collect(backend, "hello", wild)
            first_replies.append(text)
        finally:
            await backend.close()
    assert first_replies[0] and first_replies[0] != first_replies[1]


async def test_gguf_without_template_uses_the_architecture_format(
    backend: LlamaCppBackend, tiny_gguf_no_template: Path, tmp_path: Path
) -> None:
    loaded = await backend.load(LoadSettings(model=str(tiny_gguf_no_template)))
    assert loaded.chat_format_source == "architecture"
    assert loaded.chat_format == "llama-2"
    assert any("no chat template" in note for note in loaded.notes)
    assert "no chat template" in (tmp_path / "llama.log").read_text()


async def test_cancel_mid_stream_keeps_the_partial_reply(backend: LlamaCppBackend, tiny_gguf: Path) -> None:
    await backend.load(LoadSettings(model=str(tiny_gguf)))
    (pid,) = backend.process_ids()
    sampling = ENDLESS
    text = ""
    done: ReplyDone | None = None
    async for event in backend.stream_chat([ChatMessage("user", "go on forever")], sampling):
        if isinstance(event, TextDelta):
            text += event.text
            if len(text) > 20 and backend.status.state == BackendState.GENERATING:
                asyncio.get_running_loop().create_task(backend.cancel())
        elif isinstance(event, ReplyDone):
            done = event
    assert done is not None and done.finish_reason == "cancelled"
    assert text and done.stats.gen_tokens < 3000
    assert backend.process_ids() == (pid,)  # honoured by the worker, not by killing it


async def test_a_stop_that_kills_the_worker_keeps_the_figures_of_what_it_wrote(
    tiny_gguf: Path, tmp_path: Path
) -> None:
    # The worker cannot answer the stop (frozen here; on a busy CPU, slow): it is killed, and the
    # reply said "0 tokens" and "— tok/s" under the text it had written.
    backend = LlamaCppBackend(log_path=tmp_path / "llama.log", cancel_grace_s=0.5)
    try:
        await backend.load(LoadSettings(model=str(tiny_gguf)))
        (pid,) = backend.process_ids()
        sampling = SamplingSettings(temperature=0.0, seed=1, max_tokens=3000)
        counts: list[int] = []
        done: ReplyDone | None = None
        async for event in backend.stream_chat([ChatMessage("user", "go on forever")], sampling):
            if isinstance(event, TextDelta):
                counts.append(event.tokens or 0)
                if len(counts) == 4:
                    os.kill(pid, signal.SIGSTOP)
                    asyncio.get_running_loop().create_task(backend.cancel())
            elif isinstance(event, ReplyDone):
                done = event
        assert done is not None and done.finish_reason == "cancelled"
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert done.stats.gen_tokens == max(counts) > 0
        assert done.stats.gen_tps is not None and done.stats.gen_tps > 0
    finally:
        await backend.close()


async def test_a_worker_killed_between_replies_is_said_at_once(
    backend: LlamaCppBackend, tiny_gguf: Path
) -> None:
    # The OOM killer, or a `kill`, while no reply runs: the status said "ready" until the next
    # message, which then restarted the model without a word.
    settings = LoadSettings(model=str(tiny_gguf))
    await backend.load(settings)
    (pid,) = backend.process_ids()
    failed = asyncio.Event()
    backend.set_status_listener(lambda status: failed.set() if status.state == BackendState.FAILED else None)
    os.kill(pid, signal.SIGKILL)
    await asyncio.wait_for(failed.wait(), 10)
    status = backend.status
    assert status.state == BackendState.FAILED and status.loaded is None
    assert status.message.startswith("The llama.cpp worker was killed (out of memory, or by another program)")
    assert status.message.endswith("while idle. Your next message restarts the model.")
    _, done = await collect(backend, "the model", GREEDY)
    assert done.stats.gen_tokens > 0
    assert backend.status.state == BackendState.READY and backend.status.loaded is not None
    # A swap ends the old worker on purpose: that is no failure.
    await backend.load(settings.with_changes(n_ctx=1024))
    await asyncio.sleep(0.5)
    assert backend.status.state == BackendState.READY


async def test_a_reply_s_tokens_are_those_llama_cpp_evaluated(smollm2_gguf: Path, tmp_path: Path) -> None:
    # The end-of-text token was counted: every reply that ended by itself read one token more
    # than llama.cpp's own count, which its log prints for each reply ("eval time … / N runs").
    log = tmp_path / "llama.log"
    backend = LlamaCppBackend(log_path=log)
    try:
        await backend.load(LoadSettings(model=str(smollm2_gguf), n_ctx=1024))
        counted: list[int] = []
        for question in ("Say hi.", "What is 2+2? Answer in one word."):
            async for event in backend.stream_chat(
                [ChatMessage("user", question)], GREEDY.with_changes(max_tokens=96)
            ):
                if isinstance(event, ReplyDone):
                    assert event.finish_reason == "stop"
                    counted.append(event.stats.gen_tokens)
    finally:
        await backend.close()
    runs = [int(n) for n in re.findall(r"\beval time = .* / +(\d+) runs", log.read_text())]
    assert counted == runs[-2:] and all(counted)


async def test_cancel_during_a_long_prompt_between_batches(slow_gguf: Path, tmp_path: Path) -> None:
    # Short batches, and more grace than the product's second: on a loaded machine one batch of
    # this model can take longer than that, and the stop would be a kill, not what is tested here.
    backend = LlamaCppBackend(log_path=tmp_path / "llama.log", cancel_grace_s=8.0)
    try:
        await backend.load(LoadSettings(model=str(slow_gguf), n_ctx=8192, n_batch=64, n_threads=1))
        (pid,) = backend.process_ids()
        prompt = " ".join(WORDS * 50)
        task = asyncio.create_task(collect(backend, prompt, GREEDY))
        await asyncio.sleep(1.0)
        await backend.cancel()
        text, done = await asyncio.wait_for(task, 15)
        assert done.finish_reason == "cancelled" and text == ""
        assert backend.process_ids() == (pid,)
        # How much of the prompt was read is not known: no part of it is said to be cached.
        assert done.stats.prompt_tokens is not None and done.stats.prompt_tokens > 1000
        assert done.stats.prompt_tokens_evaluated is None and not done.stats.prompt_cached
        assert done.stats.prompt_tps is None
    finally:
        await backend.close()


async def test_cancel_stuck_in_one_prompt_batch_kills_and_restarts_the_worker(
    backend: LlamaCppBackend, slow_gguf: Path
) -> None:
    # One 8192-token batch is a single llama_decode call: the worker cannot see the stop.
    settings = LoadSettings(model=str(slow_gguf), n_ctx=8192, n_batch=8192, n_threads=1)
    await backend.load(settings)
    (pid,) = backend.process_ids()
    prompt = " ".join(WORDS * 50)
    task = asyncio.create_task(collect(backend, prompt, GREEDY))
    await asyncio.sleep(1.0)
    await backend.cancel()
    _, done = await asyncio.wait_for(task, 5)
    assert done.finish_reason == "cancelled"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    # The worker comes back with the same settings and answers.
    _, after = await collect(backend, "short", GREEDY)
    assert after.stats.gen_tokens > 0
    (new_pid,) = backend.process_ids()
    assert new_pid != pid
    assert backend.status.loaded is not None and backend.status.loaded.settings == settings


async def test_worker_killed_mid_stream_is_reported_and_restarted(
    backend: LlamaCppBackend, tiny_gguf: Path
) -> None:
    await backend.load(LoadSettings(model=str(tiny_gguf)))
    (pid,) = backend.process_ids()
    sampling = ENDLESS
    with pytest.raises(BackendCrashedError, match=r"SIGKILL.*next message restarts") as raised:
        async for event in backend.stream_chat([ChatMessage("user", "hello")], sampling):
            if isinstance(event, TextDelta):
                os.kill(pid, signal.SIGKILL)
    # Killed from outside: the log's last lines (chat template notes) explain nothing, so none.
    message = str(raised.value)
    assert message.startswith("The llama.cpp worker was killed (out of memory, or by another program)")
    assert "log" not in message
    assert backend.status.state == BackendState.FAILED
    _, done = await collect(backend, "are you back?", GREEDY)
    assert done.stats.gen_tokens > 0
    assert backend.process_ids() and backend.process_ids()[0] != pid


async def test_a_stop_while_the_worker_restarts_ends_that_reply_before_it_starts(
    backend: LlamaCppBackend, tiny_gguf: Path
) -> None:
    # After a crash, the next message first restarts the worker (seconds for a large model) and
    # the app offers Esc meanwhile; there is no request in the worker yet for the stop to cancel.
    await backend.load(LoadSettings(model=str(tiny_gguf)))
    (pid,) = backend.process_ids()
    with pytest.raises(BackendCrashedError):
        async for event in backend.stream_chat([ChatMessage("user", "hello")], ENDLESS):
            if isinstance(event, TextDelta):
                os.kill(pid, signal.SIGKILL)
    task = asyncio.create_task(collect(backend, "are you back?", GREEDY))
    deadline = time.monotonic() + 10
    while backend.status.state != BackendState.LOADING:
        assert time.monotonic() < deadline, backend.status
        await asyncio.sleep(0.002)
    await backend.cancel()
    text, done = await asyncio.wait_for(task, 30)
    assert (text, done.finish_reason, done.stats.gen_tokens) == ("", "cancelled", 0)
    # The stop was for that reply only: the worker is back and the next one is answered.
    _, after = await collect(backend, "and now?", GREEDY)
    assert after.finish_reason != "cancelled" and after.stats.gen_tokens > 0


async def test_unload_ends_the_worker_process(backend: LlamaCppBackend, tiny_gguf: Path) -> None:
    await backend.load(LoadSettings(model=str(tiny_gguf)))
    (pid,) = backend.process_ids()
    process = psutil.Process(pid)
    await backend.unload()
    assert backend.process_ids() == ()
    assert backend.status.state == BackendState.UNLOADED
    with pytest.raises(psutil.NoSuchProcess):
        process.wait(timeout=5)
        process.status()


async def test_a_failed_load_in_the_spare_quotes_its_own_error_not_a_crash_logged_before(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    # The spare worker was started before another worker crashed into the same log: the next
    # load's failure named that crash ("Fatal Python error: Bus error · in decode"), not why
    # this file would not load.
    log = tmp_path / "llama.log"
    backend = LlamaCppBackend(log_path=log)
    try:
        await backend.load(LoadSettings(model=str(tiny_gguf)))
        await wait_for_spare(backend)
        with log.open("a") as out:
            out.write("Fatal Python error: Bus error\n\nCurrent thread 0x01 (most recent call first):\n")
            out.write('  File "/x/llama_cpp/_internals.py", line 329 in decode\n')
        broken = tmp_path / "broken-F16.gguf"
        data = tiny_gguf.read_bytes()
        broken.write_bytes(data[: len(data) * 2 // 3])
        with pytest.raises(ModelLoadError) as failed:
            await backend.load(LoadSettings(model=str(broken)))
        assert "Fatal Python error" not in str(failed.value), failed.value
    finally:
        await backend.close()


async def wait_for_spare(backend: LlamaCppBackend) -> int:
    for _ in range(300):
        spare = backend.spare_process_ids()
        if spare:
            return spare[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no spare worker started")


async def test_a_reload_runs_in_the_spare_and_close_ends_both(
    backend: LlamaCppBackend, tiny_gguf: Path
) -> None:
    await backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=512))
    (first,) = backend.process_ids()
    spare = await wait_for_spare(backend)
    assert spare != first
    old = psutil.Process(first)
    loaded = await backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=1024))
    # The new settings run in the process that was waiting, and the old one has ended.
    assert backend.process_ids() == (spare,)
    assert loaded.n_ctx == 1024
    with pytest.raises(psutil.NoSuchProcess):
        old.wait(timeout=5)
        old.status()
    text, done = await collect(backend, "hello", GREEDY)
    assert text and done.stats.gen_tokens > 0
    # A new spare waits for the next change. Unloading ends the model's process and keeps the
    # spare (it holds no model) for the load that usually follows; closing ends it too.
    next_spare = psutil.Process(await wait_for_spare(backend))
    current = psutil.Process(spare)
    await backend.unload()
    with pytest.raises(psutil.NoSuchProcess):
        current.wait(timeout=5)
        current.status()
    assert backend.spare_process_ids() == (next_spare.pid,)
    await backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=512))
    assert backend.process_ids() == (next_spare.pid,)
    last_spare = psutil.Process(await wait_for_spare(backend))
    await backend.close()
    assert backend.spare_process_ids() == ()
    for process in (next_spare, last_spare):
        with pytest.raises(psutil.NoSuchProcess):
            process.wait(timeout=5)
            process.status()


async def test_without_a_spare_a_reload_starts_a_new_process(tmp_path: Path, tiny_gguf: Path) -> None:
    backend = LlamaCppBackend(log_path=tmp_path / "llama.log", keep_spare=False)
    try:
        await backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=512))
        (first,) = backend.process_ids()
        await asyncio.sleep(0.5)
        assert backend.spare_process_ids() == ()
        await backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=1024))
        (second,) = backend.process_ids()
        assert second != first
    finally:
        await backend.close()


async def test_missing_and_corrupt_files_fail_with_a_reason(
    backend: LlamaCppBackend, tmp_path: Path, tiny_gguf: Path
) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        await backend.load(LoadSettings(model=str(tmp_path / "nope.gguf")))
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(tiny_gguf.read_bytes()[:200_000])
    with pytest.raises(ModelLoadError, match=r"corrupt\.gguf"):
        await backend.load(LoadSettings(model=str(corrupt)))
    assert backend.status.state == BackendState.FAILED
    assert backend.process_ids() == ()
    # The most common real failure, a newer architecture: llama.cpp's own reason, not only its
    # closing "failed to load model".
    unknown = write_tiny_gguf(tmp_path / "newarch.gguf", TinyModelSpec(architecture="qwen9next"))
    with pytest.raises(ModelLoadError, match="unknown model architecture: 'qwen9next'"):
        await backend.load(LoadSettings(model=str(unknown)))
    # The backend is still usable afterwards.
    loaded = await backend.load(LoadSettings(model=str(tiny_gguf)))
    assert loaded.n_layers == 2


def test_the_load_timeout_counts_every_part_of_a_split_model(tmp_path: Path) -> None:
    # A slow disk reading a 4-part model: the first part alone gave a quarter of the time.
    parts = [tmp_path / f"big-Q4_K_M-0000{i}-of-00004.gguf" for i in range(1, 5)]
    for part in parts:
        with open(part, "wb") as out:
            out.truncate(LOAD_BYTES_PER_S * 10)  # sparse: ten seconds of reading each
    assert load_timeout_s(str(parts[0])) == pytest.approx(LOAD_TIMEOUT_BASE_S + 40)
    single = tmp_path / "one.gguf"
    with open(single, "wb") as out:
        out.truncate(LOAD_BYTES_PER_S * 10)
    assert load_timeout_s(str(single)) == pytest.approx(LOAD_TIMEOUT_BASE_S + 10)


@pytest.mark.parametrize("where", ["file as folder", "full disk"])
async def test_a_log_that_cannot_be_written_is_a_note_not_a_failed_load(
    tmp_path: Path, tiny_gguf: Path, where: str
) -> None:
    # The log only explains failures. A state folder left to root by a `sudo lollma-tui` (here
    # a file where the folder goes), or a full disk (/dev/full: every write is ENOSPC, the
    # worker's own prints included), failed every load: "cannot write its log".
    if where == "full disk":
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "llama.cpp.log").symlink_to("/dev/full")
        log_path = tmp_path / "state" / "llama.cpp.log"
    else:
        (tmp_path / "state").write_text("not a folder")
        log_path = tmp_path / "state" / "logs" / "llama.cpp.log"
    backend = LlamaCppBackend(log_path=log_path)
    try:
        loaded = await backend.load(LoadSettings(model=str(tiny_gguf)))
        assert any(
            note.startswith(f"The llama.cpp worker cannot write its log {log_path}") for note in loaded.notes
        ), loaded.notes
        _, done = await collect(backend, "the model", GREEDY)
        assert done.finish_reason in ("stop", "length") and done.stats.gen_tokens > 0
    finally:
        await backend.close()


async def test_a_file_name_that_is_not_utf8_fails_with_a_reason_not_a_hang(
    backend: LlamaCppBackend, tmp_path: Path, tiny_gguf: Path
) -> None:
    # "café" written in Latin-1 by an old archive: the load request could not be encoded for
    # the worker, and the load waited for ever.
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9-F16.gguf"))
    odd.write_bytes(tiny_gguf.read_bytes())
    with pytest.raises(ModelLoadError, match="not UTF-8"):
        await asyncio.wait_for(backend.load(LoadSettings(model=str(odd))), 60)
    loaded = await backend.load(LoadSettings(model=str(tiny_gguf)))
    assert loaded.n_layers == 2


async def test_prompt_larger_than_the_context_is_a_clear_error(
    backend: LlamaCppBackend, tiny_gguf: Path
) -> None:
    await backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=256))
    with pytest.raises(ContextOverflowError, match="context"):
        await collect(backend, " ".join(WORDS * 40), GREEDY)
    _, done = await collect(backend, "small", GREEDY)
    assert done.stats.gen_tokens > 0


async def test_count_tokens_uses_the_model_tokenizer(backend: LlamaCppBackend, tiny_gguf: Path) -> None:
    assert await backend.count_tokens("the model") is None  # nothing loaded yet
    await backend.load(LoadSettings(model=str(tiny_gguf)))
    import llama_cpp

    vocab = llama_cpp.Llama(str(tiny_gguf), vocab_only=True, verbose=False)
    for text in ("the model", "quantum entanglement, explained!", ""):
        expected = len(vocab.tokenize(text.encode(), add_bos=False, special=False))
        assert await backend.count_tokens(text) == expected
    assert expected == 0 and len(vocab.tokenize(b"the model", add_bos=False)) > 2


async def test_a_trailing_assistant_message_is_continued(backend: LlamaCppBackend, tiny_gguf: Path) -> None:
    await backend.load(LoadSettings(model=str(tiny_gguf)))
    question = ChatMessage("user", "tell me about the cache")
    first, _ = await collect(backend, question.content, GREEDY)
    text = ""
    done: ReplyDone | None = None
    async for event in backend.stream_chat([question, ChatMessage("assistant", first)], GREEDY):
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, ReplyDone):
            done = event
    assert done is not None and text
    # Continuing sends the partial reply as part of the prompt: more prompt tokens than the
    # question alone, and greedy decoding picks up where the first reply stopped.
    assert done.stats.prompt_tokens is not None
    _, fresh = await collect(backend, question.content, GREEDY)
    assert fresh.stats.prompt_tokens is not None
    assert done.stats.prompt_tokens > fresh.stats.prompt_tokens


STRICT_ROLES_TEMPLATE = (
    # Gemma's and Mistral's templates refuse a conversation whose roles do not alternate.
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


async def test_a_question_whose_reply_failed_keeps_a_strict_template_working(
    backend: LlamaCppBackend, tmp_path: Path
) -> None:
    """After a reply that failed (or stopped before its first word), the next question used to
    follow the unanswered one directly: such templates then refused every later message."""
    model = write_tiny_gguf(
        tmp_path / "strict-roles.gguf", TinyModelSpec(chat_template=STRICT_ROLES_TEMPLATE)
    )
    await backend.load(LoadSettings(model=str(model)))
    two_questions = [ChatMessage("user", "first"), ChatMessage("user", "second")]
    with pytest.raises(BackendError, match="must alternate"):  # the template really is strict
        async for _ in backend.stream_chat(two_questions, GREEDY):
            pass

    conversation = Conversation()
    conversation.add_user("first")
    failed = conversation.start_reply()
    failed.state, failed.error = ReplyState.ERROR, "the server went away"
    conversation.add_user("second")
    done: ReplyDone | None = None
    async for event in backend.stream_chat(conversation.history(), GREEDY):
        if isinstance(event, ReplyDone):
            done = event
    assert done is not None and done.stats.gen_tokens > 0


async def test_closing_during_a_long_load_ends_it_at_once(tmp_path: Path, tiny_gguf: Path) -> None:
    python = slow_loading_python(tmp_path, 60, marker="tiny")
    backend = LlamaCppBackend(log_path=tmp_path / "llama.log", python=python, keep_spare=False)
    load = asyncio.create_task(backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=256, n_threads=1)))
    deadline = time.monotonic() + 30
    while not backend.process_ids():
        assert time.monotonic() < deadline and not load.done()
        await asyncio.sleep(0.05)
    (pid,) = backend.process_ids()
    await asyncio.sleep(0.5)  # the load request is in; llama.cpp is "reading the file"
    started = time.monotonic()
    await backend.close()
    # Quitting lollma-tui waits for this: not the minute the load would take.
    assert time.monotonic() - started < 5
    with pytest.raises(ModelLoadError):
        await load
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert backend.status.state is not BackendState.READY


async def test_a_load_after_a_stop_that_killed_the_worker_does_not_load_the_old_model_first(
    tmp_path: Path, slow_gguf: Path, tiny_gguf: Path
) -> None:
    # A swap asked for while a reply is stuck in one prompt batch: the stop kills the worker,
    # which would come back with the slow model (a full load, under the lock) before the swap.
    statuses: list[BackendStatus] = []
    backend = LlamaCppBackend(log_path=tmp_path / "llama.log")
    backend.set_status_listener(statuses.append)
    try:
        await backend.load(LoadSettings(model=str(slow_gguf), n_ctx=8192, n_batch=8192, n_threads=1))
        task = asyncio.create_task(collect(backend, " ".join(WORDS * 50), GREEDY))
        await asyncio.sleep(1.0)
        await backend.cancel()
        _, done = await asyncio.wait_for(task, 5)
        assert done.finish_reason == "cancelled"
        since_the_stop = len(statuses)
        await backend.unload()
        loaded = await backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=256))
        assert loaded.name == "tiny-llama"
        ready = [s.loaded.name for s in statuses[since_the_stop:] if s.loaded is not None]
        assert ready == ["tiny-llama"]
        assert backend.status.loaded is loaded and len(backend.process_ids()) == 1
    finally:
        await backend.close()


REASONING = ("<think>", "▁memory", "▁cache", "</think>", "▁the", "▁model", "▁is", "▁fast")
"""What a reasoning model (Qwen3, DeepSeek-R1) writes: a think block, then its answer."""


async def thinking_and_text(backend: LlamaCppBackend, messages: list[ChatMessage]) -> tuple[str, str]:
    thinking = text = ""
    async for event in backend.stream_chat(messages, GREEDY):
        if isinstance(event, ThinkingDelta):
            thinking += event.text
        elif isinstance(event, TextDelta):
            text += event.text
    return thinking, text


async def test_a_reasoning_model_s_think_block_is_thinking_not_the_answer(
    backend: LlamaCppBackend, tmp_path: Path
) -> None:
    # Before, the tags and the thoughts came through as the answer's text.
    model = write_tiny_gguf(tmp_path / "reasoning.gguf", TinyModelSpec(script=REASONING))
    await backend.load(LoadSettings(model=str(model)))
    thinking, text = await thinking_and_text(backend, [ChatMessage("user", "why?")])
    assert (thinking, text) == (" memory cache", "the model is fast")


async def test_a_think_block_the_chat_template_opened_is_thinking_too(
    backend: LlamaCppBackend, tmp_path: Path
) -> None:
    # DeepSeek-R1's template ends the prompt with "<think>\n": the model writes only the end tag.
    template = CHATML_TEMPLATE.replace("'<|im_start|>assistant\\n'", "'<|im_start|>assistant\\n<think>\\n'")
    assert template != CHATML_TEMPLATE
    spec = TinyModelSpec(script=REASONING[1:], chat_template=template)
    model = write_tiny_gguf(tmp_path / "opened.gguf", spec)
    await backend.load(LoadSettings(model=str(model)))
    thinking, text = await thinking_and_text(backend, [ChatMessage("user", "why?")])
    assert (thinking, text) == (" memory cache", "the model is fast")
    # A continued reply goes on with its answer: the prompt then ends in that, not in the tag.
    continued = [ChatMessage("user", "why?"), ChatMessage("assistant", "Because")]
    thinking, text = await thinking_and_text(backend, continued)
    assert thinking == "" and text.startswith(" memory cache")
    # And the model reads it as the answer: the block the template opened is closed before it,
    # where the saved answer went on inside it, as thoughts.
    import llama_cpp

    vocab = llama_cpp.Llama(str(model), vocab_only=True, verbose=False)
    asked = await prompt_tokens(backend, [ChatMessage("user", "why?")])
    continued_asked = await prompt_tokens(backend, continued)
    added = vocab.tokenize(b"\n</think>\n\n", add_bos=False, special=True)
    added += vocab.tokenize(b"Because", add_bos=False, special=False)
    assert asked is not None and continued_asked == asked + len(added)


async def prompt_tokens(backend: LlamaCppBackend, messages: list[ChatMessage]) -> int | None:
    done = [event async for event in backend.stream_chat(messages, GREEDY) if isinstance(event, ReplyDone)]
    return done[0].stats.prompt_tokens


NO_SYSTEM_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{{ '<start_of_turn>' + message['role'] + '\\n' + message['content'] + '<end_of_turn>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
"""As Gemma 2's and Mistral's own templates: a system message is an error."""


async def test_a_template_that_refuses_a_system_message_gets_the_system_prompt_in_the_first_one(
    backend: LlamaCppBackend, tmp_path: Path
) -> None:
    # With a system prompt set, every reply failed: "System role not supported".
    model = write_tiny_gguf(tmp_path / "no-system.gguf", TinyModelSpec(chat_template=NO_SYSTEM_TEMPLATE))
    loaded = await backend.load(LoadSettings(model=str(model)))
    assert any("takes no system message" in note for note in loaded.notes), loaded.notes
    done: ReplyDone | None = None
    async for event in backend.stream_chat(
        [ChatMessage("system", "Be brief."), ChatMessage("user", "hi")], GREEDY
    ):
        if isinstance(event, ReplyDone):
            done = event
    assert done is not None and done.stats.gen_tokens > 0


async def test_a_chat_template_that_cannot_be_read_or_run_is_named_and_the_worker_lives(
    backend: LlamaCppBackend, tmp_path: Path
) -> None:
    # Its exception ended the worker: "llama.cpp was aborted [SIGABRT] … Fatal Python error",
    # taken at load for a repack crash, and at each reply a restart and the same crash.
    unreadable = write_tiny_gguf(
        tmp_path / "unreadable.gguf", TinyModelSpec(chat_template="{% unknowntag %}")
    )
    with pytest.raises(BackendError, match="the model's chat template failed: TemplateSyntaxError"):
        await backend.load(LoadSettings(model=str(unreadable)))
    failing = write_tiny_gguf(
        tmp_path / "failing.gguf",
        TinyModelSpec(chat_template="{% for m in messages %}{{ m.content + 1 }}{% endfor %}"),
    )
    await backend.load(LoadSettings(model=str(failing)))
    workers = backend.process_ids()
    for _ in range(2):
        with pytest.raises(BackendError, match="TypeError"):
            async for _event in backend.stream_chat([ChatMessage("user", "hi")], GREEDY):
                pass
    assert backend.process_ids() == workers  # the same worker answered both

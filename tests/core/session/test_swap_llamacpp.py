"""Swaps on the llama.cpp backend: real worker processes, real GGUF files."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from gguf_factory import TinyModelSpec, write_tiny_gguf
from slow_worker import slow_loading_python
from swap_support import ENDLESS, Factory, Phases, ask

from lollma_tui.core.backends.base import (
    Backend,
    BackendCrashedError,
    BackendState,
    ChatMessage,
    ReplyDone,
    TextDelta,
)
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.models.fit import FitParams, estimate_memory
from lollma_tui.core.models.gguf_header import read_gguf_header
from lollma_tui.core.session import MemoryBudget, ModelSession, SwapInProgressError
from lollma_tui.core.session.plan import CPU_ONLY_BUILD_NOTE
from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings

GiB = 1 << 30
MiB = 1 << 20

MakeSession = Callable[..., ModelSession]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_quant_swap_loads_the_other_file_in_a_new_worker(
    make_session: MakeSession, llama_only: Factory, tiny_f16: Path
) -> None:
    session = make_session(llama_only, LoadSettings(model=str(tiny_f16), n_ctx=512))
    first = await session.load()
    assert first.ok and first.loaded is not None and first.loaded.quant == "F16"
    (old_pid,) = session.process_ids()

    variants = await session.quant_variants()
    assert sorted(v.quant for v in variants) == ["F16", "Q8_0"]
    target = await session.settings_for_quant("q8_0")
    assert Path(target.model).name == "tiny-llama-Q8_0.gguf"

    phases = Phases()
    swap = asyncio.create_task(session.swap(target, progress=phases))
    await asyncio.sleep(0)  # the swap has taken its lock
    assert session.swapping
    with pytest.raises(SwapInProgressError):
        await ask(session)
    result = await swap
    assert not session.swapping
    assert result.ok and result.reloaded and not result.rolled_back
    assert result.loaded is not None and result.loaded.quant == "Q8_0"
    assert session.loaded == result.loaded and session.settings == target
    assert phases.names == ["estimating", "unloading", "loading", "done"]
    assert all(p.message for p in phases.heard)
    assert "Q8_0" in result.message
    assert result.timings.load_s > 0 and result.timings.total_s >= result.timings.load_s
    (new_pid,) = session.process_ids()
    assert new_pid != old_pid and not alive(old_pid)

    text, done = await ask(session)
    assert text and done.stats.setup.quant == "Q8_0"


async def test_a_change_that_needs_no_reload_keeps_the_worker(
    make_session: MakeSession, llama_only: Factory, tiny_f16: Path
) -> None:
    session = make_session(llama_only, LoadSettings(model=str(tiny_f16), n_ctx=512))
    await session.load()
    (pid,) = session.process_ids()
    result = await session.swap(session.settings.with_changes(keep_alive="30m"))
    assert result.ok and not result.reloaded
    assert session.process_ids() == (pid,)
    assert session.settings.keep_alive == "30m"

    bigger = await session.swap(session.settings.with_changes(n_ctx=1024))
    assert bigger.ok and bigger.reloaded and bigger.loaded is not None and bigger.loaded.n_ctx == 1024
    assert session.process_ids() != (pid,)


async def test_failed_load_rolls_back_to_the_previous_model(
    make_session: MakeSession, llama_only: Factory, tiny_f16: Path, tiny_q8: Path, corrupt_gguf: Path
) -> None:
    session = make_session(llama_only, LoadSettings(model=str(tiny_f16), n_ctx=512))
    await session.load()
    before = session.settings

    refused = await session.swap(before.with_changes(model=str(corrupt_gguf)))
    # The header reader already sees the damage: refused before anything is touched.
    assert refused.refused and not refused.ok and "corrupt.gguf" in refused.message
    assert "tensor data past the end" in refused.message

    phases = Phases()
    result = await session.swap(before.with_changes(model=str(corrupt_gguf)), force=True, progress=phases)
    assert not result.ok and result.rolled_back and not result.rollback_failed
    assert result.message.startswith("Could not load corrupt.gguf")
    assert result.message.endswith("— back on tiny-llama")
    assert result.error and "corrupt.gguf" in result.error
    assert "rolling back" in phases.names and phases.names[-1] == "done"
    assert session.settings == before
    assert session.loaded is not None and session.loaded.quant == "F16"
    assert session.backend.status.state is BackendState.READY
    text, done = await ask(session)
    assert text and done.finish_reason in ("stop", "length")

    # A sound file with settings llama.cpp rejects: refused up front, rolled back when forced.
    rejected = before.with_changes(model=str(tiny_q8), kv_cache_type="q8_0")
    refused = await session.swap(rejected)
    assert refused.refused and "flash" in refused.message
    again = await session.swap(rejected, force=True)
    assert again.rolled_back and "flash_attn" in again.message and "back on tiny-llama" in again.message
    assert session.loaded is not None and session.loaded.quant == "F16"


async def test_a_failed_swap_while_the_worker_is_down_goes_back_to_the_model_in_use(
    make_session: MakeSession, llama_only: Factory, tiny_f16: Path, tmp_path: Path
) -> None:
    # After a crash (or a stop that had to kill the worker) the model is loaded again only at the
    # next message. A swap meanwhile that fails must go back to that model, not leave none.
    session = make_session(llama_only, LoadSettings(model=str(tiny_f16), n_ctx=512))
    await session.load()
    before = session.settings
    (pid,) = session.process_ids()
    with pytest.raises(BackendCrashedError):
        async for event in session.stream_chat([ChatMessage("user", "hello")], ENDLESS):
            if isinstance(event, TextDelta):
                os.kill(pid, signal.SIGKILL)
    assert session.loaded is None
    unknown = write_tiny_gguf(tmp_path / "newarch.gguf", TinyModelSpec(architecture="qwen9next"))

    result = await session.swap(before.with_changes(model=str(unknown)))
    assert not result.ok and result.rolled_back, result.message
    assert result.message.endswith("— back on tiny-llama")
    assert session.settings == before
    assert session.loaded is not None and session.loaded.settings.model == str(tiny_f16)
    text, _ = await ask(session)
    assert text


async def test_rollback_failure_reports_both_errors(
    make_session: MakeSession, llama_only: Factory, movable_gguf: Path, corrupt_gguf: Path
) -> None:
    session = make_session(llama_only, LoadSettings(model=str(movable_gguf), n_ctx=512))
    await session.load()
    before = session.settings
    movable_gguf.unlink()

    result = await session.swap(before.with_changes(model=str(corrupt_gguf)), force=True)
    assert not result.ok and result.rollback_failed and not result.rolled_back
    assert result.message.startswith("Could not load corrupt.gguf")
    assert "— and tiny-llama could not be reloaded either:" in result.message
    assert result.rollback_error is not None and "not found" in result.rollback_error
    assert result.loaded is None and session.loaded is None
    assert session.process_ids() == ()
    assert session.settings == before  # what the user had, ready for another try


@pytest.mark.parametrize("through", ["session", "backend"])
async def test_swap_during_a_reply_stops_it_first(
    make_session: MakeSession, llama_only: Factory, tiny_f16: Path, through: str
) -> None:
    session = make_session(llama_only, LoadSettings(model=str(tiny_f16), n_ctx=512))
    await session.load()
    order: list[str] = []
    first_text = asyncio.Event()

    async def reply() -> ReplyDone:
        messages = [ChatMessage("user", "go on forever")]
        # The app may stream from the session or straight from the backend: both must stop.
        stream = (
            session.stream_chat(messages, ENDLESS)
            if through == "session"
            else session.backend.stream_chat(messages, ENDLESS)
        )
        done: ReplyDone | None = None
        async for event in stream:
            if isinstance(event, TextDelta):
                first_text.set()
            elif isinstance(event, ReplyDone):
                done = event
                order.append("reply ended")
        assert done is not None
        return done

    task = asyncio.create_task(reply())
    await asyncio.wait_for(first_text.wait(), 30)
    assert session.replying

    def heard(progress: object) -> None:
        order.append(str(progress.phase))  # type: ignore[attr-defined]

    result = await session.swap(session.settings.with_changes(n_ctx=1024), progress=heard)
    done = await task
    assert done.finish_reason == "cancelled"
    assert done.stats.gen_tokens < ENDLESS.max_tokens  # type: ignore[operator]
    assert result.ok and result.stopped_reply
    assert result.loaded is not None and result.loaded.n_ctx == 1024
    assert order.index("stopping reply") < order.index("reply ended") < order.index("loading")
    assert not session.replying
    text, _ = await ask(session)
    assert text


async def test_auto_gpu_layers_resolve_against_the_budget(
    make_session: MakeSession, llama_only: Factory, tiny_f16: Path
) -> None:
    n_layer = read_gguf_header(tiny_f16).block_count
    plenty = MemoryBudget(free_ram=64 * GiB, free_vram=None)
    session = make_session(llama_only, LoadSettings(model=str(tiny_f16), n_ctx=512, n_gpu_layers=AUTO))
    cpu = await session.load(budget=plenty)
    assert cpu.ok and cpu.loaded is not None
    assert cpu.loaded.settings.n_gpu_layers == 0  # no GPU in the budget → 0
    assert session.settings.n_gpu_layers == AUTO  # what the user asked for is kept
    assert any("auto GPU layers → 0" in note for note in cpu.notes)

    # A fresh session (build capability unknown) and a large fake free VRAM: every layer.
    fresh = make_session(llama_only, LoadSettings(model=str(tiny_f16), n_ctx=512, n_gpu_layers=AUTO))
    gpu = await fresh.load(budget=MemoryBudget(free_ram=64 * GiB, free_vram=64 * GiB))
    assert gpu.ok and gpu.loaded is not None
    assert gpu.loaded.settings.n_gpu_layers == n_layer + 1
    if gpu.loaded.gpu_offload_supported:
        assert gpu.loaded.n_gpu_layers == n_layer + 1
    else:
        # This CPU build places nothing on a GPU, says so, and is not treated as a failure.
        assert gpu.loaded.n_gpu_layers == 0
        assert CPU_ONLY_BUILD_NOTE in gpu.notes
        assert fresh.gpu_offload_supported is False
        again = await fresh.swap(
            fresh.settings.with_changes(n_ctx=1024), budget=MemoryBudget(64 * GiB, 64 * GiB)
        )
        assert again.loaded is not None and again.loaded.settings.n_gpu_layers == 0


async def test_gpu_layers_asked_of_a_cpu_only_build_reload_nothing(
    make_session: MakeSession, llama_only: Factory, tiny_f16: Path
) -> None:
    budget = MemoryBudget(free_ram=64 * GiB, free_vram=64 * GiB)
    session = make_session(llama_only, LoadSettings(model=str(tiny_f16), n_ctx=512, n_gpu_layers=0))
    first = await session.load(budget=budget)
    assert first.ok and first.loaded is not None
    heard = Phases()
    result = await session.swap(session.settings.with_changes(n_gpu_layers=-1), budget=budget, progress=heard)
    assert result.ok and session.settings.n_gpu_layers == -1
    if first.loaded.gpu_offload_supported:
        assert result.loaded is not None and result.loaded.n_gpu_layers > 0
    else:
        # Every layer would run on the CPU again: the same model stays, and the user is told why.
        assert result.loaded is first.loaded and "loading" not in heard.names
        assert CPU_ONLY_BUILD_NOTE in result.notes


async def test_a_reload_refused_because_the_loaded_file_was_damaged_says_the_model_in_use_may_fail(
    make_session: MakeSession, llama_only: Factory, tiny_f16: Path, tmp_path: Path
) -> None:
    # Cut short under the loaded model, the file was refused for /ctx, "still on tiny-llama",
    # and nothing said that the model in use was now reading a damaged file.
    model = Path(shutil.copy(tiny_f16, tmp_path / "tiny-llama-F16.gguf"))
    session = make_session(llama_only, LoadSettings(model=str(model), n_ctx=512))
    await session.load()
    other = Path(shutil.copy(tiny_f16, tmp_path / "other-F16.gguf"))
    with model.open("r+b") as cut:
        cut.truncate(model.stat().st_size // 2)
    result = await session.swap(session.settings.with_changes(n_ctx=1024))
    assert result.refused and "still on tiny-llama, loaded before its file changed" in result.message
    # Another file that is damaged says nothing about the model in use.
    with other.open("r+b") as cut:
        cut.truncate(other.stat().st_size // 2)
    result = await session.swap(session.settings.with_changes(model=str(other)))
    assert result.refused and "still on tiny-llama" in result.message
    assert "file changed" not in result.message


async def test_refused_when_ram_is_short_and_the_old_model_stays(
    make_session: MakeSession, llama_only: Factory, tiny_f16: Path
) -> None:
    session = make_session(llama_only, LoadSettings(model=str(tiny_f16), n_ctx=512))
    await session.load()
    (pid,) = session.process_ids()
    target = session.settings.with_changes(n_ctx=4096)
    tiny_ram = MemoryBudget(free_ram=1 * MiB, free_vram=None)
    phases = Phases()
    result = await session.swap(target, budget=tiny_ram, progress=phases)
    assert result.refused and not result.ok and not result.reloaded
    assert "RAM short by" in result.message and "still on tiny-llama" in result.message
    assert phases.names == ["estimating", "done"]
    assert session.process_ids() == (pid,) and session.settings.n_ctx == 512
    assert result.plan is not None and result.plan.estimate is not None
    needed = estimate_memory(read_gguf_header(tiny_f16), FitParams.from_settings(target)).ram_total
    assert needed > tiny_ram.free_ram  # type: ignore[operator]
    text, _ = await ask(session)
    assert text

    # The memory the current model gives back counts: too little free RAM on its own, enough
    # with what unloading the old worker frees.
    header = read_gguf_header(tiny_f16)
    old = estimate_memory(header, FitParams.from_settings(session.settings))
    new = estimate_memory(header, FitParams.from_settings(session.settings.with_changes(n_ctx=768)))
    freed = old.ram_total - old.cpu_weights_mapped
    budget = MemoryBudget(free_ram=new.ram_total - freed + MiB)
    assert budget.free_ram is not None and budget.free_ram < new.ram_total
    credited = await session.swap(session.settings.with_changes(n_ctx=768), budget=budget)
    assert credited.ok and credited.reloaded

    forced = await session.swap(target, budget=tiny_ram, force=True)
    assert forced.ok and forced.loaded is not None and forced.loaded.n_ctx == 4096
    assert any(note.startswith("loaded anyway (forced): does not fit") for note in forced.notes)


async def test_a_projector_or_an_incomplete_split_model_is_refused_before_the_model_in_use_goes(
    make_session: MakeSession, llama_only: Factory, tiny_f16: Path, tmp_path: Path
) -> None:
    # The worker was stopped, llama.cpp refused the file ("CLIP cannot be used as main model",
    # "failed to load GGUF split"), and the old model loaded again.
    from gguf_model_writer import ModelSpec, write_model

    session = make_session(llama_only, LoadSettings(model=str(tiny_f16), n_ctx=512))
    await session.load()
    (pid,) = session.process_ids()
    (projector,) = write_model(tmp_path / "mmproj-tiny-f16.gguf", ModelSpec(arch="clip"))
    parts = write_model(tmp_path / "halfsplit.gguf", ModelSpec(name="Half", split_max_tensors=6))
    assert len(parts) >= 3
    parts[-1].unlink()
    for target, why in (
        (projector, "a vision projector (mmproj), not a chat model"),
        (parts[0], f"part {len(parts)} of {len(parts)}: "),
    ):
        phases = Phases()
        result = await session.swap(session.settings.with_changes(model=str(target)), progress=phases)
        assert not result.ok and why in result.message, result.message
        assert phases.names == ["estimating", "done"]
        assert session.process_ids() == (pid,)
    text, _ = await ask(session)
    assert text


async def test_closing_during_a_long_swap_ends_it_and_loads_nothing_back(
    make_session: MakeSession, tmp_path: Path, tiny_f16: Path
) -> None:
    # Quitting lollma-tui while a big file loads: the load ends now, and the model before it
    # is not loaded again on the way out.
    slow = Path(shutil.copyfile(tiny_f16, tmp_path / "slow-tiny-F16.gguf"))
    python = slow_loading_python(tmp_path, 60, marker="slow-tiny")
    started: list[LlamaCppBackend] = []

    def factory(kind: BackendKind) -> Backend:
        started.append(LlamaCppBackend(log_path=tmp_path / "llama.log", python=python))
        return started[-1]

    session = make_session(factory, LoadSettings(model=str(tiny_f16), n_ctx=512))
    await session.load()
    swap = asyncio.create_task(session.swap(session.settings.with_changes(model=str(slow))))
    for _ in range(600):
        if session.backend.status.state is BackendState.LOADING and session.backend.process_ids():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    pids = session.backend.process_ids()
    began = asyncio.get_running_loop().time()
    await session.close()
    result = await swap
    assert asyncio.get_running_loop().time() - began < 5
    assert not result.ok and not result.rolled_back and session.loaded is None
    assert not any(alive(pid) for pid in pids) and not started[0].process_ids()

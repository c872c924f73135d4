"""Worker processes stay under the app's control: what runs in them, how long lines and silent
workers are handled, and that none outlives the app however it dies."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from gguf_factory import SLOW_PREFILL_SPEC, TinyModelSpec, write_tiny_gguf

from lollma_tui.core.backends.base import ModelLoadError
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.bench import BenchSession, SweepSpec, plan_sweep
from lollma_tui.core.models.quantize import plan_quantization, quantize_async, remove_stale_partials
from lollma_tui.core.settings import LoadSettings
from lollma_tui.core.workers.process import WorkerExited, WorkerProcess
from lollma_tui.core.workers.wire import MAX_LINE_BYTES

SUPPORT = Path(__file__).resolve().parents[2] / "support"


async def test_modules_in_the_current_folder_never_run_in_a_worker(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    marker = tmp_path / "ran"
    for name in ("argparse", "llama_cpp", "json", "lollma_tui"):
        (folder / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write({name!r})\n")
    monkeypatch.chdir(folder)
    backend = LlamaCppBackend(log_path=tmp_path / "llama.log", keep_spare=False)
    try:
        loaded = await backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=256))
        (pid,) = backend.process_ids()
        # The worker runs in a folder of ours, not the user's.
        assert Path(psutil.Process(pid).cwd()) != folder
    finally:
        await backend.close()
    assert loaded.name == "tiny-llama"
    assert not marker.exists()


async def test_a_megabyte_model_name_loads(tmp_path: Path) -> None:
    # The loaded event carries the GGUF's general.name; at 1 MiB it is far past asyncio's
    # default 64 KiB line limit, where the load used to wait forever.
    name = "n" * (1 << 20)
    model = write_tiny_gguf(tmp_path / "long-name.gguf", TinyModelSpec(name=name, n_embd=64, n_ff=128))
    backend = LlamaCppBackend(log_path=tmp_path / "llama.log", keep_spare=False)
    try:
        loaded = await backend.load(LoadSettings(model=str(model), n_ctx=256))
    finally:
        await backend.close()
    assert loaded.name == name


async def test_a_line_over_the_limit_kills_the_worker_with_a_reason(tmp_path: Path) -> None:
    worker = await WorkerProcess.start(
        "flood_worker", name="test worker", log_path=tmp_path / "w.log", env={"PYTHONPATH": str(SUPPORT)}
    )
    with pytest.raises(WorkerExited) as caught:
        await worker.next_event(timeout_s=60)
    assert f"sent a line longer than {MAX_LINE_BYTES} bytes" in str(caught.value)
    assert not worker.alive
    await worker.kill()


async def test_a_load_that_does_not_answer_in_time_is_stopped(tmp_path: Path, slow_gguf: Path) -> None:
    backend = LlamaCppBackend(log_path=tmp_path / "llama.log", keep_spare=False, load_timeout_s=0.05)
    try:
        with pytest.raises(ModelLoadError, match=r"did not answer within 0 s while loading tiny-slow"):
            await backend.load(LoadSettings(model=str(slow_gguf), n_ctx=8192, n_threads=1))
        assert backend.process_ids() == ()
    finally:
        await backend.close()


_QUANTIZING_PARENT = """
import asyncio, sys
from pathlib import Path
from lollma_tui.core.models.quantize import plan_quantization, quantize_async
plan = plan_quantization(Path(sys.argv[1]), "Q4_K_M", output_dir=Path(sys.argv[2]))
asyncio.run(quantize_async(plan, threads=1, log_path=Path(sys.argv[3])))
"""


def _worker_of(parent: psutil.Process, module: str, within: float = 60) -> psutil.Process:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for child in parent.children():
            if module in " ".join(child.cmdline()):
                return child
        time.sleep(0.05)
    raise AssertionError(f"no {module} child appeared")


@pytest.fixture(scope="session")
def long_quantize_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 5 s to quantize on one thread: a worker that outlived the app would still be busy."""
    spec = replace(SLOW_PREFILL_SPEC, n_layer=12, name="tiny-long")
    return write_tiny_gguf(tmp_path_factory.mktemp("long") / "tiny-long-f16.gguf", spec)


def _ended_within(process: psutil.Process, seconds: float) -> bool:
    """Dead, whether or not the orphan has been reaped yet (a zombie has stopped running)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def test_kill_9_of_the_app_during_a_quantize_leaves_nothing(long_quantize_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    source = long_quantize_gguf
    log = tmp_path / "q.log"
    app = subprocess.Popen([sys.executable, "-c", _QUANTIZING_PARENT, str(source), str(out), str(log)])
    try:
        worker = _worker_of(psutil.Process(app.pid), "quantize_worker")
        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".partial") for p in out.iterdir()):
            assert time.monotonic() < deadline, "the worker never started writing"
            time.sleep(0.05)
        os.kill(app.pid, signal.SIGKILL)
        app.wait(timeout=10)
        # The worker does not go on writing a file nobody will finish: it ends with the app.
        assert _ended_within(worker, 1.0)
    finally:
        if app.poll() is None:
            app.kill()
    # The next start removes what the killed run left.
    plan = plan_quantization(source, "Q4_K_M", output_dir=out)
    removed = remove_stale_partials(plan.output.parent)
    assert len(removed) == 1 and list(out.iterdir()) == []


_BENCHING_PARENT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from lollma_tui.core.bench.worker_client import start_bench_worker
    async def main():
        worker = await start_bench_worker(Path(sys.argv[1]))
        await asyncio.sleep(600)
    asyncio.run(main())
    """
)


def test_kill_9_of_the_app_ends_its_bench_worker(tmp_path: Path) -> None:
    app = subprocess.Popen([sys.executable, "-c", _BENCHING_PARENT, str(tmp_path / "bench.log")])
    try:
        worker = _worker_of(psutil.Process(app.pid), "bench_worker")
        os.kill(app.pid, signal.SIGKILL)
        app.wait(timeout=10)
        assert _ended_within(worker, 1.0)
    finally:
        if app.poll() is None:
            app.kill()


async def test_paths_relative_to_the_users_folder_reach_every_worker(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Workers run in a folder of ours (above): a relative path must be made whole before it
    # goes to one, or the model is "not found" though it is right there.
    folder = tmp_path / "project"
    (folder / "out").mkdir(parents=True)
    shutil.copyfile(tiny_gguf, folder / "tiny.gguf")
    monkeypatch.chdir(folder)

    backend = LlamaCppBackend(log_path=tmp_path / "llama.log", keep_spare=False)
    try:
        loaded = await backend.load(LoadSettings(model="tiny.gguf", n_ctx=256, n_threads=1))
    finally:
        await backend.close()
    assert loaded.settings.model == str(folder / "tiny.gguf")

    plan = plan_quantization("tiny.gguf", "Q8_0", output_dir="out")
    result = await quantize_async(plan, log_path=tmp_path / "quantize.log")
    assert result.output == folder / "out" / "tiny-Q8_0.gguf" and result.output.is_file()

    spec = SweepSpec(
        models=("tiny.gguf",), threads=(1,), n_prompt=(0,), n_gen=(4,), repetitions=1, chat=False
    )
    plan_ = await plan_sweep(spec, search_dirs=())
    run = await BenchSession(plan_, log_path=tmp_path / "bench.log").run()
    assert not run.failures and [r.model_filename for r in run.records] == [str(folder / "tiny.gguf")]

"""Quantizing the tiny model with llama.cpp's quantizer in a worker process."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import threading
from collections import namedtuple
from dataclasses import replace
from pathlib import Path

import pytest
from gguf_factory import KQUANT_SPEC, write_tiny_gguf

from lollma_tui.core import paths
from lollma_tui.core.backends.base import ChatMessage, ReplyDone, TextDelta
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.models import quantize as quantize_module
from lollma_tui.core.models.catalog import scan_models
from lollma_tui.core.models.gguf_header import read_gguf_header
from lollma_tui.core.models.quant_types import FILE_TYPE_IDS
from lollma_tui.core.models.quantize import (
    QuantizeCancelled,
    QuantizeFailed,
    QuantizePlan,
    QuantizeProgress,
    QuantizeRefused,
    base_name,
    plan_quantization,
    plan_quantizations,
    quantize,
    quantize_async,
    space_needed,
)
from lollma_tui.core.settings import LoadSettings, SamplingSettings

DiskUsage = namedtuple("DiskUsage", "total used free")


def only_models_left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.endswith(".log"))


async def answer(path: Path, log: Path) -> str:
    backend = LlamaCppBackend(log_path=log)
    try:
        loaded = await backend.load(LoadSettings(model=str(path), n_ctx=256, n_threads=1))
        assert loaded.quant == read_gguf_header(path).quantization
        text, done = "", None
        sampling = SamplingSettings(temperature=0.0, seed=1, max_tokens=8)
        async for event in backend.stream_chat([ChatMessage("user", "hello")], sampling):
            if isinstance(event, TextDelta):
                text += event.text
            elif isinstance(event, ReplyDone):
                done = event
        assert done is not None and done.stats.gen_tokens > 0
        return text
    finally:
        await backend.close()


async def test_two_types_are_written_next_to_the_source_and_answer(source_copy: Path, tmp_path: Path) -> None:
    folder = source_copy.parent
    stale = folder / ".tiny-llama-Q8_0.gguf.999999999.partial"  # left by a run that was killed
    stale.write_bytes(b"half a model")
    plans = plan_quantizations(source_copy, ["Q8_0", "q4_k_m"])
    assert [p.output.name for p in plans] == ["tiny-llama-Q8_0.gguf", "tiny-llama-Q4_K_M.gguf"]
    progress: list[QuantizeProgress] = []
    log = tmp_path / "q.log"
    results = [await quantize_async(plan, on_progress=progress.append, log_path=log) for plan in plans]
    assert not stale.exists()
    assert only_models_left(folder) == [
        "tiny-llama-Q4_K_M.gguf",
        "tiny-llama-Q8_0.gguf",
        "tiny-llama-f16.gguf",
    ]

    source_size = source_copy.stat().st_size
    q8, q4 = (r.size_bytes for r in results)
    assert source_size > q8 > q4 > 0
    for plan, result in zip(plans, results, strict=True):
        header = read_gguf_header(result.output)
        assert header.file_type == FILE_TYPE_IDS[plan.target]
        assert header.quantization == plan.target
        assert result.size_bytes == pytest.approx(plan.estimated_bytes, rel=0.15)
    assert progress[-1].fraction == 1.0

    # The catalog groups the new files with the source straight away.
    (group,) = scan_models([folder]).groups
    assert set(group.quants) == {"F16", "Q8_0", "Q4_K_M"}

    for result in results:
        await answer(result.output, tmp_path / "llama.log")


async def test_a_split_source_is_quantized_into_one_file(tmp_path: Path) -> None:
    # Big F16/BF16 sources come split; they were refused ("merge it first"), though llama.cpp's
    # quantizer reads every part from the first.
    folder = tmp_path / "split"
    folder.mkdir()
    first = write_tiny_gguf(folder / "tiny-llama-F16.gguf", replace(KQUANT_SPEC, split_max_tensors=8))
    assert first.name == "tiny-llama-F16-00001-of-00003.gguf"
    whole = read_gguf_header(write_tiny_gguf(tmp_path / "whole-F16.gguf", KQUANT_SPEC))
    plan = plan_quantization(first, "Q8_0")
    assert plan.output == folder / "tiny-llama-Q8_0.gguf"
    result = await quantize_async(plan, log_path=tmp_path / "q.log")
    assert read_gguf_header(result.output).tensor_count == whole.tensor_count
    assert result.size_bytes == pytest.approx(plan.estimated_bytes, rel=0.15)
    await answer(result.output, tmp_path / "llama.log")
    # Any other part, or a part short, is refused with the reason.
    with pytest.raises(QuantizeRefused, match="quantize from its first part"):
        plan_quantization(folder / "tiny-llama-F16-00002-of-00003.gguf", "Q4_K_M")
    (folder / "tiny-llama-F16-00003-of-00003.gguf").unlink()
    with pytest.raises(QuantizeRefused, match=r"missing tiny-llama-F16-00003-of-00003\.gguf"):
        plan_quantization(first, "Q4_K_M")


def test_output_names_drop_the_source_quant_word() -> None:
    assert base_name(Path("tiny-llama-f16.gguf")) == "tiny-llama"
    assert base_name(Path("Llama-3.2-1B-Instruct.BF16.gguf")) == "Llama-3.2-1B-Instruct"
    assert base_name(Path("gemma-3-270m-it-fp16.gguf")) == "gemma-3-270m-it"
    assert base_name(Path("model.gguf")) == "model"


@pytest.mark.parametrize("target", ["IQ2_XXS", "IQ1_S", "IQ3_XXS", "Q2_K_S", "iq2_xs"])
def test_i_quants_that_need_an_importance_matrix_are_refused(source_copy: Path, target: str) -> None:
    with pytest.raises(QuantizeRefused, match="importance matrix"):
        plan_quantization(source_copy, target)


def test_unknown_same_and_unoffered_types_are_refused(source_copy: Path) -> None:
    with pytest.raises(QuantizeRefused, match="unknown quantization type 'Q9_X'"):
        plan_quantization(source_copy, "Q9_X")
    with pytest.raises(QuantizeRefused, match="already F16"):
        plan_quantization(source_copy, "F16")
    with pytest.raises(QuantizeRefused, match="not offered"):
        plan_quantization(source_copy, "TQ1_0")


def test_bad_sources_and_existing_outputs_are_refused(source_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantizeRefused, match="source not found"):
        plan_quantization(tmp_path / "missing.gguf", "Q8_0")
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a gguf" * 100)
    with pytest.raises(QuantizeRefused, match="not a GGUF file"):
        plan_quantization(garbage, "Q8_0")
    (source_copy.parent / "tiny-llama-Q8_0.gguf").write_bytes(b"someone else's file")
    with pytest.raises(QuantizeRefused, match="already exists"):
        plan_quantization(source_copy, "Q8_0")
    # --output-dir naming a file said "output folder not found", though it was there.
    with pytest.raises(QuantizeRefused, match=r"^not a folder: .*garbage\.gguf"):
        plan_quantization(source_copy, "Q4_0", output_dir=garbage)
    with pytest.raises(QuantizeRefused, match=r"^output folder not found: .*nowhere"):
        plan_quantization(source_copy, "Q4_0", output_dir=tmp_path / "nowhere")


def test_an_output_already_there_in_other_letter_case_is_refused(source_copy: Path) -> None:
    # Qwen names its files in lower case: "…-q4_k_m.gguf" was not seen, a "…-Q4_K_M.gguf" was
    # written beside it, and the model list then held two Q4_K_M files of one model.
    source = source_copy.rename(source_copy.with_name("qwen2.5-0.5b-instruct-fp16.gguf"))
    theirs = source.with_name("qwen2.5-0.5b-instruct-q4_k_m.gguf")
    theirs.write_bytes(b"the download")
    assert plan_quantization(source, "Q8_0").output.name == "qwen2.5-0.5b-instruct-Q8_0.gguf"
    with pytest.raises(QuantizeRefused, match=f"{theirs.name} already exists"):
        plan_quantization(source, "Q4_K_M")


def test_files_of_a_source_in_a_place_not_to_keep_them_go_to_the_app_s_models_folder(
    source_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = paths.data_dir() / "models"
    assert not ours.exists()
    # A user's own folder: next to the source, where the model list groups the files with it.
    assert plan_quantization(source_copy, "Q8_0").output == source_copy.parent / "tiny-llama-Q8_0.gguf"
    # Ollama's blob store: a blob is named after its hash, and Ollama deletes files it does not
    # know. The file is named after the model instead.
    blob = tmp_path / "blobs" / "sha256-9f3c"
    blob.parent.mkdir()
    shutil.copyfile(source_copy, blob)
    assert plan_quantization(blob, "Q8_0").output == ours / "tiny-llama-Q8_0.gguf"
    assert ours.is_dir()
    # An installed package (the demo model), and the app's cache.
    with monkeypatch.context() as patched:
        patched.setattr(sys, "prefix", str(source_copy.parent))
        assert plan_quantization(source_copy, "Q4_0").output == ours / "tiny-llama-Q4_0.gguf"
    cached = paths.cache_dir() / "demo" / "tiny-llama-f16.gguf"
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source_copy, cached)
    assert plan_quantization(cached, "Q4_0").output == ours / "tiny-llama-Q4_0.gguf"
    # A named folder is taken as named.
    assert plan_quantization(blob, "Q8_0", output_dir=tmp_path).output == tmp_path / "tiny-llama-Q8_0.gguf"


def test_an_app_models_folder_that_cannot_be_made_is_a_refusal(
    source_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A blob goes to the app's models folder; here the data folder is a file, as a read-only
    # or root-owned one would be: a refusal the dialog shows, not a traceback.
    blob = tmp_path / "blobs" / "sha256-9f3c"
    blob.parent.mkdir()
    shutil.copyfile(source_copy, blob)
    (tmp_path / "data").write_text("not a folder")
    monkeypatch.setenv("LOLLMA_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(QuantizeRefused, match=r"cannot create .*data/models"):
        plan_quantization(blob, "Q8_0")


def test_an_already_quantized_source_needs_permission(quantized_models: Path, tmp_path: Path) -> None:
    q8 = quantized_models / "tiny-llama-Q8_0.gguf"
    with pytest.raises(QuantizeRefused, match=r"already quantized \(Q8_0\)"):
        plan_quantization(q8, "Q4_0", output_dir=tmp_path)
    plan = plan_quantization(q8, "Q4_0", output_dir=tmp_path, allow_requantize=True)
    assert any("stacks both quantization errors" in w for w in plan.warnings)
    result = quantize(plan, log_path=tmp_path / "q.log")
    assert read_gguf_header(result.output).quantization == "Q4_0"
    assert result.output.parent == tmp_path


def test_not_enough_disk_space_is_refused(source_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    estimate = plan_quantization(source_copy, "Q8_0").estimated_bytes
    asked: list[Path] = []

    def disk_usage(path: str | os.PathLike[str]) -> DiskUsage:
        asked.append(Path(path))
        return DiskUsage(total=1 << 40, used=(1 << 40) - estimate, free=estimate)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    with pytest.raises(QuantizeRefused, match="not enough disk space") as refused:
        plan_quantization(source_copy, "Q8_0")
    assert str(source_copy.parent) in str(refused.value)
    assert asked == [source_copy.parent]
    # Each file fits alone, but not the two together.
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(1 << 40, 0, 1 << 40))
    both = plan_quantizations(source_copy, ["Q4_K_M", "Q8_0"])
    free = space_needed(sum(p.estimated_bytes for p in both)) - 1
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(1 << 40, 0, free))
    plan_quantization(source_copy, "Q4_K_M")
    plan_quantization(source_copy, "Q8_0")
    with pytest.raises(QuantizeRefused, match="for 2 files"):
        plan_quantizations(source_copy, ["Q4_K_M", "Q8_0"])


def _slow_plan(slow_gguf: Path, folder: Path) -> QuantizePlan:
    # The 4-layer model on one thread takes a couple of seconds: time to interrupt it.
    return plan_quantization(slow_gguf, "Q4_K_M", output_dir=folder)


def test_a_killed_worker_leaves_no_partial_file(slow_gguf: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    killed: list[int] = []

    def kill_once_writing(progress: QuantizeProgress) -> None:
        if progress.bytes_written > 0 and not killed and progress.worker_pid:
            assert any(p.name.endswith(".partial") for p in folder.iterdir())
            os.kill(progress.worker_pid, signal.SIGKILL)
            killed.append(progress.worker_pid)

    with pytest.raises(QuantizeFailed, match="killed"):
        quantize(
            _slow_plan(slow_gguf, folder),
            on_progress=kill_once_writing,
            threads=1,
            log_path=tmp_path / "q.log",
        )
    assert killed
    assert list(folder.iterdir()) == []


def test_cancel_leaves_no_partial_file(slow_gguf: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    cancel = threading.Event()
    seen: list[int] = []

    def cancel_once_writing(progress: QuantizeProgress) -> None:
        if progress.bytes_written > 0:
            seen.append(progress.bytes_written)
            cancel.set()

    with pytest.raises(QuantizeCancelled):
        quantize(
            _slow_plan(slow_gguf, folder),
            on_progress=cancel_once_writing,
            cancel=cancel,
            threads=1,
            log_path=tmp_path / "q.log",
        )
    assert seen
    assert list(folder.iterdir()) == []


def test_a_failing_quantization_reports_llama_cpp_and_leaves_nothing(
    source_copy: Path, tmp_path: Path
) -> None:
    # Past the planner's checks (built by hand): llama.cpp itself refuses an i-quant without imatrix.
    plan = QuantizePlan(
        source=source_copy,
        source_quant="F16",
        target="IQ2_XXS",
        ftype=FILE_TYPE_IDS["IQ2_XXS"],
        output=source_copy.with_name("tiny-llama-IQ2_XXS.gguf"),
        estimated_bytes=1 << 20,
    )
    with pytest.raises(QuantizeFailed, match="imatrix"):
        quantize(plan, log_path=tmp_path / "q.log")
    assert only_models_left(source_copy.parent) == ["tiny-llama-f16.gguf"]


def test_stale_partials_of_live_processes_are_kept(tmp_path: Path) -> None:
    mine = tmp_path / f".model-Q8_0.gguf.{os.getpid()}.partial"
    gone = tmp_path / ".model-Q8_0.gguf.999999999.partial"
    mine.write_bytes(b"x")
    gone.write_bytes(b"x")
    assert quantize_module.remove_stale_partials(tmp_path) == [gone]
    assert mine.exists()


async def test_cancelling_the_async_task_stops_and_cleans_up(slow_gguf: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    writing = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_progress(progress: QuantizeProgress) -> None:
        if progress.bytes_written > 0:
            loop.call_soon_threadsafe(writing.set)

    task = asyncio.create_task(
        quantize_async(
            _slow_plan(slow_gguf, folder), on_progress=on_progress, threads=1, log_path=tmp_path / "q.log"
        )
    )
    await asyncio.wait_for(writing.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The clean-up has happened by the time the task is done.
    assert list(folder.iterdir()) == []

"""Benchmarks of the tiny model through real bench workers and the real chat backend."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import psutil
import pytest

from lollma_tui.core.bench import (
    LLAMA_BENCH_FIELDS,
    BenchProgress,
    BenchRun,
    BenchSession,
    ResultStore,
    SweepInputError,
    SweepSpec,
    compare_with_saved,
    format_records,
    plan_sweep,
)

DOCUMENTED_FIELDS = (
    *LLAMA_BENCH_FIELDS,
    "backend_impl",
    "test",
    "quant",
    "peak_rss_bytes",
    "peak_vram_bytes",
    "hardware",
    "fingerprint",
    "run_id",
)


def run_sweep(spec: SweepSpec, log_path: Path) -> tuple[BenchRun, list[BenchProgress]]:
    progress: list[BenchProgress] = []

    async def go() -> BenchRun:
        plan = await plan_sweep(spec, search_dirs=())
        return await BenchSession(plan, on_progress=progress.append, log_path=log_path).run()

    return asyncio.run(go()), progress


@pytest.fixture(scope="module")
def sweep(
    quantized_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BenchRun, list[BenchProgress]]:
    """2 quants × 2 thread counts × (0, auto, all, 99) GPU layers, one tg test, 3 repetitions."""
    spec = SweepSpec(
        models=(str(quantized_models / "tiny-llama-f16.gguf"),),
        quants=("Q8_0", "Q4_K_M"),
        gpu_layers=(0, "auto", -1, 99),
        threads=(1, 2),
        n_prompt=(0,),
        n_gen=(8,),
        repetitions=3,
        chat=False,
    )
    return run_sweep(spec, tmp_path_factory.mktemp("logs") / "bench.log")


def test_two_quants_by_two_thread_counts_give_four_rows(sweep: tuple[BenchRun, list[BenchProgress]]) -> None:
    run, _ = sweep
    assert not run.failures and not run.cancelled
    assert len(run.records) == 4
    assert {(r.quant, r.n_threads) for r in run.records} == {
        ("Q8_0", 1),
        ("Q8_0", 2),
        ("Q4_K_M", 1),
        ("Q4_K_M", 2),
    }
    # "auto", all (-1) and 99 are 0 on this CPU-only build: none was measured twice.
    assert {r.n_gpu_layers for r in run.records} == {0}
    for asked in ("auto", "all", "99"):  # -1 is said "all", as --ngl takes it
        assert any(
            f"ngl {asked} · 1 thread is" in note and "is tiny-llama Q8_0 · ngl 0 · 1 thread here" in note
            for note in run.notes
        ), (asked, run.notes)
    # model_type is llama.cpp's own description of the file, as llama-bench reports it.
    assert {r.model_type for r in run.records} == {"llama ?B Q8_0", "llama ?B Q4_K - Medium"}
    assert all(r.test == "tg8" and r.n_prompt == 0 and r.n_gen == 8 for r in run.records)


def test_json_has_the_documented_fields_and_positive_rates(
    sweep: tuple[BenchRun, list[BenchProgress]],
) -> None:
    run, _ = sweep
    rows = json.loads(format_records(run.records, "json"))
    for row in rows:
        missing = [f for f in DOCUMENTED_FIELDS if f not in row]
        assert not missing
        assert row["backend_impl"] == "llama-cpp-python"
        assert row["build_commit"] and row["cpu_info"]
        assert row["backends"] == "CPU" and row["gpu_info"] == ""
        assert row["avg_ts"] > 0 and all(ts > 0 for ts in row["samples_ts"])
        assert row["model_size"] > 0 and row["model_n_params"] > 1_000_000
        assert row["peak_rss_bytes"] > 10 << 20
        assert row["hardware"]["ram_total_bytes"] > 0
        assert row["test_time"].endswith("Z")


def test_stddev_is_over_the_repetitions(sweep: tuple[BenchRun, list[BenchProgress]]) -> None:
    run, _ = sweep
    for row in run.records:
        assert row.repetitions == 3 and len(row.samples_ns) == 3
        assert row.samples_ts == pytest.approx([8e9 / ns for ns in row.samples_ns])
        assert row.avg_ts == pytest.approx(statistics.fmean(row.samples_ts))
        assert row.stddev_ts == pytest.approx(statistics.stdev(row.samples_ts))
        assert row.avg_ns == round(statistics.fmean(row.samples_ns))


def test_progress_counts_runs_and_hands_over_each_row(sweep: tuple[BenchRun, list[BenchProgress]]) -> None:
    run, progress = sweep
    assert [p.row for p in progress if p.row is not None] == list(run.records)
    counted = [p.done for p in progress]
    assert counted == sorted(counted)
    last = progress[-1]
    assert last.done == last.total == 12  # 4 measured configurations × 3 repetitions
    assert any(p.eta_s is not None and p.eta_s > 0 for p in progress)


def test_compare_against_a_saved_run(sweep: tuple[BenchRun, list[BenchProgress]], tmp_path: Path) -> None:
    run, _ = sweep
    store = ResultStore(tmp_path / "results.jsonl")
    earlier = [
        r.__class__.from_dict({**r.to_dict(), "run_id": "earlier", "avg_ts": r.avg_ts / 2})
        for r in run.records
    ]
    store.save(earlier)
    comparisons = compare_with_saved(run.records, store.load(fingerprint=run.fingerprint))
    assert all(c.previous is not None and c.previous.run_id == "earlier" for c in comparisons)
    assert [c.change for c in comparisons] == pytest.approx([1.0] * 4)


def test_depths_and_the_chat_test_through_the_real_backend(f16_source: Path, tmp_path: Path) -> None:
    spec = SweepSpec(
        models=(str(f16_source),),
        gpu_layers=(0,),
        threads=(2,),
        n_prompt=(32,),
        n_gen=(4,),
        n_depth=(0, 16),
        repetitions=2,
        chat=True,
        chat_tokens=6,
        question="explain quantum entanglement",
    )
    run, _ = run_sweep(spec, tmp_path / "bench.log")
    assert not run.failures
    assert [r.test for r in run.records] == ["pp32", "pp32 @ d16", "tg4", "tg4 @ d16", "chat"]
    depth_row = run.records[1]
    assert (depth_row.n_prompt, depth_row.n_depth) == (32, 16)
    chat = run.records[-1]
    assert chat.question == "explain quantum entanglement"
    assert chat.n_gen == 6 and chat.n_prompt > 5
    assert chat.avg_ts > 0 and len(chat.samples_ts) == 2
    assert chat.avg_ttft_ns is not None and chat.avg_ttft_ns > 0 and len(chat.samples_ttft_ns) == 2
    assert chat.n_batch == 512  # the app's own settings, not llama-bench's
    assert chat.peak_rss_bytes is not None and chat.peak_rss_bytes > 10 << 20


def _workers_started_since(when: float) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "create_time"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if "lollma_tui.core.bench.bench_worker" in cmdline and process.info["create_time"] >= when - 1:
            found.append(process)
    return found


def test_cancel_keeps_the_rows_measured_so_far_and_stops_the_worker(
    quantized_models: Path, tmp_path: Path
) -> None:
    started = time.time()
    spec = SweepSpec(
        models=(str(quantized_models / "tiny-llama-f16.gguf"),),
        quants="all",
        gpu_layers=(0,),
        threads=(1,),
        n_prompt=(0,),
        n_gen=(64,),
        repetitions=5,
        chat=False,
    )

    async def go() -> BenchRun:
        plan = await plan_sweep(spec, search_dirs=())
        assert len(plan.configurations) == 3

        def on_progress(progress: BenchProgress) -> None:
            if progress.row is not None:
                session.cancel()

        session = BenchSession(plan, on_progress=on_progress, log_path=tmp_path / "bench.log")
        return await session.run()

    run = asyncio.run(go())
    assert run.cancelled
    assert len(run.records) == 1 and run.records[0].avg_ts > 0
    assert not [p for p in _workers_started_since(started) if p.is_running() and p.status() != "zombie"]


def test_a_named_model_is_found_in_the_given_folders(quantized_models: Path) -> None:
    spec = SweepSpec(models=("tiny-llama",), quants="all", chat=False)
    plan = asyncio.run(plan_sweep(spec, search_dirs=[quantized_models]))
    assert sorted(c.model.quant for c in plan.configurations) == ["F16", "Q4_K_M", "Q8_0"]
    with pytest.raises(SweepInputError, match="comes in 3 quantizations"):
        asyncio.run(plan_sweep(SweepSpec(models=("tiny-llama",), chat=False), search_dirs=[quantized_models]))
    with pytest.raises(SweepInputError, match="has no Q5_K_S"):
        asyncio.run(
            plan_sweep(SweepSpec(models=("tiny-llama",), quants=("Q5_K_S",)), search_dirs=[quantized_models])
        )
    with pytest.raises(SweepInputError, match="model not found"):
        asyncio.run(plan_sweep(SweepSpec(models=("no-such-model",)), search_dirs=[quantized_models]))

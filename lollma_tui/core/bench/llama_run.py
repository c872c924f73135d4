"""One llama.cpp configuration: a fresh bench worker, its tests, one row per test."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from lollma_tui.core.bench import protocol as proto
from lollma_tui.core.bench.context import RunContext
from lollma_tui.core.bench.hardware_info import Peaks
from lollma_tui.core.bench.protocol import BenchRequest
from lollma_tui.core.bench.records import BenchRecord, bench_test_name
from lollma_tui.core.bench.stats import summarize
from lollma_tui.core.bench.sweep import Configuration, GpuLayersChoice, SweepSpec, gpu_layers_label
from lollma_tui.core.bench.worker_client import bench_events
from lollma_tui.core.models.fit import FitParams, FitStatus, auto_gpu_layers, check_fit
from lollma_tui.core.models.gguf_header import GGUFHeader
from lollma_tui.core.settings import AUTO
from lollma_tui.core.workers.process import WorkerProcess


@dataclass(frozen=True, slots=True)
class SystemInfo:
    """What a worker's hello says about the llama.cpp build."""

    llama_cpp_version: str
    build_commit: str
    gpu_offload: bool
    backends: str
    cpu_info: str
    gpu_info: str

    @classmethod
    def from_hello(cls, hello: dict[str, Any]) -> SystemInfo:
        return cls(
            llama_cpp_version=str(hello.get("llama_cpp_version") or ""),
            build_commit=str(hello.get("build_commit") or ""),
            gpu_offload=bool(hello.get("gpu_offload")),
            backends=str(hello.get("backends") or "CPU"),
            cpu_info=str(hello.get("cpu_info") or ""),
            gpu_info=str(hello.get("gpu_info") or ""),
        )

    @property
    def build_label(self) -> str:
        commit = self.build_commit or "unknown"
        return f"{commit} (llama-cpp-python {self.llama_cpp_version})"


_ESTIMATE_ERRORS = (ValueError, KeyError, IndexError, ArithmeticError, TypeError)


class ConfigSkipped(Exception):
    """The configuration was not run; the message says why."""


def fit_params(spec: SweepSpec, n_gpu_layers: int, n_ctx: int) -> FitParams:
    return FitParams(
        n_gpu_layers=n_gpu_layers,
        n_ctx=max(1, n_ctx),
        n_batch=min(spec.batch, max(1, n_ctx)),
        n_ubatch=spec.n_ubatch,
        kv_cache_type=spec.kv_cache_type,
        flash_attn=spec.flash_attn,
    )


def resolve_gpu_layers(
    choice: GpuLayersChoice,
    header: GGUFHeader | None,
    *,
    spec: SweepSpec,
    n_ctx: int,
    gpu_offload: bool,
    free_vram: int | None,
    free_ram: int | None,
) -> int:
    """The layer count to pass to llama.cpp; "auto" is the most the fit estimator lets fit."""
    if choice != AUTO:
        return int(choice)
    if not gpu_offload or header is None:
        return 0
    try:
        best = auto_gpu_layers(header, fit_params(spec, -1, n_ctx), free_vram, free_ram)
    except _ESTIMATE_ERRORS:
        # A model the estimator does not understand: llama.cpp may still; start on the CPU.
        return 0
    if best is None:
        raise ConfigSkipped("does not fit in free memory at any GPU layer count")
    return best


def offloaded_layers(n_gpu_layers: int, header: GGUFHeader | None, *, gpu_offload: bool) -> int:
    """The layers llama.cpp puts on the GPU for `n_gpu_layers`: none on a build that cannot
    offload, and no more than the model has (its blocks and the output layer), -1 meaning all."""
    if not gpu_offload:
        return 0
    every = header.block_count + 1 if header is not None and header.block_count else None
    if every is None:
        return n_gpu_layers
    return every if n_gpu_layers < 0 or n_gpu_layers > every else n_gpu_layers


def check_fits(
    header: GGUFHeader | None,
    *,
    spec: SweepSpec,
    n_gpu_layers: int,
    n_ctx: int,
    free_vram: int | None,
    free_ram: int | None,
) -> None:
    if header is None or not spec.check_fit:
        return
    try:
        verdict = check_fit(header, fit_params(spec, n_gpu_layers, n_ctx), free_vram, free_ram)
    except _ESTIMATE_ERRORS:
        return  # no estimate is no reason to refuse
    if verdict.status == FitStatus.DOES_NOT_FIT:
        raise ConfigSkipped(f"{verdict.message} (skip the check with --no-fit-check)")


def base_record(
    config: Configuration,
    request: BenchRequest,
    system: SystemInfo,
    loaded: dict[str, Any],
) -> BenchRecord:
    return BenchRecord(
        build_commit=system.build_commit,
        build_number=None,
        cpu_info=system.cpu_info,
        gpu_info=system.gpu_info,
        backends=system.backends,
        model_filename=config.model.ref,
        model_type=str(loaded.get("model_type") or ""),
        model_size=int(loaded.get("model_size") or 0),
        model_n_params=int(loaded.get("model_n_params") or 0),
        n_batch=request.n_batch,
        n_ubatch=request.n_ubatch,
        n_threads=request.n_threads,
        type_k=request.type_k,
        type_v=request.type_v,
        n_gpu_layers=request.n_gpu_layers,
        flash_attn=request.flash_attn,
        use_mmap=request.use_mmap,
        backend_impl="llama-cpp-python",
        llama_cpp_python_version=system.llama_cpp_version,
        model_name=config.model.name,
        quant=config.model.quant,
        n_layers=loaded.get("n_layers"),
        n_gpu_layers_requested=gpu_layers_label(config.gpu_layers),
        gpu_offload=system.gpu_offload,
        repack=bool(loaded.get("repacked", request.repack)),
    )


def with_peaks(record: BenchRecord, peaks: Peaks) -> BenchRecord:
    return replace(
        record,
        peak_rss_bytes=peaks.rss_bytes,
        peak_vram_bytes=peaks.vram_bytes,
        peak_ram_used_bytes=peaks.ram_used_bytes,
        peak_gpu_memory_used_bytes=peaks.gpu_memory_used_bytes,
    )


async def run_llama_configuration(
    ctx: RunContext,
    worker: WorkerProcess,
    config: Configuration,
    request: BenchRequest,
    system: SystemInfo,
    label: str,
) -> list[BenchRecord]:
    """Send `request` to a started worker and turn its events into rows; the caller stops it."""
    ctx.tracker.reset(ctx.latest)
    ctx.pids = (worker.pid,)
    await worker.send(request.to_wire())
    rows: list[BenchRecord] = []
    base: BenchRecord | None = None
    async for event in bench_events(worker):
        kind = event.get("ev")
        if kind == proto.EV_LOADED:
            base = base_record(config, request, system, event)
        elif kind == proto.EV_SAMPLE:
            test = request.tests[int(event["test"])]
            name = bench_test_name(test.n_prompt, test.n_gen, test.n_depth)
            ctx.step(f"{label} · {name} {int(event['rep']) + 1}/{request.repetitions}")
        elif kind == proto.EV_TEST_DONE:
            assert base is not None, "the worker reported a test before loading"
            test = request.tests[int(event["test"])]
            ctx.tracker.note_rss(event.get("peak_rss_bytes"))
            summary = summarize(event["samples_ns"], test.n_prompt + test.n_gen)
            record = replace(
                base,
                n_prompt=test.n_prompt,
                n_gen=test.n_gen,
                n_depth=test.n_depth,
                test=bench_test_name(test.n_prompt, test.n_gen, test.n_depth),
                test_time=str(event.get("test_time") or ""),
            ).with_summary(summary)
            rows.append(ctx.add_row(with_peaks(record, ctx.tracker.snapshot()), label))
        elif kind == proto.EV_DONE:
            ctx.tracker.note_rss(event.get("peak_rss_bytes"))
    return rows

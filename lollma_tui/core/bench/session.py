"""Run a planned sweep: one fresh worker per configuration, rows as they finish, a clean stop.

Typical use (the CLI and the TUI bench screen do this)::

    plan = await plan_sweep(SweepSpec(models=("gemma-3-270m",), quants="all", threads=(1, 2)))
    session = BenchSession(plan, on_progress=show)   # show(BenchProgress) on the event loop
    result = await session.run()                     # BenchRun, complete or stopped
    ...
    session.cancel()                                 # from the loop, at any time: run() returns
                                                     # the rows measured so far, cancelled=True
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from lollma_tui.core import paths
from lollma_tui.core.backends import repack
from lollma_tui.core.backends.base import BackendError, LoadedModel
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.bench.chat_run import ChatTestFailed, run_chat_test
from lollma_tui.core.bench.context import ProgressCallback, RunContext
from lollma_tui.core.bench.hardware_info import (
    HardwareInfo,
    PeakTracker,
    free_memory,
    hardware_from_snapshot,
    process_peak_rss,
)
from lollma_tui.core.bench.llama_run import (
    ConfigSkipped,
    SystemInfo,
    base_record,
    check_fits,
    offloaded_layers,
    resolve_gpu_layers,
    run_llama_configuration,
    with_peaks,
)
from lollma_tui.core.bench.ollama_run import OLLAMA_CAVEATS, OllamaRun, installed_models
from lollma_tui.core.bench.openai_run import OPENAI_CAVEATS, OpenAIRun, resolve_served, served_models
from lollma_tui.core.bench.protocol import BenchRequest
from lollma_tui.core.bench.records import BackendImpl, BenchRecord, utc_now
from lollma_tui.core.bench.sweep import (
    Configuration,
    SweepPlan,
    SweepSpec,
    plan_llama_sweep,
    plan_ollama_sweep,
    plan_openai_sweep,
    resolve_ollama_models,
)
from lollma_tui.core.bench.worker_client import WorkerFailed, start_bench_worker
from lollma_tui.core.hardware.sampler import HardwareSampler
from lollma_tui.core.hardware.snapshots import SystemSnapshot
from lollma_tui.core.hardware.source import HardwareSource
from lollma_tui.core.models.catalog import parameter_label
from lollma_tui.core.settings import BackendKind, LoadSettings
from lollma_tui.core.workers.process import WorkerProcess

T = TypeVar("T")

SAMPLE_INTERVAL_S = 0.25
"""The sampler's fastest rate: peaks of short runs are still caught (and getrusage backs it)."""


def bench_log_path() -> Path:
    return paths.log_dir() / "bench.log"


async def plan_sweep(spec: SweepSpec, *, search_dirs: Iterable[Path] | None = None) -> SweepPlan:
    """Resolve models and quant variants (SweepInputError for bad input; BackendError when the
    Ollama server cannot be asked)."""
    spec.validate()
    if spec.backend == BackendKind.OLLAMA:
        installed = await installed_models(spec.ollama_host)
        return plan_ollama_sweep(spec, resolve_ollama_models(spec, installed))
    if spec.backend == BackendKind.OPENAI:
        return plan_openai_sweep(spec, resolve_served(spec, await served_models(spec)))
    dirs = list(search_dirs) if search_dirs is not None else None
    return await asyncio.to_thread(plan_llama_sweep, spec, search_dirs=dirs)


@dataclass(frozen=True, slots=True)
class ConfigFailure:
    label: str
    reason: str


@dataclass(frozen=True, slots=True)
class BenchRun:
    run_id: str
    started_at: str
    backend_impl: BackendImpl
    spec: SweepSpec
    records: tuple[BenchRecord, ...]
    failures: tuple[ConfigFailure, ...]
    notes: tuple[str, ...]
    """Said while running: skipped configurations, GPU layer resolutions."""
    caveats: tuple[str, ...]
    """How to read these numbers (Ollama's differ from llama-bench's); show with the table."""
    hardware: HardwareInfo
    fingerprint: str
    build: str
    """llama.cpp build and llama-cpp-python version, or the Ollama version."""
    cancelled: bool


class _Stopped(Exception):
    pass


class BenchSession:
    def __init__(
        self,
        plan: SweepPlan,
        *,
        on_progress: ProgressCallback | None = None,
        log_path: Path | None = None,
        hardware_sources: Sequence[HardwareSource] | None = None,
        python: str | None = None,
    ) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.log_path = log_path or bench_log_path()
        self._on_progress = on_progress
        self._sources = hardware_sources
        self._python = python
        self._cancel = asyncio.Event()
        self._ctx: RunContext | None = None
        self._system: SystemInfo | None = None
        self._ollama_version = ""
        self._server_label = ""
        self._failures: list[ConfigFailure] = []
        self._measured: set[tuple[str, int, int | None, str]] = set()
        self._tracker = PeakTracker()

    # -- control -----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop soon (call on the event loop): the worker is killed, finished rows are kept."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def records(self) -> tuple[BenchRecord, ...]:
        return tuple(self._ctx.records) if self._ctx is not None else ()

    async def _guard(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable` unless a stop comes first; then cancel it and raise _Stopped."""
        task = asyncio.ensure_future(awaitable)
        if self._cancel.is_set():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise _Stopped
        stopper = asyncio.ensure_future(self._cancel.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            stopper.cancel()
        if task.cancelled():
            raise _Stopped
        return task.result()

    # -- running ----------------------------------------------------------------------------

    def _on_snapshot(self, snapshot: SystemSnapshot) -> None:
        # The sampler's thread: only hand the reading over.
        if self._ctx is not None:
            self._ctx.latest = snapshot
        self._tracker.observe(snapshot)

    async def run(self) -> BenchRun:
        tracker = self._tracker
        sampler = HardwareSampler(self._on_snapshot, self._sources, interval_s=SAMPLE_INTERVAL_S)
        first = await asyncio.to_thread(sampler.sample_now)
        hardware = hardware_from_snapshot(first)
        run_id = uuid.uuid4().hex[:12]
        started_at = utc_now()
        ctx = RunContext(
            total=self.plan.total_steps,
            on_progress=self._on_progress,
            tracker=tracker,
            hardware=hardware,
            run_id=run_id,
        )
        ctx.latest = first
        self._ctx = ctx
        sampler.set_process_ids_provider(ctx.process_ids)
        sampler.start()
        try:
            if self.spec.backend == BackendKind.OLLAMA:
                for config in self.plan.configurations:
                    await self._ollama_configuration(ctx, config)
            elif self.spec.backend == BackendKind.OPENAI:
                for config in self.plan.configurations:
                    await self._openai_configuration(ctx, config)
            else:
                for config in self.plan.configurations:
                    await self._llama_configuration(ctx, config)
        except _Stopped:
            pass
        finally:
            await asyncio.to_thread(sampler.close)
        caveats: tuple[str, ...] = ()
        if self.spec.backend == BackendKind.OLLAMA:
            impl: BackendImpl = "ollama"
            build = f"ollama {self._ollama_version}".strip()
            caveats = OLLAMA_CAVEATS
        elif self.spec.backend == BackendKind.OPENAI:
            impl, build, caveats = "openai", self._server_label, OPENAI_CAVEATS
        else:
            impl = "llama-cpp-python"
            build = self._system.build_label if self._system else ""
        return BenchRun(
            run_id=run_id,
            started_at=started_at,
            backend_impl=impl,
            spec=self.spec,
            records=tuple(ctx.records),
            failures=tuple(self._failures),
            notes=tuple(ctx.notes),
            caveats=caveats,
            hardware=hardware,
            fingerprint=ctx.fingerprint,
            build=build,
            cancelled=self._cancel.is_set(),
        )

    def _fail(self, ctx: RunContext, label: str, reason: str, steps_left: int) -> None:
        self._failures.append(ConfigFailure(label, reason))
        ctx.skip(steps_left)
        ctx.note(f"{label}: {reason}", label)

    # -- llama.cpp --------------------------------------------------------------------------

    async def _start_worker(self) -> WorkerProcess:
        worker = await self._guard(start_bench_worker(self.log_path, python=self._python))
        self._system = SystemInfo.from_hello(worker.hello)
        return worker

    async def _repack_for(self, config: Configuration, system: SystemInfo) -> bool:
        """Repacked weights for this run: as asked, or in auto mode unless they crashed here."""
        if config.repack != "auto":
            return config.repack == "on"
        key = await asyncio.to_thread(repack.key_for, config.model.ref, system.llama_cpp_version)
        return key is None or not await asyncio.to_thread(repack.RepackMemory().crashes_with_repack, key)

    async def _remember_repack_crash(self, config: Configuration, system: SystemInfo) -> None:
        key = await asyncio.to_thread(repack.key_for, config.model.ref, system.llama_cpp_version)
        if key is not None:
            await asyncio.to_thread(repack.RepackMemory().remember_crash, key, config.model.label)

    async def _llama_configuration(self, ctx: RunContext, config: Configuration) -> None:
        spec, plan = self.spec, self.plan
        steps_before = ctx.done
        label = config.label()
        n_ctx = max((t.context for t in plan.tests), default=1)
        worker: WorkerProcess | None = None
        try:
            if self._system is None:
                worker = await self._start_worker()
            system = self._system
            assert system is not None
            free_vram, free_ram = free_memory(ctx.latest) if ctx.latest else (None, None)
            if not system.gpu_offload:
                free_vram = None
            ngl = resolve_gpu_layers(
                config.gpu_layers,
                config.model.header,
                spec=spec,
                n_ctx=n_ctx,
                gpu_offload=system.gpu_offload,
                free_vram=free_vram,
                free_ram=free_ram,
            )
            label = config.label(ngl)
            # "all", -1, 99 and auto can be one configuration: each is measured once.
            offloaded = offloaded_layers(ngl, config.model.header, gpu_offload=system.gpu_offload)
            key = (config.model.ref, offloaded, config.threads, config.repack)
            if key in self._measured:
                ctx.skip(plan.steps_per_configuration)
                why = "" if system.gpu_offload else " (this llama.cpp build cannot offload to a GPU)"
                ctx.note(f"{config.label()} is {config.label(offloaded)} here{why}: measured once", label)
                return
            self._measured.add(key)
            check_fits(
                config.model.header,
                spec=spec,
                n_gpu_layers=ngl,
                n_ctx=n_ctx,
                free_vram=free_vram,
                free_ram=free_ram,
            )
            rows: list[BenchRecord] = []
            if plan.tests:
                if worker is None:
                    worker = await self._start_worker()
                use_repack = await self._repack_for(config, system)
                request = BenchRequest(
                    model=config.model.ref,
                    n_gpu_layers=ngl,
                    n_threads=config.threads or 1,
                    tests=plan.tests,
                    repetitions=spec.repetitions,
                    n_batch=spec.batch,
                    n_ubatch=spec.n_ubatch,
                    flash_attn=spec.flash_attn,
                    type_k=spec.kv_cache_type,
                    type_v=spec.kv_cache_type,
                    repack=use_repack,
                    warmup=spec.warmup,
                    seed=spec.seed,
                )
                ctx.announce(f"{label} · loading")
                try:
                    rows = await self._guard(
                        run_llama_configuration(ctx, worker, config, request, system, label)
                    )
                except WorkerFailed as error:
                    if not (error.crashed and use_repack and config.repack == "auto"):
                        raise
                    # As in the chat backend: the same file runs with repacking off, and only
                    # then was repacking the cause (said once it is known, not before the retry).
                    await worker.kill()
                    worker = await self._start_worker()
                    request = replace(request, repack=False)
                    rows = await self._guard(
                        run_llama_configuration(ctx, worker, config, request, system, label)
                    )
                    ctx.note(f"{label}: {repack.fallback_note('Repack on (`--repack on`)')}", label)
                    await self._remember_repack_crash(config, system)
            if worker is not None:
                # Free the bench worker's memory before the chat backend loads its own copy.
                await worker.stop()
                worker = None
            if spec.chat:
                await self._llama_chat(ctx, config, ngl, rows, label)
        except ConfigSkipped as error:
            self._fail(
                ctx, label, f"skipped: {error}", plan.steps_per_configuration - (ctx.done - steps_before)
            )
        except (WorkerFailed, BackendError, ChatTestFailed) as error:
            self._fail(ctx, label, str(error), plan.steps_per_configuration - (ctx.done - steps_before))
        finally:
            ctx.pids = ()
            if worker is not None:
                await worker.kill()

    async def _llama_chat(
        self, ctx: RunContext, config: Configuration, ngl: int, rows: Sequence[BenchRecord], label: str
    ) -> None:
        spec = self.spec
        backend = LlamaCppBackend(log_path=self.log_path, python=self._python)
        ctx.tracker.reset(ctx.latest)
        ctx.pid_source = backend.process_ids
        try:
            settings = LoadSettings(
                model=config.model.ref,
                n_gpu_layers=ngl,
                n_threads=config.threads,
                flash_attn=spec.flash_attn,
                kv_cache_type=spec.kv_cache_type,
                repack=config.repack,
            )
            ctx.announce(f"{label} · loading the chat backend")
            loaded = await self._guard(backend.load(settings))
            base = _chat_base(rows[0] if rows else None, loaded, config, self._system)
            record = await self._guard(
                run_chat_test(
                    ctx,
                    backend,
                    base,
                    question=spec.question,
                    max_tokens=spec.reply_tokens,
                    repetitions=spec.repetitions,
                    warmup=spec.warmup,
                    seed=spec.seed,
                    label=label,
                )
            )
            for pid in backend.process_ids():
                ctx.tracker.note_rss(process_peak_rss(pid))
            ctx.add_row(with_peaks(record, ctx.tracker.snapshot()), label)
        finally:
            ctx.pid_source = None
            await backend.close()

    # -- OpenAI-compatible servers ----------------------------------------------------------

    async def _openai_configuration(self, ctx: RunContext, config: Configuration) -> None:
        label = config.label()
        steps_before = ctx.done
        run = OpenAIRun(ctx, self.spec, config, label)
        try:
            ctx.announce(f"{label} · choosing the model on the server")
            record = await self._guard(run.measure())
            self._server_label = run.backend.extras.label
            ctx.add_row(with_peaks(record, ctx.tracker.snapshot()), label)
        except (BackendError, ChatTestFailed) as error:
            self._fail(ctx, label, str(error), self.plan.steps_per_configuration - (ctx.done - steps_before))
        finally:
            ctx.pid_source = None
            await run.close()

    # -- Ollama -----------------------------------------------------------------------------

    async def _ollama_configuration(self, ctx: RunContext, config: Configuration) -> None:
        spec = self.spec
        steps_before = ctx.done
        label = config.label()
        run = OllamaRun(ctx, spec, config, label)
        try:
            ctx.announce(f"{label} · loading")
            base = await self._guard(run.load())
            self._ollama_version = base.ollama_version or self._ollama_version
            await self._guard(run.measure(base))
            if spec.chat:
                record = await self._guard(
                    run_chat_test(
                        ctx,
                        run.backend,
                        base,
                        question=spec.question,
                        max_tokens=spec.reply_tokens,
                        repetitions=spec.repetitions,
                        warmup=spec.warmup,
                        seed=spec.seed,
                        label=label,
                    )
                )
                ctx.add_row(with_peaks(record, ctx.tracker.snapshot()), label)
        except (BackendError, ChatTestFailed) as error:
            self._fail(ctx, label, str(error), self.plan.steps_per_configuration - (ctx.done - steps_before))
        finally:
            ctx.pid_source = None
            await run.close()


def _chat_base(
    row: BenchRecord | None, loaded: LoadedModel, config: Configuration, system: SystemInfo | None
) -> BenchRecord:
    """The chat row's fields: the engine's settings as the chat backend applied them."""
    settings = loaded.settings
    if row is None:
        params = parameter_label(loaded.n_params) if loaded.n_params else ""
        row = base_record(
            config,
            BenchRequest(model=config.model.ref, n_gpu_layers=loaded.n_gpu_layers, n_threads=0, tests=()),
            system or SystemInfo("", "", False, "CPU", "", ""),
            {
                "model_type": " ".join(w for w in (loaded.architecture, params, loaded.quant) if w),
                "model_size": loaded.size_bytes or 0,
                "model_n_params": loaded.n_params or 0,
                "n_layers": loaded.n_layers,
            },
        )
    return replace(
        row,
        n_batch=settings.n_batch,
        n_ubatch=min(settings.n_batch, 512),
        n_threads=loaded.n_threads or settings.n_threads or 0,
        n_gpu_layers=settings.n_gpu_layers if isinstance(settings.n_gpu_layers, int) else row.n_gpu_layers,
        flash_attn=settings.flash_attn,
        type_k=settings.kv_cache_type,
        type_v=settings.kv_cache_type,
        use_mmap=settings.use_mmap,
        repack=loaded.repack,
        test_time=utc_now(),
        notes=(
            f"chat rows: the app's own backend (n_ctx {loaded.n_ctx}, n_batch {settings.n_batch}), greedy",
        ),
    )

"""Which models are loaded, with which runner options, and for how long.

Mirrors Ollama's scheduler where clients can observe it: a request whose runner options differ
from the loaded instance's reloads it (num_gpu < 0 and "auto" values match anything), keep_alive
sets when an idle model is unloaded, and /api/ps reports size, size_vram and context_length.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, replace
from typing import Any

from .catalog import GIB, ModelSpec
from .engines import Engine, EngineError, RunnerOptions
from .records import Faults, LoadRecord, Records, UnloadRecord

RUNNER_KEYS = ("num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread")

DEFAULT_KEEP_ALIVE_NS = 5 * 60 * 1_000_000_000


class LoadFailed(Exception):
    """The runner could not start; the message is what the 500 body carries."""


@dataclass
class Runner:
    spec: ModelSpec
    options: RunnerOptions
    requested: dict[str, Any]
    size: int
    size_vram: int
    keep_alive_ns: int
    expires_ns: int | None = None
    """Set when the last request finishes; None while requests are running."""
    active: int = 0

    def expires_at_ns(self) -> int:
        if self.expires_ns is not None:
            return self.expires_ns
        return time.time_ns() + self.keep_alive_ns


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        records: Records,
        faults: Faults,
        *,
        vram_bytes: int = 24 * GIB,
        default_num_ctx: int = 4096,
        max_loaded: int = 3,
    ) -> None:
        self.engine = engine
        self.records = records
        self.faults = faults
        self.vram_bytes = vram_bytes
        self.default_num_ctx = default_num_ctx
        self.max_loaded = max_loaded
        self.runners: dict[str, Runner] = {}
        self._lock: asyncio.Lock | None = None

    # -- options ------------------------------------------------------------------------------

    def effective(self, spec: ModelSpec, requested: dict[str, Any]) -> RunnerOptions:
        merged = {k: v for k, v in spec.parameters.items() if k in RUNNER_KEYS}
        merged.update({k: v for k, v in requested.items() if k in RUNNER_KEYS and v is not None})
        num_ctx = merged.get("num_ctx")
        num_batch = merged.get("num_batch")
        use_mmap = merged.get("use_mmap")
        return RunnerOptions(
            # The runner never gets more context than the model was trained for.
            num_ctx=min(int(num_ctx) if num_ctx else self.default_num_ctx, spec.context_length),
            num_batch=int(num_batch) if num_batch else 512,
            num_gpu=int(merged.get("num_gpu", -1)),
            main_gpu=int(merged.get("main_gpu", 0)),
            use_mmap=bool(use_mmap) if use_mmap is not None else None,
            num_thread=int(merged.get("num_thread", 0)),
            num_ctx_auto=not num_ctx,
            num_batch_auto=not num_batch,
        )

    @staticmethod
    def needs_reload(loaded: RunnerOptions, wanted: RunnerOptions) -> bool:
        if wanted.num_ctx_auto and loaded.num_ctx_auto:
            wanted = replace(wanted, num_ctx=loaded.num_ctx)
        if wanted.num_batch_auto and loaded.num_batch_auto:
            wanted = replace(wanted, num_batch=loaded.num_batch)
        if wanted.use_mmap is None:
            wanted = replace(wanted, use_mmap=loaded.use_mmap)
        if wanted.num_gpu < 0:
            # A request that leaves num_gpu to the server matches any loaded instance.
            wanted = replace(wanted, num_gpu=loaded.num_gpu)
        fields = ("num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread")
        return any(getattr(loaded, f) != getattr(wanted, f) for f in fields)

    def placement(self, spec: ModelSpec, options: RunnerOptions) -> tuple[int, int]:
        """(size, size_vram) in bytes: weights + f16 KV cache + compute buffers, split by layers."""
        head_dim = spec.embedding_length // max(spec.head_count, 1)
        kv_cache = 2 * spec.block_count * options.num_ctx * head_dim * spec.head_count_kv * 2
        compute = 64 * 1024**2 + options.num_batch * spec.embedding_length * 16
        size = spec.weights_bytes + kv_cache + compute
        if self.vram_bytes <= 0:
            return size, 0
        layers = spec.block_count
        if options.num_gpu < 0:
            on_gpu = min(layers, math.floor(self.vram_bytes / (size / layers)))
        else:
            on_gpu = min(options.num_gpu, layers)
        vram = size if on_gpu >= layers else size * on_gpu // layers
        return size, vram

    # -- loading ------------------------------------------------------------------------------

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def acquire(self, spec: ModelSpec, requested: dict[str, Any], keep_alive_ns: int | None) -> Runner:
        """The runner for `spec` with these options, loading or reloading it as Ollama would."""
        async with self._guard():
            await self._purge_expired()
            wanted = self.effective(spec, requested)
            session = DEFAULT_KEEP_ALIVE_NS if keep_alive_ns is None else keep_alive_ns
            runner = self.runners.get(spec.name)
            if runner is not None and not self.needs_reload(runner.options, wanted):
                runner.active += 1
                runner.expires_ns = None
                runner.keep_alive_ns = session
                return runner
            reason: Any = "load"
            if runner is not None:
                await self._unload(runner, "reload")
                reason = "reload"
            await self._evict_for_room()
            if self.faults.load_delay_s:
                await asyncio.sleep(self.faults.load_delay_s)
            if self.faults.load_errors:
                raise LoadFailed(self.faults.load_errors.popleft())
            size, vram = self.placement(spec, wanted)
            if vram > self.vram_bytes > 0:
                raise LoadFailed(
                    "llama runner process has terminated: cudaMalloc failed: out of memory "
                    f"(needed {vram} bytes of VRAM, {self.vram_bytes} available)"
                )
            try:
                await self.engine.load(spec, wanted)
            except EngineError as error:
                raise LoadFailed(f"llama runner process has terminated: {error}") from error
            requested_runner = {k: v for k, v in requested.items() if k in RUNNER_KEYS}
            runner = Runner(spec, wanted, requested_runner, size, vram, session, active=1)
            self.runners[spec.name] = runner
            self.records.add_load(LoadRecord(spec.name, wanted, requested_runner, reason))
            return runner

    async def release(self, runner: Runner) -> None:
        runner.active = max(runner.active - 1, 0)
        if runner.active:
            return
        if runner.keep_alive_ns == 0:
            async with self._guard():
                if self.runners.get(runner.spec.name) is runner and runner.active == 0:
                    await self._unload(runner, "keep_alive")
            return
        runner.expires_ns = time.time_ns() + runner.keep_alive_ns

    async def expire(self, spec: ModelSpec) -> None:
        """Unload now (an empty request with keep_alive 0), or when running requests end."""
        async with self._guard():
            runner = self.runners.get(spec.name)
            if runner is None:
                return
            runner.keep_alive_ns = 0
            if runner.active == 0:
                await self._unload(runner, "request")

    async def _unload(self, runner: Runner, reason: Any) -> None:
        self.runners.pop(runner.spec.name, None)
        try:
            await self.engine.unload(runner.spec)
        finally:
            self.records.add_unload(UnloadRecord(runner.spec.name, reason))

    async def _evict_for_room(self) -> None:
        while len(self.runners) >= self.max_loaded:
            idle = [r for r in self.runners.values() if r.active == 0]
            if not idle:
                return
            await self._unload(min(idle, key=Runner.expires_at_ns), "evicted")

    async def _purge_expired(self) -> None:
        now = time.time_ns()
        for runner in list(self.runners.values()):
            if runner.active == 0 and runner.expires_ns is not None and runner.expires_ns <= now:
                await self._unload(runner, "keep_alive")

    async def loaded(self) -> list[Runner]:
        """Loaded runners, longest remaining time first (the /api/ps order)."""
        async with self._guard():
            await self._purge_expired()
            return sorted(self.runners.values(), key=Runner.expires_at_ns, reverse=True)

    async def unload_all(self) -> None:
        async with self._guard():
            for runner in list(self.runners.values()):
                await self._unload(runner, "request")

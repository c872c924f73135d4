"""The background thread that samples every source on a fixed, drift-free schedule.

Tick k is due at ``start + k × interval``; the time a tick takes does not push the next one
back. A tick that overruns its slot makes the sampler skip the slots it missed rather than
run them back to back. One thread owns every source (NVML wants a single context), so a
source that stalls delays the others: sources keep their own slow work off the tick.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from lollma_tui.core.hardware.processes import ProcessTracker, vram_by_pid
from lollma_tui.core.hardware.snapshots import (
    CpuSnapshot,
    GpuSnapshot,
    MemorySnapshot,
    ProcessSnapshot,
    SourceState,
    SourceStatus,
    SystemSnapshot,
    is_stale,
)
from lollma_tui.core.hardware.source import HardwareSource, SampleContext, SourceReading, status
from lollma_tui.core.hardware.summary import gpu_summary

__all__ = [
    "DEFAULT_INTERVAL_S",
    "MAX_INTERVAL_S",
    "MIN_INTERVAL_S",
    "HardwareSampler",
    "IntervalError",
    "TickSchedule",
    "is_stale",
    "validate_interval",
]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 1.0
MIN_INTERVAL_S = 0.25
MAX_INTERVAL_S = 5.0

SnapshotCallback = Callable[[SystemSnapshot], None]
PidsProvider = Callable[[], Iterable[int]]


class IntervalError(ValueError):
    """A sampling interval outside 0.25–5 s."""


def validate_interval(seconds: float) -> float:
    """Return `seconds` as a float, or raise IntervalError naming the allowed range."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise IntervalError(f"sampling interval must be a number of seconds, not {seconds!r}") from None
    if not math.isfinite(value) or not MIN_INTERVAL_S <= value <= MAX_INTERVAL_S:
        raise IntervalError(
            f"sampling interval must be between {MIN_INTERVAL_S:g} and {MAX_INTERVAL_S:g} s, not {seconds!r}"
        )
    return value


class TickSchedule:
    """Slot k (counting from `first_tick`) is due at ``start + (k − first_tick) × interval``."""

    _EPSILON = 1e-9  # keeps float noise from counting an exact deadline as missed

    def __init__(self, start: float, interval: float, first_tick: int = 0) -> None:
        self.start = start
        self.interval = interval
        self.first_tick = first_tick
        self.tick = first_tick

    def deadline(self) -> float:
        return self.start + (self.tick - self.first_tick) * self.interval

    def advance(self, now: float) -> int:
        """Move to the next slot that is not yet past at `now`; returns how many were skipped."""
        earliest = self.first_tick + math.ceil((now - self.start) / self.interval - self._EPSILON)
        following = self.tick + 1
        self.tick = max(following, earliest)
        return self.tick - following


class HardwareSampler:
    """Samples `sources` every `interval_s` on its own thread and hands each `SystemSnapshot`
    to `on_snapshot`.

    `on_snapshot` runs on the sampler thread: it should only hand the snapshot over (e.g.
    ``app.call_from_thread`` / ``post_message``) and return; time spent there delays sampling.
    Exceptions it raises are logged and otherwise ignored.
    """

    def __init__(
        self,
        on_snapshot: SnapshotCallback,
        sources: Sequence[HardwareSource] | None = None,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        process_ids: PidsProvider | None = None,
        process_tracker: ProcessTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if sources is None:
            from lollma_tui.core.hardware.defaults import default_sources

            sources = default_sources()
        self._on_snapshot = on_snapshot
        self._sources = tuple(sources)
        self._interval_s = validate_interval(interval_s)
        self._process_ids = process_ids
        self._tracker = process_tracker or ProcessTracker()
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._sample_lock = threading.Lock()  # sources are not thread-safe: one sample at a time
        self._wake = threading.Event()
        self._stopping = False
        self._reanchor = False
        self._thread: threading.Thread | None = None
        self._next_tick = 0

    # -- control (any thread) ----------------------------------------------------------------

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def sources(self) -> tuple[HardwareSource, ...]:
        return self._sources

    def start(self) -> None:
        if self.running:
            return
        with self._lock:
            self._stopping = False
            self._reanchor = False
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name="lollma-hardware-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the thread without waiting out the interval; True when it has ended.

        Only a tick already in progress can delay it. The thread closes the sources on its
        way out, so a later `start()` reopens them.
        """
        thread = self._thread
        if thread is None:
            return True
        with self._lock:
            self._stopping = True
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    def close(self) -> None:
        """Stop, and close the sources even if the thread never ran (after `sample_now`)."""
        if self.stop() and self._thread is None:
            self._close_sources()

    def set_interval(self, seconds: float) -> None:
        """Change the interval (validated: IntervalError); the new schedule starts right away."""
        value = validate_interval(seconds)
        with self._lock:
            self._interval_s = value
            self._reanchor = True
        self._wake.set()

    def refresh_now(self) -> None:
        """Take a sample as soon as possible (after a model swap, say) and re-anchor on it."""
        with self._lock:
            self._reanchor = True
        self._wake.set()

    def set_process_ids_provider(self, provider: PidsProvider | None) -> None:
        """Where the pids of our processes come from (worker, Ollama server); None for none.

        Called on the sampler thread each tick, so it must be quick and thread-safe.
        """
        with self._lock:
            self._process_ids = provider

    def sample_now(self) -> SystemSnapshot:
        """Take one snapshot on the calling thread (for one-shot use, tests and benchmarks)."""
        return self._sample(tick=self._next_tick)

    # -- sampler thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            schedule = TickSchedule(self._clock(), self._interval_s, self._next_tick)
            while True:
                with self._lock:
                    if self._stopping:
                        return
                    if self._reanchor:
                        self._reanchor = False
                        schedule = TickSchedule(self._clock(), self._interval_s, schedule.tick)
                snapshot = self._sample(tick=schedule.tick)
                self._deliver(snapshot)
                skipped = schedule.advance(self._clock())
                if skipped:
                    log.debug("hardware sampler overran: skipped %d tick(s)", skipped)
                self._next_tick = schedule.tick
                self._sleep_until(schedule.deadline())
        finally:
            self._close_sources()

    def _sleep_until(self, deadline: float) -> None:
        while True:
            delay = deadline - self._clock()
            if delay <= 0:
                return
            if self._wake.wait(delay):
                self._wake.clear()
                return  # stop, a new interval, or a refresh: the loop head sorts out which

    def _deliver(self, snapshot: SystemSnapshot) -> None:
        try:
            self._on_snapshot(snapshot)
        except Exception:
            log.exception("on_snapshot callback failed")

    def _close_sources(self) -> None:
        for source in self._sources:
            try:
                source.close()
            except Exception:
                log.exception("closing hardware source %r failed", getattr(source, "name", source))

    def _sample(self, tick: int) -> SystemSnapshot:
        with self._sample_lock:
            started = time.perf_counter()
            now = self._clock()
            wall = self._wall_clock()
            with self._lock:
                provider = self._process_ids
                interval = self._interval_s
            pids = self._tracked_pids(provider, now)
            context = SampleContext(now=now, interval_s=interval, pids=pids)
            readings = [self._sample_source(source, context) for source in self._sources]

            cpu: CpuSnapshot | None = next((r.cpu for r in readings if r.cpu is not None), None)
            memory: MemorySnapshot | None = next((r.memory for r in readings if r.memory is not None), None)
            gpus: tuple[GpuSnapshot, ...] = tuple(g for r in readings for g in r.gpus)
            hint = next((r.hint for r in readings if r.hint), None)
            statuses = tuple(r.status for r in readings)
            processes = self._read_processes(gpus) if pids else ()
            return SystemSnapshot(
                monotonic=now,
                wall_time=wall,
                interval_s=interval,
                tick=tick,
                cpu=cpu,
                memory=memory,
                gpus=gpus,
                processes=processes,
                sources=statuses,
                gpu_summary=gpu_summary(gpus, statuses, hint),
                hint=hint,
                sample_cost_s=time.perf_counter() - started,
            )

    def _tracked_pids(self, provider: PidsProvider | None, now: float) -> frozenset[int]:
        try:
            roots = list(provider()) if provider is not None else []
            return self._tracker.refresh(roots, now)
        except Exception:
            log.exception("process id provider failed")
            return frozenset()

    def _read_processes(self, gpus: tuple[GpuSnapshot, ...]) -> tuple[ProcessSnapshot, ...]:
        try:
            return self._tracker.read(vram_by_pid(gpus))
        except Exception:
            log.exception("reading our processes failed")
            return ()

    @staticmethod
    def _sample_source(source: HardwareSource, context: SampleContext) -> SourceReading:
        started = time.perf_counter()
        try:
            reading = source.sample(context)
        except Exception as exc:  # a source broke its promise not to raise: contain it
            name = getattr(source, "name", type(source).__name__)
            reading = SourceReading(status=status(name, SourceState.ERROR, f"{name} failed: {exc}"))
        cost = time.perf_counter() - started
        return SourceReading(
            status=SourceStatus(
                name=reading.status.name,
                state=reading.status.state,
                message=reading.status.message,
                cost_s=cost,
            ),
            cpu=reading.cpu,
            memory=reading.memory,
            gpus=reading.gpus,
            hint=reading.hint,
        )

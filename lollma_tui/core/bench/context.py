"""What every per-configuration runner shares: progress accounting, peak memory, run identity."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from lollma_tui.core.bench.hardware_info import HardwareInfo, PeakTracker
from lollma_tui.core.bench.records import BenchRecord
from lollma_tui.core.hardware.snapshots import SystemSnapshot


@dataclass(frozen=True, slots=True)
class BenchProgress:
    """Handed to the progress callback after every timed run, finished row and note."""

    done: int
    """Timed runs finished (warm-ups and loads are not counted)."""
    total: int
    elapsed_s: float
    eta_s: float | None
    """None until one run has finished."""
    label: str
    """What runs now, e.g. "tiny-llama Q8_0 · ngl 0 · 2 threads · tg128 3/5"."""
    row: BenchRecord | None = None
    """Set when a row has just been finished."""
    message: str | None = None
    """A note or a skipped configuration, for the user."""

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0


ProgressCallback = Callable[[BenchProgress], None]


class RunContext:
    def __init__(
        self,
        *,
        total: int,
        on_progress: ProgressCallback | None,
        tracker: PeakTracker,
        hardware: HardwareInfo,
        run_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self.tracker = tracker
        self.hardware = hardware
        self.fingerprint = hardware.fingerprint()
        self.run_id = run_id
        self.records: list[BenchRecord] = []
        self.notes: list[str] = []
        self.pids: tuple[int, ...] = ()
        self.pid_source: Callable[[], Iterable[int]] | None = None
        self.latest: SystemSnapshot | None = None
        """The sampler's latest reading (free memory, baselines for peaks)."""
        self._on_progress = on_progress
        self._clock = clock
        self._started = clock()

    def process_ids(self) -> Iterable[int]:
        """For the hardware sampler thread: the processes doing the work right now."""
        source = self.pid_source
        return tuple(source()) if source is not None else self.pids

    def _emit(self, label: str, row: BenchRecord | None = None, message: str | None = None) -> None:
        if self._on_progress is None:
            return
        elapsed = self._clock() - self._started
        eta = elapsed / self.done * max(0, self.total - self.done) if self.done else None
        self._on_progress(BenchProgress(self.done, self.total, elapsed, eta, label, row, message))

    def step(self, label: str) -> None:
        self.done += 1
        self._emit(label)

    def skip(self, steps: int) -> None:
        """Runs that will not happen (a failed or skipped configuration) leave the total."""
        self.total = max(self.done, self.total - steps)

    def announce(self, label: str) -> None:
        self._emit(label)

    def note(self, message: str, label: str = "") -> None:
        self.notes.append(message)
        self._emit(label, message=message)

    def add_row(self, record: BenchRecord, label: str) -> BenchRecord:
        record = replace(record, hardware=self.hardware, fingerprint=self.fingerprint, run_id=self.run_id)
        self.records.append(record)
        self._emit(label, row=record)
        return record

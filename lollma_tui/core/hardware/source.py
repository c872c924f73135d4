"""The contract between the sampler and each hardware source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from lollma_tui.core.hardware.snapshots import (
    CpuSnapshot,
    GpuSnapshot,
    MemorySnapshot,
    SourceState,
    SourceStatus,
)

RETRY_AFTER_S = 30.0
"""How long a source that found nothing, or failed, waits before probing again."""


@dataclass(frozen=True, slots=True)
class SampleContext:
    """What the sampler tells every source at each tick."""

    now: float
    """Monotonic time of the tick (sources use it for retry timers and rate deltas)."""
    interval_s: float
    pids: frozenset[int] = frozenset()
    """Our processes and all their descendants: the pids per-process GPU memory is wanted for."""


@dataclass(frozen=True, slots=True)
class SourceReading:
    status: SourceStatus
    cpu: CpuSnapshot | None = None
    memory: MemorySnapshot | None = None
    gpus: tuple[GpuSnapshot, ...] = ()
    hint: str | None = None


@runtime_checkable
class HardwareSource(Protocol):
    """A provider of readings. `sample` must never raise and should return within milliseconds."""

    @property
    def name(self) -> str: ...

    def sample(self, context: SampleContext) -> SourceReading: ...

    def close(self) -> None:
        """Release libraries, files and child processes; a later `sample` may reopen them."""
        ...


def status(name: str, state: SourceState, message: str) -> SourceStatus:
    return SourceStatus(name=name, state=state, message=message)

"""Immutable readings of the machine, built by the sampler thread and handed to the UI.

"Not available" is always ``None``: the field is unsupported on this device, not readable
with our permissions, not measured yet (a delta needs two samples), or failed this tick.
The UI shows ``None`` as "—". A value of ``0`` is a real zero, never a placeholder.

Sizes are bytes, clocks MHz, power watts, temperatures °C and percentages 0–100
(process CPU % is per core, so a busy 8-thread process can read 800).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SourceState(StrEnum):
    OK = "ok"
    ABSENT = "absent"
    """Nothing to monitor here (no NVIDIA library, no DRM GPU, not a Mac): not an error."""
    ERROR = "error"
    """The hardware or library is there but cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """How one source fared on the latest tick."""

    name: str
    state: SourceState
    message: str
    """One human line, e.g. "NVIDIA driver/library version mismatch — retrying every 30 s"."""
    cost_s: float | None = None
    """Wall time this source's sample took on the latest tick (filled in by the sampler)."""

    @property
    def ok(self) -> bool:
        return self.state is SourceState.OK


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    percent: float | None
    """All cores together, 0–100, since the previous sample."""
    per_core_percent: tuple[float, ...]
    """One entry per logical core; empty when not available."""
    freq_mhz: float | None
    freq_max_mhz: float | None
    load_avg: tuple[float, float, float] | None
    """1, 5 and 15 minute load averages."""
    logical_cores: int | None
    physical_cores: int | None
    model: str | None


@dataclass(frozen=True, slots=True)
class MemorySnapshot:
    total_bytes: int
    available_bytes: int
    used_bytes: int
    """``total − available``: what programs hold, the figure that decides whether a model fits."""
    swap_used_bytes: int | None
    swap_total_bytes: int | None

    @property
    def used_fraction(self) -> float | None:
        return self.used_bytes / self.total_bytes if self.total_bytes else None

    @property
    def swap_fraction(self) -> float | None:
        if self.swap_used_bytes is None or not self.swap_total_bytes:
            return None
        return self.swap_used_bytes / self.swap_total_bytes


class GpuVendor(StrEnum):
    NVIDIA = "nvidia"
    AMD = "amd"
    INTEL = "intel"
    APPLE = "apple"


class GpuState(StrEnum):
    OK = "ok"
    ASLEEP = "asleep"
    """Runtime-suspended laptop GPU: left alone so polling does not wake it; fields are None."""
    LOST = "lost"
    """Fell off the bus or stopped answering (NVML GPU_IS_LOST); fields are None."""
    UNREADABLE = "unreadable"
    """The driver will not open it for us (no permission to its device file, …); fields are None."""


@dataclass(frozen=True, slots=True)
class GpuProcessMemory:
    """GPU memory one of our processes holds on one GPU."""

    pid: int
    used_bytes: int | None
    """None where the driver cannot say (MIG, Windows WDDM)."""


@dataclass(frozen=True, slots=True)
class GpuSnapshot:
    index: int
    """The vendor's own index: NVML index, DRM card number, 0 for the Apple GPU."""
    name: str
    vendor: GpuVendor
    state: GpuState = GpuState.OK
    utilization_percent: float | None = None
    memory_bandwidth_percent: float | None = None
    """Share of time the memory controller was busy; for LLM decoding the telling figure."""
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    """Dedicated VRAM. On unified-memory GPUs: the GPU's own allocation figures when the device
    reports them (AMD APU: VRAM carve-out + GTT), else None; the shared pool itself is the
    system RAM in `MemorySnapshot`, so never add these to RAM."""
    memory_free_bytes: int | None = None
    """What the driver says can still be allocated, where it says (NVML's "free": the total
    less what is used and what the driver reserves for itself, which "used" leaves out)."""
    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    clock_mhz: int | None = None
    """SM clock on NVIDIA, shader/graphics clock elsewhere."""
    fan_percent: float | None = None
    throttle_reasons: tuple[str, ...] | None = None
    """Short names of the active clock-event reasons ("power cap", "hw thermal", …); an empty
    tuple means none active, None means not supported. Refreshed every few seconds only."""
    unified_memory: bool = False
    mig_enabled: bool = False
    bus_id: str | None = None
    processes: tuple[GpuProcessMemory, ...] = ()
    """Only the processes we were asked about (our worker, the Ollama server and children)."""

    @property
    def key(self) -> str:
        """Stable identity across ticks, e.g. "nvidia0" (histories are keyed by it)."""
        return f"{self.vendor.value}{self.index}"

    @property
    def memory_fraction(self) -> float | None:
        if self.memory_used_bytes is None or not self.memory_total_bytes:
            return None
        return self.memory_used_bytes / self.memory_total_bytes

    @property
    def power_fraction(self) -> float | None:
        if self.power_w is None or not self.power_limit_w:
            return None
        return self.power_w / self.power_limit_w


@dataclass(frozen=True, slots=True)
class ProcessSnapshot:
    """One process we care about, plus the sum over its descendants (Ollama server → runners)."""

    pid: int
    name: str | None
    rss_bytes: int | None
    cpu_percent: float | None
    """None on the first sample of a process (a rate needs two readings)."""
    vram_bytes: int | None
    """Over all GPUs; None when no GPU reported this process."""
    child_pids: tuple[int, ...] = ()
    total_rss_bytes: int | None = None
    total_cpu_percent: float | None = None
    total_vram_bytes: int | None = None
    """Self + descendants; None when none of them has a reading."""


@dataclass(frozen=True, slots=True)
class SystemSnapshot:
    monotonic: float
    """`time.monotonic()` when the tick started: compare with it for staleness."""
    wall_time: float
    """`time.time()` when the tick started: for display and logs."""
    interval_s: float
    """The sampler interval in force; a snapshot older than 3 of these is stale."""
    tick: int
    """Slot number on the sampler's schedule; a jump of more than one means skipped ticks."""
    cpu: CpuSnapshot | None
    memory: MemorySnapshot | None
    gpus: tuple[GpuSnapshot, ...] = ()
    processes: tuple[ProcessSnapshot, ...] = ()
    sources: tuple[SourceStatus, ...] = ()
    gpu_summary: str = ""
    """One line for the GPU block: "CPU only", "1 GPU: NVIDIA H100", an error line, …"""
    hint: str | None = None
    """An install hint worth showing once, e.g. "install macmon for GPU/power"."""
    sample_cost_s: float = 0.0
    """Wall time the whole tick took, for a "monitor: x ms/tick" readout."""
    host: str | None = None
    """The machine these readings are from, when it is not this one (remote hardware over ssh)."""

    @property
    def problems(self) -> tuple[SourceStatus, ...]:
        """The sources in ERROR state, for a banner."""
        return tuple(s for s in self.sources if s.state is SourceState.ERROR)

    def gpu(self, key: str) -> GpuSnapshot | None:
        return next((g for g in self.gpus if g.key == key), None)


STALE_AFTER_INTERVALS = 3.0


def is_stale(snapshot: SystemSnapshot, now: float) -> bool:
    """True when `snapshot` is older than 3 sampler intervals at monotonic time `now`."""
    return now - snapshot.monotonic > STALE_AFTER_INTERVALS * snapshot.interval_s

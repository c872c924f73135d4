"""What machine a benchmark ran on, a fingerprint to find earlier runs on the same one, and the
peak memory a configuration reached while it ran."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from lollma_tui.core.hardware.snapshots import SystemSnapshot

_DRIVER = re.compile(r"\bdriver ([0-9][\w.\-]*)")
_GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class GpuInfo:
    name: str
    memory_total_bytes: int | None


@dataclass(frozen=True, slots=True)
class HardwareInfo:
    cpu_model: str | None
    physical_cores: int | None
    logical_cores: int | None
    ram_total_bytes: int | None
    gpus: tuple[GpuInfo, ...] = ()
    gpu_driver: str | None = None
    os: str = ""
    machine: str = ""

    def fingerprint(self) -> str:
        """Stable across reboots and software updates; changes when the hardware does.

        RAM is rounded to whole GiB because the kernel's total moves a little between boots.
        """
        identity = {
            "cpu": self.cpu_model or "",
            "cores": [self.physical_cores, self.logical_cores],
            "ram_gib": round((self.ram_total_bytes or 0) / _GIB),
            "gpus": sorted([g.name, round((g.memory_total_bytes or 0) / _GIB)] for g in self.gpus),
            "machine": self.machine,
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        return digest[:16]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gpus"] = [asdict(g) for g in self.gpus]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HardwareInfo:
        gpus = tuple(
            GpuInfo(str(g.get("name", "")), g.get("memory_total_bytes"))
            for g in data.get("gpus") or ()
            if isinstance(g, Mapping)
        )
        return cls(
            cpu_model=data.get("cpu_model"),
            physical_cores=data.get("physical_cores"),
            logical_cores=data.get("logical_cores"),
            ram_total_bytes=data.get("ram_total_bytes"),
            gpus=gpus,
            gpu_driver=data.get("gpu_driver"),
            os=str(data.get("os", "")),
            machine=str(data.get("machine", "")),
        )


def hardware_from_snapshot(snapshot: SystemSnapshot) -> HardwareInfo:
    cpu = snapshot.cpu
    driver = None
    for source in snapshot.sources:
        match = _DRIVER.search(source.message)
        if match:
            driver = match.group(1)
            break
    return HardwareInfo(
        cpu_model=cpu.model if cpu else None,
        physical_cores=cpu.physical_cores if cpu else None,
        logical_cores=cpu.logical_cores if cpu else None,
        ram_total_bytes=snapshot.memory.total_bytes if snapshot.memory else None,
        gpus=tuple(GpuInfo(g.name, g.memory_total_bytes) for g in snapshot.gpus),
        gpu_driver=driver,
        os=f"{platform.system()} {platform.release()}".strip(),
        machine=platform.machine(),
    )


def free_memory(snapshot: SystemSnapshot) -> tuple[int | None, int | None]:
    """(free VRAM over all GPUs that report it, available RAM); None where unknown."""
    free_ram = snapshot.memory.available_bytes if snapshot.memory else None
    free_vram: int | None = None
    for gpu in snapshot.gpus:
        if gpu.unified_memory or gpu.memory_total_bytes is None or gpu.memory_used_bytes is None:
            continue
        free_vram = (free_vram or 0) + max(0, gpu.memory_total_bytes - gpu.memory_used_bytes)
    return free_vram, free_ram


@dataclass(slots=True)
class Peaks:
    rss_bytes: int | None = None
    """Our worker (or the Ollama server) and its children."""
    vram_bytes: int | None = None
    ram_used_bytes: int | None = None
    """The whole machine."""
    gpu_memory_used_bytes: int | None = None
    samples: int = 0


def _larger(current: int | None, value: int | None) -> int | None:
    if value is None:
        return current
    return value if current is None or value > current else current


@dataclass
class PeakTracker:
    """Keeps the highest readings seen since `reset()`; fed by a HardwareSampler's callback
    (its thread), read from the event loop."""

    _peaks: Peaks = field(default_factory=Peaks)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, baseline: SystemSnapshot | None = None) -> None:
        """Start over; `baseline` (the latest reading) seeds the machine-wide figures, so a
        configuration that finishes between two samples still reports them."""
        with self._lock:
            self._peaks = Peaks()
            if baseline is not None:
                self._observe_machine(baseline)

    def _observe_machine(self, snapshot: SystemSnapshot) -> None:
        peaks = self._peaks
        if snapshot.memory is not None:
            peaks.ram_used_bytes = _larger(peaks.ram_used_bytes, snapshot.memory.used_bytes)
        gpu_used = [g.memory_used_bytes for g in snapshot.gpus if g.memory_used_bytes is not None]
        if gpu_used:
            peaks.gpu_memory_used_bytes = _larger(peaks.gpu_memory_used_bytes, sum(gpu_used))

    def observe(self, snapshot: SystemSnapshot) -> None:
        with self._lock:
            peaks = self._peaks
            peaks.samples += 1
            for process in snapshot.processes:
                peaks.rss_bytes = _larger(peaks.rss_bytes, process.total_rss_bytes)
                peaks.vram_bytes = _larger(peaks.vram_bytes, process.total_vram_bytes)
            self._observe_machine(snapshot)

    def note_rss(self, rss_bytes: int | None) -> None:
        """A peak the process measured itself (getrusage), sharper than any sampling."""
        with self._lock:
            self._peaks.rss_bytes = _larger(self._peaks.rss_bytes, rss_bytes)

    def snapshot(self) -> Peaks:
        with self._lock:
            p = self._peaks
            return Peaks(p.rss_bytes, p.vram_bytes, p.ram_used_bytes, p.gpu_memory_used_bytes, p.samples)


def process_peak_rss(pid: int) -> int | None:
    """A live process's peak RSS: Linux keeps it as VmHWM; elsewhere its current RSS."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status_file:
            for line in status_file:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return None

"""CPU, RAM and swap through psutil: the one source every platform has."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import psutil

from lollma_tui.core.hardware.snapshots import CpuSnapshot, MemorySnapshot, SourceState
from lollma_tui.core.hardware.source import SampleContext, SourceReading, status


def read_cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The CPU's marketing name, read once at start; None when the platform hides it."""
    try:
        if sys.platform == "darwin":
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=2.0,
                check=False,
            )
            return out.stdout.strip() or None
        text = cpuinfo.read_text(errors="replace")
    except (OSError, subprocess.SubprocessError):
        return None
    # x86 says "model name"; many ARM kernels only have "Model" or "Hardware".
    for key in ("model name", "Model", "Hardware"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return None


def _positive(value: float | None) -> float | None:
    # psutil reports 0.0 for a frequency the platform does not expose.
    return value if value else None


class HostSource:
    """psutil-based CPU and memory; ``cpu_percent(interval=None)`` so a sample never blocks.

    CPU % is the average since the previous sample, so the first sample has none (None).
    """

    def __init__(self) -> None:
        self._model: str | None = None
        self._model_read = False
        self._logical = psutil.cpu_count(logical=True)
        self._physical = psutil.cpu_count(logical=False)
        self._primed_threads: set[int] = set()

    @property
    def name(self) -> str:
        return "host"

    def sample(self, context: SampleContext) -> SourceReading:
        try:
            cpu = self._cpu()
            memory = self._memory()
        except Exception as exc:  # psutil on an exotic platform: report, don't crash the tick
            return SourceReading(status=status(self.name, SourceState.ERROR, f"psutil failed: {exc}"))
        return SourceReading(
            status=status(self.name, SourceState.OK, "CPU and memory via psutil"),
            cpu=cpu,
            memory=memory,
        )

    def close(self) -> None:
        pass

    def _cpu(self) -> CpuSnapshot:
        if not self._model_read:
            self._model = read_cpu_model()
            self._model_read = True
        total: float | None = psutil.cpu_percent(interval=None)
        per_core = tuple(psutil.cpu_percent(interval=None, percpu=True))
        thread = threading.get_ident()
        if thread not in self._primed_threads:
            # psutil keeps the previous reading per thread, and a thread's first call has nothing
            # to compare with: it would read 0 %, so report "not measured yet" instead.
            self._primed_threads.add(thread)
            total, per_core = None, ()
        freq_now: float | None = None
        freq_max: float | None = None
        try:
            freq = psutil.cpu_freq()
        except (OSError, NotImplementedError, AttributeError):
            freq = None
        if freq is not None:
            freq_now, freq_max = _positive(freq.current), _positive(freq.max)
        try:
            load = psutil.getloadavg()
            load_avg: tuple[float, float, float] | None = (load[0], load[1], load[2])
        except (OSError, AttributeError):
            load_avg = None
        return CpuSnapshot(
            percent=total,
            per_core_percent=per_core,
            freq_mhz=freq_now,
            freq_max_mhz=freq_max,
            load_avg=load_avg,
            logical_cores=self._logical,
            physical_cores=self._physical,
            model=self._model,
        )

    def _memory(self) -> MemorySnapshot:
        vm = psutil.virtual_memory()
        try:
            swap = psutil.swap_memory()
            swap_used: int | None = swap.used
            swap_total: int | None = swap.total
        except (OSError, RuntimeError):
            swap_used = swap_total = None
        return MemorySnapshot(
            total_bytes=vm.total,
            available_bytes=vm.available,
            used_bytes=max(vm.total - vm.available, 0),
            swap_used_bytes=swap_used,
            swap_total_bytes=swap_total,
        )

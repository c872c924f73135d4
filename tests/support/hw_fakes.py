"""Fakes for the hardware we don't have: an NVML module, sysfs trees, a macmon process.

Fixtures that use them live in conftest.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pynvml  # the real bindings: their exception classes and codes make the fake honest

from lollma_tui.core.hardware.snapshots import (
    CpuSnapshot,
    GpuSnapshot,
    MemorySnapshot,
    SourceState,
    SourceStatus,
    SystemSnapshot,
)
from lollma_tui.core.hardware.source import SampleContext, SourceReading

GiB = 1 << 30
MiB = 1 << 20


def nvml_error(code: int) -> pynvml.NVMLError:
    """What nvidia-ml-py raises for return code `code` (an NVMLError_* subclass)."""
    return pynvml.NVMLError(code)


# ---------------------------------------------------------------------------------------------
# NVML


@dataclass
class FakeGpu:
    name: str = "NVIDIA GeForce RTX 4090"
    bus_id: str = "00000000:01:00.0"
    util_gpu: int = 87
    util_memory: int = 54
    memory_total: int = 24 * GiB
    memory_used: int = 8 * GiB
    memory_reserved: int = 0
    """Held by the driver: NVML's v2 figures leave it out of "used", v1's count it in."""
    temperature: int = 71
    power_mw: int = 215_000
    power_limit_mw: int = 450_000
    sm_clock: int = 2520
    fan: int = 45
    throttle_mask: int = 0x4 | 0x40
    mig_mode: int = 0
    compute: list[Any] = field(default_factory=list)
    graphics: list[Any] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    """NVML function name → error code it returns, every call."""
    lost: bool = False


def proc_info(pid: int, used: int | None, gi: int = 0xFFFFFFFF) -> types.SimpleNamespace:
    """Shaped like nvidia-ml-py's friendly process object (usedGpuMemory None = N/A)."""
    return types.SimpleNamespace(pid=pid, usedGpuMemory=used, gpuInstanceId=gi, computeInstanceId=gi)


class FakeNvml:
    """A stand-in for the `pynvml` module, driven by `FakeGpu`s.

    `module()` builds a real module object whose functions raise nvidia-ml-py's own NVMLError
    subclasses. Names listed in `missing` are absent from it, as in older bindings.
    """

    def __init__(self, gpus: list[FakeGpu] | None = None, *, missing: tuple[str, ...] = ()) -> None:
        self.gpus = gpus if gpus is not None else [FakeGpu()]
        self.missing = set(missing)
        self.init_error: int | None = None
        self.calls: Counter[str] = Counter()
        self.initialised = False

    def _device(self, name: str, handle: FakeGpu) -> FakeGpu:
        self.calls[name] += 1
        if not self.initialised:
            raise nvml_error(pynvml.NVML_ERROR_UNINITIALIZED)
        if handle.lost:
            raise nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)
        if name in handle.errors:
            raise nvml_error(handle.errors[name])
        return handle

    # library
    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            raise nvml_error(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.calls["nvmlShutdown"] += 1
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.65.06"

    def nvmlDeviceGetCount(self) -> int:
        self.calls["nvmlDeviceGetCount"] += 1
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self._device("nvmlDeviceGetHandleByIndex", self.gpus[index])

    # static
    def nvmlDeviceGetName(self, h: FakeGpu) -> str:
        return self._device("nvmlDeviceGetName", h).name

    def nvmlDeviceGetPciInfo(self, h: FakeGpu) -> types.SimpleNamespace:
        return types.SimpleNamespace(busId=self._device("nvmlDeviceGetPciInfo", h).bus_id)

    def nvmlDeviceGetMigMode(self, h: FakeGpu) -> list[int]:
        return [self._device("nvmlDeviceGetMigMode", h).mig_mode, 0]

    # dynamic
    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> types.SimpleNamespace:
        g = self._device("nvmlDeviceGetUtilizationRates", h)
        return types.SimpleNamespace(gpu=g.util_gpu, memory=g.util_memory)

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu, version: int | None = None) -> types.SimpleNamespace:
        g = self._device("nvmlDeviceGetMemoryInfo" if version is None else "nvmlDeviceGetMemoryInfo_v2", h)
        free = g.memory_total - g.memory_used - g.memory_reserved
        if version is None:
            return types.SimpleNamespace(total=g.memory_total, used=g.memory_total - free, free=free)
        return types.SimpleNamespace(
            total=g.memory_total, reserved=g.memory_reserved, used=g.memory_used, free=free
        )

    def nvmlDeviceGetTemperatureV(self, h: FakeGpu, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._device("nvmlDeviceGetTemperatureV", h).temperature

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._device("nvmlDeviceGetTemperature", h).temperature

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetPowerUsage", h).power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetEnforcedPowerLimit", h).power_limit_mw

    def nvmlDeviceGetPowerManagementLimit(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetPowerManagementLimit", h).power_limit_mw

    def nvmlDeviceGetClockInfo(self, h: FakeGpu, clock: int) -> int:
        assert clock == pynvml.NVML_CLOCK_SM
        return self._device("nvmlDeviceGetClockInfo", h).sm_clock

    def nvmlDeviceGetFanSpeed(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetFanSpeed", h).fan

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetCurrentClocksEventReasons", h).throttle_mask

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: FakeGpu) -> int:
        return self._device("nvmlDeviceGetCurrentClocksThrottleReasons", h).throttle_mask

    def _procs(self, name: str, h: FakeGpu, graphics: bool) -> list[Any]:
        g = self._device(name, h)
        return list(g.graphics if graphics else g.compute)

    def nvmlDeviceGetComputeRunningProcesses_v3(self, h: FakeGpu) -> list[Any]:
        return self._procs("nvmlDeviceGetComputeRunningProcesses_v3", h, graphics=False)

    def nvmlDeviceGetComputeRunningProcesses_v2(self, h: FakeGpu) -> list[Any]:
        return self._procs("nvmlDeviceGetComputeRunningProcesses_v2", h, graphics=False)

    def nvmlDeviceGetComputeRunningProcesses(self, h: FakeGpu) -> list[Any]:
        return self._procs("nvmlDeviceGetComputeRunningProcesses", h, graphics=False)

    def nvmlDeviceGetGraphicsRunningProcesses_v3(self, h: FakeGpu) -> list[Any]:
        return self._procs("nvmlDeviceGetGraphicsRunningProcesses_v3", h, graphics=True)

    def nvmlDeviceGetGraphicsRunningProcesses_v2(self, h: FakeGpu) -> list[Any]:
        return self._procs("nvmlDeviceGetGraphicsRunningProcesses_v2", h, graphics=True)

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: FakeGpu) -> list[Any]:
        return self._procs("nvmlDeviceGetGraphicsRunningProcesses", h, graphics=True)

    def module(self) -> types.ModuleType:
        mod = types.ModuleType("pynvml")
        for name in dir(self):
            if name.startswith("nvml") and name not in self.missing:
                setattr(mod, name, getattr(self, name))
        mod.NVMLError = pynvml.NVMLError  # type: ignore[attr-defined]
        for const in ("NVML_TEMPERATURE_GPU", "NVML_CLOCK_SM", "nvmlMemory_v2"):
            if const not in self.missing:
                setattr(mod, const, getattr(pynvml, const))
        return mod

    def loader(self) -> Callable[[], types.ModuleType]:
        return self.module


def ctx(now: float = 0.0, pids: frozenset[int] = frozenset(), interval_s: float = 1.0) -> SampleContext:
    return SampleContext(now=now, interval_s=interval_s, pids=pids)


# ---------------------------------------------------------------------------------------------
# sysfs


def write_tree(root: Path, files: dict[str, str | int]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{content}\n")


def link_driver(device: Path, drivers_dir: Path, driver: str) -> None:
    target = drivers_dir / driver
    target.mkdir(parents=True, exist_ok=True)
    (device / "driver").symlink_to(target)


# ---------------------------------------------------------------------------------------------
# macmon

# Recorded `macmon pipe` lines, one per schema generation (values differ per field on purpose,
# so a test can tell which field a figure came from).
MACMON_LINES: dict[str, str] = {
    "v0.6": json.dumps(
        {
            "temp": {"cpu_temp_avg": 48.5, "gpu_temp_avg": 41.0},
            "memory": {"ram_total": 17179869184, "ram_usage": 9663676416, "swap_total": 0, "swap_usage": 0},
            "ecpu_usage": [1020, 0.25],
            "pcpu_usage": [3228, 0.5],
            "gpu_usage": [1398, 0.61],
            "cpu_power": 2.1,
            "gpu_power": 7.5,
            "ane_power": 0.0,
            "all_power": 9.6,
            "sys_power": 14.2,
            "ram_power": 0.4,
            "gpu_ram_power": 0.1,
            "timestamp": "2025-02-24T20:38:15.427569+00:00",
        }
    ),
    "v0.7": json.dumps(
        {
            "temp": {"cpu_temp_avg": 50.0, "gpu_temp_avg": 0.0},
            "memory": {"ram_total": 34359738368, "ram_usage": 20000000000, "swap_total": 1, "swap_usage": 0},
            "ecpu_usage": [912, 0.1],
            "pcpu_usage": [2000, 0.2],
            "gpu_usage": [444, 0.07],
            "cpu_usage_pct": 0.15,
            "cpu_power": 1.0,
            "gpu_power": 0.3,
            "ane_power": 0.0,
            "all_power": 1.3,
            "sys_power": 0.0,
            "ram_power": 0.2,
            "gpu_ram_power": 0.0,
            "timestamp": "2025-05-01T10:00:00+00:00",
        }
    ),
    "v0.8.0": json.dumps(
        {
            "temp": {"cpu_temp_avg": 55.0, "gpu_temp_avg": 52.0},
            "memory": {"ram_total": 68719476736, "ram_usage": 30000000000, "swap_total": 0, "swap_usage": 0},
            "fans": [{"name": "fan0", "rpm": 1200, "max_rpm": 5000}],
            "cpu_usage_ratio": 0.3,
            "ecpu_freq_mhz": 1100,
            "ecpu_usage_ratio": 0.11,
            "pcpu_freq_mhz": 3500,
            "pcpu_usage_ratio": 0.33,
            "gpu_freq_mhz": 1300,
            "gpu_usage_ratio": 0.77,
            "ecpu_usage": [999, 0.99],
            "pcpu_usage": [999, 0.99],
            "gpu_usage": [999, 0.99],
            "cpu_power": 3.0,
            "gpu_power": 12.0,
            "ane_power": 0.5,
            "all_power": 15.5,
            "sys_power": 20.0,
            "ram_power": 1.0,
            "gpu_ram_power": 0.2,
            "timestamp": "2025-08-01T10:00:00+00:00",
        }
    ),
    "v0.8.2": json.dumps(
        {
            "temp": {"cpu_temp_avg": 61.0, "gpu_temp_avg": 58.5},
            "memory": {"ram_total": 137438953472, "ram_usage": 80000000000, "swap_total": 0, "swap_usage": 0},
            "fans": [],
            "cpu_scaled_ratio": 0.4,
            "cpu_active_ratio": 0.6,
            "ecpu_freq_mhz": 1200,
            "ecpu_scaled_ratio": 0.12,
            "ecpu_active_ratio": 0.5,
            "pcpu_freq_mhz": 4000,
            "pcpu_scaled_ratio": 0.44,
            "pcpu_active_ratio": 0.7,
            "ecpu_cores": [],
            "pcpu_cores": [],
            "gpu_freq_mhz": 1578,
            "gpu_scaled_ratio": 0.88,
            "gpu_active_ratio": 0.95,
            "cpu_power": 4.0,
            "gpu_power": 31.5,
            "ane_power": 0.0,
            "all_power": 35.5,
            "sys_power": 48.0,
            "ram_power": 2.0,
            "gpu_ram_power": 0.3,
            "cpu_usage_pct": 0.4,
            "ecpu_usage": [1200, 0.12],
            "pcpu_usage": [4000, 0.44],
            "gpu_usage": [1111, 0.22],
            "timestamp": "2026-08-04T10:00:00+00:00",
            "soc": {"chip_name": "Apple M4 Max", "gpu_cores": 40},
        }
    ),
}

FAKE_MACMON = textwrap.dedent(
    """
    import json, os, sys, time
    config = json.load(open(sys.argv[1]))
    with open(config["stamps"], "a") as f:
        f.write(json.dumps({"t": time.monotonic(), "pid": os.getpid(), "argv": sys.argv[2:]}) + "\\n")
    for line in config["lines"]:
        print(line, flush=True)
        time.sleep(config.get("gap", 0.0))
    time.sleep(config.get("linger", 0.0))
    if config.get("stderr"):
        print(config["stderr"], file=sys.stderr, flush=True)
    sys.exit(config.get("exit_code", 0))
    """
)


@dataclass
class FakeMacmon:
    """A Python script standing in for `macmon`; ``argv`` is what MacmonSource should prefix."""

    script: Path
    config: Path
    stamps: Path

    def configure(
        self,
        lines: list[str],
        *,
        linger: float = 0.0,
        exit_code: int = 0,
        gap: float = 0.0,
        stderr: str = "",
    ) -> None:
        self.config.write_text(
            json.dumps(
                {
                    "lines": lines,
                    "linger": linger,
                    "exit_code": exit_code,
                    "gap": gap,
                    "stderr": stderr,
                    "stamps": str(self.stamps),
                }
            )
        )

    @property
    def extra_args(self) -> list[str]:
        return [str(self.script), str(self.config)]

    def starts(self) -> list[dict[str, Any]]:
        if not self.stamps.exists():
            return []
        return [json.loads(line) for line in self.stamps.read_text().splitlines() if line.strip()]


PYTHON = sys.executable


# ---------------------------------------------------------------------------------------------
# snapshots


def make_snapshot(
    *,
    monotonic: float = 0.0,
    interval_s: float = 1.0,
    tick: int = 0,
    cpu_percent: float | None = 10.0,
    ram_used: int = 4 * GiB,
    gpus: tuple[GpuSnapshot, ...] = (),
) -> SystemSnapshot:
    cpu = CpuSnapshot(
        percent=cpu_percent,
        per_core_percent=(),
        freq_mhz=None,
        freq_max_mhz=None,
        load_avg=None,
        logical_cores=2,
        physical_cores=2,
        model=None,
    )
    memory = MemorySnapshot(
        total_bytes=24 * GiB,
        available_bytes=24 * GiB - ram_used,
        used_bytes=ram_used,
        swap_used_bytes=0,
        swap_total_bytes=0,
    )
    return SystemSnapshot(
        monotonic=monotonic,
        wall_time=1_700_000_000.0 + monotonic,
        interval_s=interval_s,
        tick=tick,
        cpu=cpu,
        memory=memory,
        gpus=gpus,
    )


# ---------------------------------------------------------------------------------------------
# processes

_PARENT = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "time.sleep(60)\n"
)


def spawn_with_child(timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """A process with one child of its own (server → runner), both sleeping."""
    parent = subprocess.Popen([sys.executable, "-c", _PARENT])
    deadline = time.monotonic() + timeout
    while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
        time.sleep(0.02)
    return parent


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    try:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
    except psutil.NoSuchProcess:
        pass
    proc.kill()
    proc.wait()


# ---------------------------------------------------------------------------------------------
# sources


class StubSource:
    """A source that takes `delay` seconds per sample and records how it was driven."""

    def __init__(self, name: str = "stub", *, delay: float = 0.0, error: Exception | None = None) -> None:
        self._name = name
        self.delay = delay
        self.error = error
        self.contexts: list[SampleContext] = []
        self.closed = 0

    @property
    def name(self) -> str:
        return self._name

    def sample(self, context: SampleContext) -> SourceReading:
        self.contexts.append(context)
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return SourceReading(status=SourceStatus(self._name, SourceState.OK, "fine"))

    def close(self) -> None:
        self.closed += 1

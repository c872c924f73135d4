"""NVIDIA GPUs through NVML (`nvidia-ml-py`, imported as `pynvml`).

NVML is initialised once and its device handles are kept: re-fetching them every tick is
what made other monitors burn a core. Each optional metric is probed once per device and
dropped for good when unsupported (see `FieldProbe`). Fan speed, power limit and
clock-event (throttle) reasons change slowly and are read every `slow_every_s` only.

Failures never escape `sample()`: a missing library or a broken driver becomes a status line,
and initialisation is retried every 30 s; a lost GPU is reported as such while the others
keep reporting, until the next re-initialisation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from lollma_tui.core.hardware import nvml_probe as codes
from lollma_tui.core.hardware.nvml_probe import NOT_SUPPORTED, FieldProbe, GpuLostError, nvml_error_code
from lollma_tui.core.hardware.snapshots import (
    GpuProcessMemory,
    GpuSnapshot,
    GpuState,
    GpuVendor,
    SourceState,
)
from lollma_tui.core.hardware.source import RETRY_AFTER_S, SampleContext, SourceReading, status

NvmlLoader = Callable[[], Any]

_RETRY = f"retrying every {RETRY_AFTER_S:.0f} s"
_NOT_AVAILABLE = (1 << 64) - 1  # NVML_VALUE_NOT_AVAILABLE for unsigned long long
_SILENT_FOR_S = 3.0  # a GPU that answers only errors this long is taken as lost
_MIG_ENABLED = 1

THROTTLE_REASON_NAMES: tuple[tuple[int, str], ...] = (
    (0x001, "idle"),
    (0x002, "app clocks"),
    (0x004, "power cap"),
    (0x008, "hw slowdown"),
    (0x010, "sync boost"),
    (0x020, "sw thermal"),
    (0x040, "hw thermal"),
    (0x080, "power brake"),
    (0x100, "display clock"),
)
"""NVML clock-event reason bits and the short names the UI shows for them."""


def import_pynvml() -> Any:
    """The import seam for NVML: tests pass their own loader returning a fake module.

    Raises ImportError when `nvidia-ml-py` is missing, or when the `pynvml` found is some
    other package of that name that lacks the calls we rely on.
    """
    import pynvml

    if not hasattr(pynvml, "nvmlInitWithFlags") or not hasattr(pynvml, "nvmlDeviceGetHandleByIndex"):
        raise ImportError("the installed 'pynvml' is not nvidia-ml-py; reinstall nvidia-ml-py")
    return pynvml


def throttle_reason_names(mask: int) -> tuple[str, ...]:
    return tuple(name for bit, name in THROTTLE_REASON_NAMES if mask & bit)


def init_failure_status(exc: BaseException) -> tuple[SourceState, str]:
    """Classify an `nvmlInit` failure into a state and one actionable line."""
    code = nvml_error_code(exc)
    if code == codes.LIBRARY_NOT_FOUND:
        return SourceState.ABSENT, "No NVIDIA driver (libnvidia-ml not found)"
    if code == codes.DRIVER_NOT_LOADED:
        return SourceState.ERROR, f"NVIDIA driver not loaded — {_RETRY}"
    if code == codes.LIB_RM_VERSION_MISMATCH:
        return (
            SourceState.ERROR,
            f"NVIDIA driver/library version mismatch (reboot or reload the nvidia module) — {_RETRY}",
        )
    if code == codes.NO_PERMISSION:
        return SourceState.ERROR, f"No permission to open the NVIDIA device — {_RETRY}"
    if code == codes.UNKNOWN:
        return (
            SourceState.ERROR,
            f"NVML unknown error (in a container: GPU access lost, recreate it) — {_RETRY}",
        )
    return SourceState.ERROR, f"NVML failed to start: {exc} — {_RETRY}"


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def sysfs_pci_address(nvml_bus_id: str) -> str:
    """ "00000000:01:00.0" (NVML, 8-digit domain) → "0000:01:00.0" (sysfs), lower case."""
    domain, sep, rest = nvml_bus_id.strip().partition(":")
    if not sep:
        return nvml_bus_id.strip().lower()
    try:
        return f"{int(domain, 16):04x}:{rest.lower()}"
    except ValueError:
        return nvml_bus_id.strip().lower()


@dataclass(slots=True)
class _Device:
    index: int
    handle: Any
    name: str
    bus_id: str | None
    mig_enabled: bool
    utilization: FieldProbe
    memory: FieldProbe
    temperature: FieldProbe
    power: FieldProbe
    power_limit: FieldProbe
    clock: FieldProbe
    fan: FieldProbe
    throttle: FieldProbe
    compute_procs: FieldProbe
    graphics_procs: FieldProbe
    lost: bool = False
    unreadable: str | None = None
    """Why the driver would not open it (NVML's words); it is not asked again until re-init."""
    retried: bool = False
    """Whether that was an error worth asking again (a timeout, too little power), not a
    refusal: NVML is started again after `retry_after_s`, as for a lost GPU."""
    slow_read_at: float | None = None
    silent_since: float | None = None
    """When every reading of it began to fail with errors worth retrying."""
    fan_percent: float | None = None
    power_limit_w: float | None = None
    throttle_reasons: tuple[str, ...] | None = None
    runtime_status: Path | None = field(default=None)


class NvidiaSource:
    """NVML-backed GPU source.

    `nvml_loader` is the seam tests use to inject a fake `pynvml` module. `sysfs_root` lets
    a sleeping (runtime-suspended) laptop GPU be spotted before NVML wakes it.
    """

    def __init__(
        self,
        nvml_loader: NvmlLoader = import_pynvml,
        *,
        slow_every_s: float = 5.0,
        retry_after_s: float = RETRY_AFTER_S,
        sysfs_root: Path = Path("/sys"),
    ) -> None:
        self._loader = nvml_loader
        self._slow_every_s = slow_every_s
        self._retry_after_s = retry_after_s
        self._sysfs_root = sysfs_root
        self._nvml: Any = None
        self._devices: list[_Device] = []
        self._driver: str | None = None
        self._next_init_at: float | None = None  # None: try at the next sample
        self._failure: tuple[SourceState, str] | None = None
        self._lost_since: float | None = None

    @property
    def name(self) -> str:
        return "nvidia"

    # -- lifecycle ---------------------------------------------------------------------------

    def _start(self, now: float) -> None:
        self._failure = None
        try:
            nvml = self._loader()
        except ImportError:
            self._fail(now, SourceState.ABSENT, "nvidia-ml-py not installed (NVIDIA GPUs not monitored)")
            return
        except Exception as exc:
            self._fail(now, SourceState.ERROR, f"cannot load NVML bindings: {exc} — {_RETRY}")
            return
        try:
            nvml.nvmlInit()
        except Exception as exc:
            self._fail(now, *init_failure_status(exc))
            return
        self._nvml = nvml
        try:
            count = int(nvml.nvmlDeviceGetCount())
            devices = [self._open_device_or_lost(i) for i in range(count)]
        except Exception as exc:
            self._shutdown()
            self._fail(now, SourceState.ERROR, f"NVML could not list GPUs: {exc} — {_RETRY}")
            return
        if not devices:
            self._shutdown()
            self._fail(now, SourceState.ABSENT, "NVML sees no NVIDIA GPU")
            return
        self._devices = devices
        self._lost_since = None
        try:
            self._driver = _text(nvml.nvmlSystemGetDriverVersion())
        except Exception:
            self._driver = None

    def _fail(self, now: float, state: SourceState, message: str) -> None:
        self._failure = (state, message)
        self._next_init_at = now + self._retry_after_s

    def _shutdown(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):  # already gone: nothing useful to report
                self._nvml.nvmlShutdown()
        self._nvml = None
        self._devices = []

    def close(self) -> None:
        self._shutdown()
        self._next_init_at = None
        self._failure = None

    def _open_device_or_lost(self, index: int) -> _Device:
        # A GPU still lost at (re)initialisation, or one the driver will not open for us (a
        # shared server's GPU we have no permission to), must not hide the healthy ones.
        unreadable = None
        code: int | None = None
        try:
            return self._open_device(index)
        except Exception as exc:
            code = nvml_error_code(exc)
            if not isinstance(exc, GpuLostError) and code != codes.GPU_IS_LOST:
                if code is None or code == codes.UNINITIALIZED:
                    raise
                unreadable = str(exc) or f"NVML error {code}"
        dead = FieldProbe()
        return _Device(
            index=index,
            handle=None,
            name=f"NVIDIA GPU {index}",
            bus_id=None,
            mig_enabled=False,
            utilization=dead,
            memory=dead,
            temperature=dead,
            power=dead,
            power_limit=dead,
            clock=dead,
            fan=dead,
            throttle=dead,
            compute_procs=dead,
            graphics_procs=dead,
            lost=unreadable is None,
            unreadable=unreadable,
            retried=unreadable is not None and code != codes.NO_PERMISSION,
        )

    def _open_device(self, index: int) -> _Device:
        nvml = self._nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        name = _text(FieldProbe(lambda: nvml.nvmlDeviceGetName(handle)).read() or f"NVIDIA GPU {index}")
        pci = FieldProbe(lambda: nvml.nvmlDeviceGetPciInfo(handle)).read()
        bus_id = _text(pci.busId) if pci is not None and hasattr(pci, "busId") else None
        mig = FieldProbe(lambda: nvml.nvmlDeviceGetMigMode(handle)).read()
        mig_enabled = bool(mig) and int(mig[0]) == _MIG_ENABLED
        temp_sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        sm_clock = getattr(nvml, "NVML_CLOCK_SM", 1)
        memory_v2 = getattr(nvml, "nvmlMemory_v2", None)
        memory_variants: list[Callable[[], Any]] = []
        if memory_v2 is not None:
            # v2 leaves driver-reserved memory out of "used", as nvidia-smi does.
            memory_variants.append(lambda: nvml.nvmlDeviceGetMemoryInfo(handle, version=memory_v2))
        memory_variants.append(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        runtime_status = None
        if bus_id:
            runtime_status = (
                self._sysfs_root / "bus/pci/devices" / sysfs_pci_address(bus_id) / "power/runtime_status"
            )
        return _Device(
            index=index,
            handle=handle,
            name=name,
            bus_id=bus_id,
            mig_enabled=mig_enabled,
            utilization=FieldProbe(lambda: nvml.nvmlDeviceGetUtilizationRates(handle)),
            memory=FieldProbe(*memory_variants),
            temperature=FieldProbe(
                lambda: nvml.nvmlDeviceGetTemperatureV(handle, temp_sensor),
                lambda: nvml.nvmlDeviceGetTemperature(handle, temp_sensor),
            ),
            power=FieldProbe(lambda: nvml.nvmlDeviceGetPowerUsage(handle)),
            power_limit=FieldProbe(
                lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle),
                lambda: nvml.nvmlDeviceGetPowerManagementLimit(handle),
            ),
            clock=FieldProbe(lambda: nvml.nvmlDeviceGetClockInfo(handle, sm_clock)),
            fan=FieldProbe(lambda: nvml.nvmlDeviceGetFanSpeed(handle)),
            throttle=FieldProbe(
                lambda: nvml.nvmlDeviceGetCurrentClocksEventReasons(handle),
                lambda: nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle),
            ),
            compute_procs=FieldProbe(*self._process_variants("nvmlDeviceGetComputeRunningProcesses", handle)),
            graphics_procs=FieldProbe(
                *self._process_variants("nvmlDeviceGetGraphicsRunningProcesses", handle)
            ),
            runtime_status=runtime_status,
        )

    def _process_variants(self, base: str, handle: Any) -> list[Callable[[], Any]]:
        # Newest struct first: the _v3/_v2 symbols exist only in newer drivers, and the
        # unversioned name means v1 in old bindings but v3 in new ones.
        nvml = self._nvml
        variants: list[Callable[[], Any]] = []
        for suffix in ("_v3", "_v2", ""):
            fn = getattr(nvml, base + suffix, None)
            if fn is not None:
                variants.append(partial(fn, handle))
        return variants

    # -- sampling ----------------------------------------------------------------------------

    def sample(self, context: SampleContext) -> SourceReading:
        try:
            return self._sample(context)
        except Exception as exc:  # a bug or a driver oddity: restart NVML later, keep the app alive
            self._shutdown()
            self._fail(context.now, SourceState.ERROR, f"NVML error: {exc} — {_RETRY}")
            return self._failure_reading()

    def _sample(self, context: SampleContext) -> SourceReading:
        now = context.now
        lost_long_enough = self._lost_since is not None and now - self._lost_since >= self._retry_after_s
        if lost_long_enough:
            self._shutdown()
            self._next_init_at = None
        if self._nvml is None:
            if self._next_init_at is not None and now < self._next_init_at:
                return self._failure_reading()
            self._start(now)
            if self._nvml is None:
                return self._failure_reading()

        gpus = tuple(self._sample_device(dev, context) for dev in self._devices)
        lost = [d for d in self._devices if d.lost]
        unopened = [d for d in self._devices if d.retried]
        if lost or unopened:
            # Either is asked again at the next start: a GPU that timed out once at start-up
            # stayed unreadable for the whole session, and NVML's reason was never shown.
            if self._lost_since is None:
                self._lost_since = now
            parts = [f"GPU {d.index} did not open: {d.unreadable}" for d in unopened]
            if lost:
                names = ", ".join(f"GPU {d.index} ({d.name})" for d in lost)
                verb = "is" if len(lost) == 1 else "are"
                parts.append(f"{names} {verb} lost (fell off the bus or stopped answering)")
            line = f"{'; '.join(parts)} — {_RETRY}"
            return SourceReading(status=status(self.name, SourceState.ERROR, line), gpus=gpus)
        count = len(gpus)
        line = f"NVML: {count} GPU{'s' if count != 1 else ''}"
        if self._driver:
            line += f", driver {self._driver}"
        refused = [f"GPU {d.index}: {d.unreadable}" for d in self._devices if d.unreadable]
        if refused:
            line += f" ({'; '.join(refused)})"
        return SourceReading(status=status(self.name, SourceState.OK, line), gpus=gpus)

    def _failure_reading(self) -> SourceReading:
        state, message = self._failure or (SourceState.ERROR, f"NVML not started — {_RETRY}")
        return SourceReading(status=status(self.name, state, message))

    def _asleep(self, dev: _Device) -> bool:
        if dev.runtime_status is None:
            return False
        try:
            return dev.runtime_status.read_text().strip() == "suspended"
        except OSError:
            return False

    def _sample_device(self, dev: _Device, context: SampleContext) -> GpuSnapshot:
        base = GpuSnapshot(
            index=dev.index,
            name=dev.name,
            vendor=GpuVendor.NVIDIA,
            mig_enabled=dev.mig_enabled,
            bus_id=dev.bus_id,
        )
        if dev.lost:
            return replace(base, state=GpuState.LOST)
        if dev.unreadable:
            return replace(base, state=GpuState.UNREADABLE)
        if self._asleep(dev):
            return replace(base, state=GpuState.ASLEEP)
        try:
            return self._read_device(dev, base, context)
        except GpuLostError:
            dev.lost = True
            return replace(base, state=GpuState.LOST)

    def _read_device(self, dev: _Device, base: GpuSnapshot, context: SampleContext) -> GpuSnapshot:
        util = dev.utilization.read()
        memory = dev.memory.read()
        temperature = dev.temperature.read()
        power_mw = dev.power.read()
        clock = dev.clock.read()
        self._check_answering(dev, context.now)
        if dev.slow_read_at is None or context.now - dev.slow_read_at >= self._slow_every_s:
            dev.slow_read_at = context.now
            fan = dev.fan.read()
            dev.fan_percent = float(fan) if fan is not None else None
            limit_mw = dev.power_limit.read()
            dev.power_limit_w = limit_mw / 1000.0 if limit_mw else None
            mask = dev.throttle.read()
            dev.throttle_reasons = throttle_reason_names(int(mask)) if mask is not None else None

        unified = False
        used: int | None = None
        total: int | None = None
        free: int | None = None
        if memory is None:
            # Integrated parts (GB10, Jetson/Thor) share system RAM and say the call is not
            # supported; a card that refuses it (no permission) has memory of its own, unknown.
            unified = dev.memory.supported is False and dev.memory.refused_with == NOT_SUPPORTED
        elif int(memory.total) == 0:
            unified = True
        else:
            used, total = int(memory.used), int(memory.total)
            free = int(memory.free)

        processes: tuple[GpuProcessMemory, ...] = ()
        if context.pids:
            processes = self._process_memory(dev, context.pids)

        return GpuSnapshot(
            index=base.index,
            name=base.name,
            vendor=base.vendor,
            utilization_percent=float(util.gpu) if util is not None else None,
            memory_bandwidth_percent=float(util.memory) if util is not None else None,
            memory_used_bytes=used,
            memory_total_bytes=total,
            memory_free_bytes=free,
            temperature_c=float(temperature) if temperature is not None else None,
            power_w=power_mw / 1000.0 if power_mw is not None else None,
            power_limit_w=dev.power_limit_w,
            clock_mhz=int(clock) if clock is not None else None,
            fan_percent=dev.fan_percent,
            throttle_reasons=dev.throttle_reasons,
            unified_memory=unified,
            mig_enabled=base.mig_enabled,
            bus_id=base.bus_id,
            processes=processes,
        )

    def _check_answering(self, dev: _Device, now: float) -> None:
        """A GPU that answers nothing but "unknown error" for a while counts as lost: in a
        container that lost its device access NVML says that forever, and the GPU showed as OK
        with every figure blank. Lost, it is named in the status line and NVML is restarted."""
        core = (dev.utilization, dev.memory, dev.temperature, dev.power, dev.clock)
        silent = any(probe.missed for probe in core) and all(
            probe.missed or probe.supported is False for probe in core
        )
        if not silent:
            dev.silent_since = None
        elif dev.silent_since is None:
            dev.silent_since = now
        elif now - dev.silent_since >= _SILENT_FOR_S:
            raise GpuLostError(f"GPU {dev.index} answers every call with an error")

    def _process_memory(self, dev: _Device, pids: frozenset[int]) -> tuple[GpuProcessMemory, ...]:
        merged: dict[int, int | None] = {}
        for probe in (dev.compute_procs, dev.graphics_procs):
            entries = probe.read()
            if not entries:
                continue
            # Within one list a pid repeats once per MIG instance: add those up. A pid in both
            # lists (compute + graphics) is one allocation reported twice: take the larger.
            per_list: dict[int, int | None] = {}
            for entry in entries:
                pid = int(entry.pid)
                if pid not in pids:
                    continue
                used = _used_memory(entry)
                if pid in per_list:
                    prev = per_list[pid]
                    per_list[pid] = None if prev is None or used is None else prev + used
                else:
                    per_list[pid] = used
            for pid, used in per_list.items():
                if pid not in merged:
                    merged[pid] = used
                else:
                    prev = merged[pid]
                    merged[pid] = used if prev is None else prev if used is None else max(prev, used)
        return tuple(GpuProcessMemory(pid=pid, used_bytes=merged[pid]) for pid in sorted(merged))


def _used_memory(entry: Any) -> int | None:
    used = getattr(entry, "usedGpuMemory", None)
    if used is None or not isinstance(used, int) or used >= _NOT_AVAILABLE:
        return None
    return used

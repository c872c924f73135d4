"""Recent values for sparklines, and the ok/warm/hot classification the UI colours by.

The history is bounded to about two minutes at the current interval. Every series has one
entry per snapshot, so they line up column for column: a GPU that appears late is padded with
None at the front, and one that goes missing gets None for the ticks it is absent.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from lollma_tui.core.hardware.snapshots import GpuSnapshot, SystemSnapshot

HISTORY_WINDOW_S = 120.0


class Level(StrEnum):
    OK = "ok"
    WARM = "warm"
    HOT = "hot"


class Metric(StrEnum):
    TEMPERATURE_C = "temperature_c"
    UTILIZATION_PERCENT = "utilization_percent"
    MEMORY_FRACTION = "memory_fraction"
    """RAM or VRAM used / total, 0..1."""
    SWAP_FRACTION = "swap_fraction"
    POWER_FRACTION = "power_fraction"
    """Power draw / power limit, 0..1."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    warm: float
    """Values at or above this are "warm"."""
    hot: float
    """Values at or above this are "hot"."""


THRESHOLDS: Mapping[Metric, Thresholds] = MappingProxyType(
    {
        # GPUs start to cut clocks in the mid-80s °C; the 70s are normal under sustained load.
        Metric.TEMPERATURE_C: Thresholds(warm=75.0, hot=85.0),
        Metric.UTILIZATION_PERCENT: Thresholds(warm=70.0, hot=90.0),
        # Past ~95 % a model load or a longer context fails or spills to swap.
        Metric.MEMORY_FRACTION: Thresholds(warm=0.80, hot=0.95),
        # Any real swap use slows token generation badly, so swap turns hot early.
        Metric.SWAP_FRACTION: Thresholds(warm=0.05, hot=0.25),
        Metric.POWER_FRACTION: Thresholds(warm=0.80, hot=0.95),
    }
)
"""Default thresholds; pass your own mapping to `classify` to override any of them."""


def classify(metric: Metric, value: float, thresholds: Mapping[Metric, Thresholds] = THRESHOLDS) -> Level:
    """ "ok", "warm" or "hot" for `value`, by `thresholds[metric]` (NaN counts as "ok")."""
    limits = thresholds[metric]
    if math.isnan(value) or value < limits.warm:
        return Level.OK
    return Level.HOT if value >= limits.hot else Level.WARM


Series = tuple[float | None, ...]


class HardwareHistory:
    """Bounded per-metric series fed with `add(snapshot)` on every snapshot."""

    CPU = "cpu_percent"
    RAM = "ram_used_bytes"

    def __init__(self, interval_s: float = 1.0, window_s: float = HISTORY_WINDOW_S) -> None:
        self._window_s = window_s
        self._maxlen = self._length_for(interval_s)
        self._count = 0
        self._series: dict[str, deque[float | None]] = {}
        self._gpu_keys: list[str] = []

    def _length_for(self, interval_s: float) -> int:
        if interval_s <= 0:
            raise ValueError(f"interval must be positive, not {interval_s!r}")
        return max(2, math.ceil(self._window_s / interval_s))

    @property
    def maxlen(self) -> int:
        return self._maxlen

    def __len__(self) -> int:
        return min(self._count, self._maxlen)

    def set_interval(self, interval_s: float) -> None:
        """Resize for a new interval, keeping the newest values."""
        self._maxlen = self._length_for(interval_s)
        self._series = {name: deque(values, maxlen=self._maxlen) for name, values in self._series.items()}

    def add(self, snapshot: SystemSnapshot) -> None:
        if snapshot.interval_s > 0 and self._length_for(snapshot.interval_s) != self._maxlen:
            self.set_interval(snapshot.interval_s)
        values: dict[str, float | None] = {
            self.CPU: snapshot.cpu.percent if snapshot.cpu is not None else None,
            self.RAM: float(snapshot.memory.used_bytes) if snapshot.memory is not None else None,
        }
        for gpu in snapshot.gpus:
            if gpu.key not in self._gpu_keys:
                self._gpu_keys.append(gpu.key)
            values.update(_gpu_values(gpu))
        for key in self._gpu_keys:
            for name in _gpu_series_names(key):
                values.setdefault(name, None)
        for name, value in values.items():
            series = self._series.get(name)
            if series is None:
                series = deque([None] * len(self), maxlen=self._maxlen)
                self._series[name] = series
            series.append(value)
        self._count += 1

    def series(self, name: str) -> Series:
        return tuple(self._series.get(name, ()))

    def cpu_percent(self) -> Series:
        return self.series(self.CPU)

    def ram_used_bytes(self) -> Series:
        return self.series(self.RAM)

    def gpu_keys(self) -> tuple[str, ...]:
        """Every GPU seen so far, in the order first seen ("nvidia0", "amd1", …)."""
        return tuple(self._gpu_keys)

    def gpu_utilization(self, key: str) -> Series:
        return self.series(f"{key}.utilization_percent")

    def gpu_memory_used(self, key: str) -> Series:
        return self.series(f"{key}.memory_used_bytes")

    def gpu_power(self, key: str) -> Series:
        return self.series(f"{key}.power_w")


def _gpu_series_names(key: str) -> tuple[str, str, str]:
    return (f"{key}.utilization_percent", f"{key}.memory_used_bytes", f"{key}.power_w")


def _gpu_values(gpu: GpuSnapshot) -> dict[str, float | None]:
    util, mem, power = _gpu_series_names(gpu.key)
    return {
        util: gpu.utilization_percent,
        mem: float(gpu.memory_used_bytes) if gpu.memory_used_bytes is not None else None,
        power: gpu.power_w,
    }

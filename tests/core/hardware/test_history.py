"""HardwareHistory bounds and alignment, and the ok/warm/hot classification."""

from __future__ import annotations

import math

import pytest
from hw_fakes import GiB, make_snapshot

from lollma_tui.core.hardware.history import (
    THRESHOLDS,
    HardwareHistory,
    Level,
    Metric,
    Thresholds,
    classify,
)
from lollma_tui.core.hardware.snapshots import GpuSnapshot, GpuVendor


def gpu(
    util: float | None, index: int = 0, vram: int | None = GiB, power: float | None = 100.0
) -> GpuSnapshot:
    return GpuSnapshot(
        index, "gpu", GpuVendor.NVIDIA, utilization_percent=util, memory_used_bytes=vram, power_w=power
    )


@pytest.mark.parametrize(
    ("metric", "value", "level"),
    [
        (Metric.TEMPERATURE_C, 74.9, Level.OK),
        (Metric.TEMPERATURE_C, 75.0, Level.WARM),
        (Metric.TEMPERATURE_C, 84.9, Level.WARM),
        (Metric.TEMPERATURE_C, 85.0, Level.HOT),
        (Metric.UTILIZATION_PERCENT, 10.0, Level.OK),
        (Metric.UTILIZATION_PERCENT, 95.0, Level.HOT),
        (Metric.MEMORY_FRACTION, 0.5, Level.OK),
        (Metric.MEMORY_FRACTION, 0.85, Level.WARM),
        (Metric.MEMORY_FRACTION, 0.97, Level.HOT),
        (Metric.SWAP_FRACTION, 0.0, Level.OK),
        (Metric.SWAP_FRACTION, 0.3, Level.HOT),
        (Metric.POWER_FRACTION, 0.9, Level.WARM),
        (Metric.TEMPERATURE_C, math.nan, Level.OK),
    ],
)
def test_classify(metric: Metric, value: float, level: Level) -> None:
    assert classify(metric, value) is level


def test_classify_with_custom_thresholds() -> None:
    cooler = {**THRESHOLDS, Metric.TEMPERATURE_C: Thresholds(warm=60.0, hot=70.0)}
    assert classify(Metric.TEMPERATURE_C, 65.0, cooler) is Level.WARM
    assert classify(Metric.TEMPERATURE_C, 65.0) is Level.OK
    assert str(Level.HOT) == "hot"  # the UI maps these names onto theme variables


def test_history_is_bounded_to_about_two_minutes() -> None:
    history = HardwareHistory(interval_s=1.0)
    assert history.maxlen == 120
    for i in range(130):
        history.add(make_snapshot(cpu_percent=float(i), ram_used=i * GiB // 100))
    cpu = history.cpu_percent()
    assert len(cpu) == 120
    assert cpu[0] == 10.0
    assert cpu[-1] == 129.0
    assert history.ram_used_bytes()[-1] == float(129 * GiB // 100)
    assert len(history) == 120


def test_history_resizes_with_the_interval_keeping_the_newest() -> None:
    history = HardwareHistory(interval_s=0.5)
    assert history.maxlen == 240
    for i in range(200):
        history.add(make_snapshot(cpu_percent=float(i), interval_s=0.5))
    history.add(make_snapshot(cpu_percent=200.0, interval_s=2.0))
    assert history.maxlen == 60
    cpu = history.cpu_percent()
    assert len(cpu) == 60
    assert cpu[-1] == 200.0
    assert cpu[0] == 141.0


def test_gpu_series_stay_aligned_with_cpu() -> None:
    history = HardwareHistory()
    history.add(make_snapshot(cpu_percent=1.0))
    history.add(make_snapshot(cpu_percent=2.0, gpus=(gpu(50.0),)))
    history.add(make_snapshot(cpu_percent=3.0))  # GPU missing this tick (lost, asleep)
    history.add(make_snapshot(cpu_percent=4.0, gpus=(gpu(70.0, power=None), gpu(5.0, index=1))))

    assert history.gpu_keys() == ("nvidia0", "nvidia1")
    assert history.cpu_percent() == (1.0, 2.0, 3.0, 4.0)
    assert history.gpu_utilization("nvidia0") == (None, 50.0, None, 70.0)
    assert history.gpu_power("nvidia0") == (None, 100.0, None, None)
    assert history.gpu_memory_used("nvidia0") == (None, float(GiB), None, float(GiB))
    assert history.gpu_utilization("nvidia1") == (None, None, None, 5.0)
    assert history.gpu_utilization("amd0") == ()

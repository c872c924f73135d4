"""Snapshots built from the real dataclasses, and small apps that host the hardware panel."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from pilot_support import ThemedApp
from textual.app import App, ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Static

from lollma_tui.core.hardware import (
    CpuSnapshot,
    GpuSnapshot,
    GpuVendor,
    HardwareHistory,
    MemorySnapshot,
    ProcessSnapshot,
    SourceState,
    SourceStatus,
    SystemSnapshot,
)
from lollma_tui.ui.widgets.hardware_panel import HardwarePanel

GiB = 1 << 30
MiB = 1 << 20

HOST_OK = SourceStatus("host", SourceState.OK, "CPU and memory via psutil", 0.001)
NVIDIA_OK = SourceStatus("nvidia", SourceState.OK, "NVML 580.65.06", 0.002)
NVIDIA_ABSENT = SourceStatus("nvidia", SourceState.ABSENT, "No NVIDIA driver (libnvidia-ml not found)", 0.0)
NVIDIA_MISMATCH = SourceStatus(
    "nvidia",
    SourceState.ERROR,
    "Driver/library version mismatch — reboot or reload the nvidia module",
    0.001,
)


def cpu(percent: float | None = 37.0, cores: int = 8) -> CpuSnapshot:
    return CpuSnapshot(
        percent=percent,
        per_core_percent=tuple(float((i * 13) % 100) for i in range(cores)),
        freq_mhz=3400.0,
        freq_max_mhz=4800.0,
        load_avg=(2.5, 1.75, 1.25),
        logical_cores=cores,
        physical_cores=cores // 2,
        model="AMD Ryzen 9 7950X",
    )


def memory(used: int = 11 * GiB, total: int = 32 * GiB, swap_used: int = 0) -> MemorySnapshot:
    return MemorySnapshot(
        total_bytes=total,
        available_bytes=total - used,
        used_bytes=used,
        swap_used_bytes=swap_used,
        swap_total_bytes=8 * GiB,
    )


def gpu(index: int = 0, *, temperature: float = 64.0, **fields: Any) -> GpuSnapshot:
    values: dict[str, Any] = {
        "name": "NVIDIA GeForce RTX 4090",
        "utilization_percent": 42.0,
        "memory_bandwidth_percent": 30.0,
        "memory_used_bytes": 8 * GiB,
        "memory_total_bytes": 24 * GiB,
        "power_w": 180.0,
        "power_limit_w": 450.0,
        "clock_mhz": 2520,
        "fan_percent": 45.0,
        "throttle_reasons": (),
        "bus_id": f"00000000:0{index + 1}:00.0",
    }
    values.update(fields)
    return GpuSnapshot(index=index, vendor=GpuVendor.NVIDIA, temperature_c=temperature, **values)


def two_gpus_one_hot() -> tuple[GpuSnapshot, ...]:
    return (
        gpu(0, temperature=61.0),
        gpu(
            1,
            temperature=91.0,
            utilization_percent=99.0,
            memory_used_bytes=23 * GiB,
            power_w=440.0,
            throttle_reasons=("hw thermal", "power cap"),
        ),
    )


def snapshot(
    *,
    tick: int = 0,
    monotonic: float = 100.0,
    interval_s: float = 1.0,
    cpu_snapshot: CpuSnapshot | None = None,
    memory_snapshot: MemorySnapshot | None = None,
    gpus: tuple[GpuSnapshot, ...] = (),
    sources: tuple[SourceStatus, ...] = (HOST_OK, NVIDIA_ABSENT),
    processes: tuple[ProcessSnapshot, ...] = (),
    hint: str | None = None,
) -> SystemSnapshot:
    return SystemSnapshot(
        monotonic=monotonic,
        wall_time=1_700_000_000.0,
        interval_s=interval_s,
        tick=tick,
        cpu=cpu_snapshot if cpu_snapshot is not None else cpu(),
        memory=memory_snapshot if memory_snapshot is not None else memory(),
        gpus=gpus,
        processes=processes,
        sources=sources,
        hint=hint,
        sample_cost_s=0.003,
    )


def series(count: int, gpus: tuple[GpuSnapshot, ...] = ()) -> list[SystemSnapshot]:
    """`count` ticks with a CPU load that rises and falls, so the strips have a shape."""
    shape = [5, 12, 30, 55, 80, 95, 70, 40, 20, 10]
    result = []
    for tick in range(count):
        load = float(shape[tick % len(shape)])
        ticking = tuple(replace(g, utilization_percent=min(100.0, load + 10 * g.index)) for g in gpus)
        result.append(
            snapshot(
                tick=tick,
                monotonic=100.0 + tick,
                cpu_snapshot=cpu(load),
                memory_snapshot=memory(used=(10 + tick % 4) * GiB),
                gpus=ticking,
                sources=(HOST_OK, NVIDIA_OK) if gpus else (HOST_OK, NVIDIA_ABSENT),
            )
        )
    return result


def history_of(snapshots: Iterable[SystemSnapshot], interval_s: float = 1.0) -> HardwareHistory:
    history = HardwareHistory(interval_s)
    for item in snapshots:
        history.add(item)
    return history


def worker_process(pid: int = 4242) -> ProcessSnapshot:
    return ProcessSnapshot(
        pid=pid,
        name="python3",
        rss_bytes=412 * MiB,
        cpu_percent=180.0,
        vram_bytes=None,
        total_rss_bytes=412 * MiB,
        total_cpu_percent=180.0,
        total_vram_bytes=6 * GiB,
    )


class ThemedTestApp(ThemedApp):
    """Loads lollma-tui's themes like the real apps, and starts on `theme_name`; the panel
    brings its own stylesheet, as in the real apps."""


class SidebarApp(ThemedTestApp):
    """The main screen's shape: a chat column and a 30-column sidebar holding the panel."""

    CSS = """
    #chat { width: 1fr; }
    #sidebar { width: 30; border-left: vkey $panel; padding: 0 1; background: $surface; }
    """

    def __init__(self, panel: HardwarePanel | None = None) -> None:
        super().__init__()
        self._panel = panel or HardwarePanel(id="hardware")

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static("chat", id="chat")
            with VerticalScroll(id="sidebar"):
                yield self._panel

    @property
    def panel(self) -> HardwarePanel:
        return self.query_one(HardwarePanel)


class FullScreenApp(ThemedTestApp):
    """The panel over the whole screen, as `lollma-tui monitor` shows it."""

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield HardwarePanel(id="hardware")

    @property
    def panel(self) -> HardwarePanel:
        return self.query_one(HardwarePanel)


def screen_text(app: App[Any]) -> list[str]:
    """What the terminal shows, one string per row."""
    return ["".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips()]


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Let the app run until `condition()` holds; fails after `limit_s` seconds."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {limit_s} s")
        await pilot.pause(0.05)

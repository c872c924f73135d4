"""Shared pieces of the bench and quantize screen tests: a host app, real tiny models, waiting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pilot_support import ThemedApp
from textual.message import Message
from textual.screen import Screen

from lollma_tui.core.hardware import CpuSnapshot, MemorySnapshot, SystemSnapshot

UI_DIR = Path(__file__).resolve().parents[2] / "lollma_tui" / "ui"


class HostApp(ThemedApp):
    """The screens in an app with the real stylesheets, as the main app will show them."""

    CSS_PATH = [UI_DIR / "app.tcss", UI_DIR / "bench_screens.tcss"]

    def __init__(self) -> None:
        super().__init__()
        self.results: list[Any] = []
        self.messages: list[Message] = []

    def open(self, screen: Screen[Any]) -> None:
        # Pushed from the app's own task, so the screen runs in its context (and message hook).
        self.call_later(self.push_screen, screen, self.results.append)

    def on_bench_screen_apply_best(self, message: Message) -> None:
        self.messages.append(message)

    def on_bench_screen_finished(self, message: Message) -> None:
        self.messages.append(message)


def files_in(folder: Path) -> list[str]:
    """Every entry, hidden ones (the quantizer's partial files) included."""
    return sorted(entry.name for entry in folder.iterdir())


def host_snapshot(used_gib: int = 11, total_gib: int = 32, cpu_percent: float = 37.0) -> SystemSnapshot:
    """A sample as the app's sampler hands it over: CPU and memory, no GPU."""
    gib = 1 << 30
    return SystemSnapshot(
        monotonic=100.0,
        wall_time=1_700_000_000.0,
        interval_s=1.0,
        tick=1,
        cpu=CpuSnapshot(
            percent=cpu_percent,
            per_core_percent=(cpu_percent,) * 4,
            freq_mhz=None,
            freq_max_mhz=None,
            load_avg=(1.5, 1.0, 0.5),
            logical_cores=4,
            physical_cores=2,
            model=None,
        ),
        memory=MemorySnapshot(
            total_bytes=total_gib * gib,
            available_bytes=(total_gib - used_gib) * gib,
            used_bytes=used_gib * gib,
            swap_used_bytes=0,
            swap_total_bytes=0,
        ),
    )

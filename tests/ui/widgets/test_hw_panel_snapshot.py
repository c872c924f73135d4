"""What the panel looks like in the sidebar: two GPUs, the second one running hot."""

from __future__ import annotations

from collections.abc import Callable

from panel_fakes import SidebarApp, history_of, series, two_gpus_one_hot, worker_process
from textual.pilot import Pilot

from lollma_tui.ui.widgets.hardware_panel import ModelFootprint


def test_sidebar_panel_with_two_gpus_one_hot(snap_compare: Callable[..., bool]) -> None:
    """Two RTX 4090s, GPU1 at 91 °C with VRAM and power near their limits; a reply streaming."""
    ticks = series(150, two_gpus_one_hot())

    async def fill(pilot: Pilot[None]) -> None:
        assert isinstance(pilot.app, SidebarApp)
        panel = pilot.app.panel
        panel.history = history_of(ticks)
        panel.snapshot = ticks[-1]
        panel.live_rate = 77.3
        panel.model_footprint = ModelFootprint(
            (worker_process(),), placement="72% GPU / 28% CPU", labels={4242: "worker"}
        )
        await pilot.pause()

    assert snap_compare(SidebarApp(), terminal_size=(80, 24), run_before=fill)

"""The hardware panel, fed fake snapshots built from the real dataclasses."""

from __future__ import annotations

from typing import Any

from panel_fakes import (
    HOST_OK,
    NVIDIA_MISMATCH,
    NVIDIA_OK,
    FullScreenApp,
    GiB,
    SidebarApp,
    gpu,
    history_of,
    series,
    snapshot,
    two_gpus_one_hot,
    worker_process,
)
from pilot_support import wait_until
from rich.cells import cell_len
from textual.color import Color
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from lollma_tui.core.hardware import GpuState, SourceState, SourceStatus
from lollma_tui.ui.widgets.hardware_gpu import GpuBlock
from lollma_tui.ui.widgets.hardware_panel import WAITING, HardwarePanel, ModelFootprint
from lollma_tui.ui.widgets.hardware_rows import MetricRow, MetricValue


def text_of(widget: Static) -> str:
    return str(widget.content)


def theme_color(app: SidebarApp | FullScreenApp, name: str) -> Color:
    return Color.parse(app.theme_variables[name])


async def drawn(pilot: Pilot[Any], panel: HardwarePanel) -> None:
    """Until the snapshot just set is drawn: GPU blocks are mounted (and drawn) a moment later."""
    await pilot.pause()
    wanted = len(panel.snapshot.gpus) if panel.snapshot is not None else 0

    def mounted() -> bool:
        blocks = panel.query(GpuBlock)
        return len(blocks) == wanted and all(block.is_mounted for block in blocks)

    await wait_until(pilot, mounted)
    await pilot.pause()


async def test_waits_for_the_first_sample() -> None:
    app = SidebarApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        panel = app.panel
        waiting = panel.query_one("#hw-waiting", Static)
        assert waiting.display and text_of(waiting) == WAITING
        assert not panel.query_one("#hw-body").display


async def test_the_hot_gpu_and_only_it_is_marked_hot() -> None:
    app = SidebarApp()
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.panel
        ticks = series(5, two_gpus_one_hot())
        panel.history = history_of(ticks)
        panel.snapshot = ticks[-1]
        await drawn(pilot, panel)

        cool, hot = panel.query(GpuBlock)
        assert (cool.key, hot.key) == ("nvidia0", "nvidia1")
        assert cool.has_class("-ok") and not cool.has_class("-hot")
        assert hot.has_class("-hot")

        hot_color = theme_color(app, "metric-hot")
        assert hot.query_one(".gpu-name", Static).styles.color == hot_color
        assert cool.query_one(".gpu-name", Static).styles.color != hot_color
        hot_temp = hot.query_one(".gpu-temp", MetricValue)
        assert hot_temp.text == "91°C" and hot_temp.has_class("-hot")
        assert hot_temp.styles.color == hot_color
        cool_temp = cool.query_one(".gpu-temp", MetricValue)
        assert cool_temp.text == "61°C" and cool_temp.has_class("-ok")
        assert cool_temp.styles.color == theme_color(app, "metric-ok")
        assert hot.query_one(".gpu-vram", MetricRow).value.text == "23/24 GiB"
        assert hot.query_one(".gpu-vram", MetricRow).has_class("-hot")
        assert not panel.query_one("#hw-no-gpu").display


async def test_a_gpu_block_updates_in_place_and_follows_a_change_of_gpus() -> None:
    app = SidebarApp()
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.panel
        panel.snapshot = snapshot(gpus=(gpu(0, temperature=60.0),), sources=(HOST_OK, NVIDIA_OK))
        await drawn(pilot, panel)
        (block,) = panel.query(GpuBlock)
        panel.snapshot = snapshot(tick=1, gpus=(gpu(0, temperature=80.0),), sources=(HOST_OK, NVIDIA_OK))
        await drawn(pilot, panel)
        assert panel.query_one(GpuBlock) is block
        assert block.has_class("-warm")
        assert block.query_one(".gpu-temp", MetricValue).text == "80°C"

        panel.snapshot = snapshot(tick=2, gpus=two_gpus_one_hot(), sources=(HOST_OK, NVIDIA_OK))
        await drawn(pilot, panel)
        assert [b.key for b in panel.query(GpuBlock)] == ["nvidia0", "nvidia1"]


async def test_a_machine_without_gpu_reads_cpu_only_not_an_error() -> None:
    app = SidebarApp()
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.panel
        panel.snapshot = snapshot()
        await pilot.pause()
        no_gpu = panel.query_one("#hw-no-gpu", Static)
        assert no_gpu.display and text_of(no_gpu) == "CPU only"
        assert not panel.query_one("#hw-problems").display
        assert not panel.query(GpuBlock)
        assert panel.query_one("#hw-cpu", MetricRow).value.text == "37%"
        assert panel.query_one("#hw-ram", MetricRow).value.text == "11/32 GiB"
        assert panel.query_one("#hw-swap", MetricRow).value.text == "0/8 GiB"
        assert text_of(panel.query_one("#hw-cpu-detail", Static)) == "8 cores · load 2.50"


async def test_each_failed_source_gets_one_clear_line() -> None:
    app = SidebarApp()
    sysfs_error = SourceStatus("sysfs", SourceState.ERROR, "cannot read /sys/class/drm: permission denied")
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.panel
        panel.snapshot = snapshot(sources=(HOST_OK, NVIDIA_MISMATCH, sysfs_error))
        await pilot.pause()
        problems = panel.query_one("#hw-problems", Static)
        assert problems.display
        assert text_of(problems).splitlines() == [
            "✗ Driver/library version mismatch — reboot or reload the nvidia module",
            "✗ cannot read /sys/class/drm: permission denied",
        ]
        assert problems.styles.color == theme_color(app, "metric-hot")
        # A GPU source failed, so "CPU only" would be a false statement.
        assert not panel.query_one("#hw-no-gpu").display
        # CPU and RAM still show.
        assert panel.query_one("#hw-cpu", MetricRow).value.text == "37%"


async def test_gpu_states_and_the_install_hint() -> None:
    app = FullScreenApp()
    asleep = gpu(0, state=GpuState.ASLEEP, utilization_percent=None, memory_used_bytes=None, power_w=None)
    unified = gpu(1, name="NVIDIA GB10", unified_memory=True, memory_used_bytes=None, memory_total_bytes=None)
    async with app.run_test(size=(100, 40)) as pilot:
        panel = app.panel
        panel.snapshot = snapshot(gpus=(asleep, unified), sources=(HOST_OK, NVIDIA_OK), hint="install macmon")
        await drawn(pilot, panel)
        first, second = panel.query(GpuBlock)
        assert text_of(first.query_one(".gpu-state", Static)).startswith("asleep")
        assert first.query_one(".gpu-util", MetricRow).value.text == "—"
        assert text_of(second.query_one(".gpu-name", Static)) == "GPU1 GB10 (unified)"
        vram = second.query_one(".gpu-vram", MetricRow).value
        # "unified (system RAM)" was cut to "unified (system" in the wide panel's column.
        assert vram.text == "unified (RAM)" and vram.size.width >= len(vram.text)
        assert panel.has_class("-wide")
        assert not second.query_one(".gpu-state").display
        assert text_of(panel.query_one("#hw-hint", Static)) == "install macmon"
        refused = gpu(
            1, name="NVIDIA GPU 1", state=GpuState.UNREADABLE, utilization_percent=None, power_w=None
        )
        panel.snapshot = snapshot(gpus=(asleep, refused), sources=(HOST_OK, NVIDIA_OK))
        await drawn(pilot, panel)
        _, second = panel.query(GpuBlock)
        assert (
            text_of(second.query_one(".gpu-state", Static))
            == "unreadable: the driver will not open it for us"
        )
        assert second.query_one(".gpu-util", MetricRow).value.text == "—"


async def test_stale_data_is_marked_and_dimmed() -> None:
    app = SidebarApp()
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.panel
        panel.snapshot = snapshot()
        await pilot.pause()
        marker = panel.query_one("#hw-stale", Static)
        assert not marker.display
        panel.stale = True
        await pilot.pause()
        assert panel.has_class("-stale") and marker.display and text_of(marker) == "stale"
        assert panel.query_one("#hw-body").styles.text_opacity < 1
        panel.stale = False
        await pilot.pause()
        assert not marker.display


async def test_live_token_rate_shows_while_set_and_is_blank_when_none() -> None:
    app = SidebarApp()
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.panel
        panel.snapshot = snapshot()
        await pilot.pause()
        rate = panel.query_one("#hw-rate", Static)
        assert text_of(rate) == ""
        panel.live_rate = 77.34
        await pilot.pause()
        assert text_of(rate) == "generating 77.3 tok/s"
        assert str(rate.render_line(0).text).startswith("generating 77.3 tok/s")
        panel.live_rate = None
        await pilot.pause()
        assert text_of(rate) == ""


async def test_model_footprint_lines() -> None:
    app = SidebarApp()
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.panel
        panel.snapshot = snapshot()
        footprint = panel.query_one("#hw-footprint", Static)
        await pilot.pause()
        assert not footprint.display
        panel.model_footprint = ModelFootprint((worker_process(),), labels={4242: "worker"})
        await pilot.pause()
        assert footprint.display
        assert text_of(footprint).splitlines() == ["worker: RSS 412 MiB", "  CPU 180% · VRAM 6.0 GiB"]
        panel.model_footprint = None
        await pilot.pause()
        assert not footprint.display


def _inside(widget: Widget, container: Widget) -> bool:
    outer = container.content_region
    region = widget.region
    return outer.x <= region.x and region.right <= outer.right and outer.y <= region.y


async def test_everything_fits_the_sidebar_at_80x24() -> None:
    app = SidebarApp()
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.panel
        ticks = series(150, two_gpus_one_hot())
        panel.history = history_of(ticks)
        panel.snapshot = ticks[-1]
        panel.live_rate = 123.4
        panel.model_footprint = ModelFootprint(
            (worker_process(),), placement="72% GPU / 28% CPU", labels={4242: "worker"}
        )
        await pilot.pause()
        await pilot.pause()
        sidebar = app.query_one("#sidebar")
        assert not panel.wide
        # The whole panel, two GPUs and all, is visible without scrolling.
        assert panel.region.bottom <= sidebar.content_region.bottom
        shown = [w for w in panel.query("*") if w.display and w.region.area]
        assert len(shown) > 20
        for widget in shown:
            assert _inside(widget, sidebar), widget
            if isinstance(widget, Static) and not widget.has_class("gpu-name"):
                # No line wraps or is cut: each fits its widget's width.
                for line in text_of(widget).splitlines():
                    assert cell_len(line) <= widget.content_region.width, (widget, line)
        # Compact mode leaves out the wide-only rows.
        assert not panel.query_one("#hw-cores").display
        assert all(not row.display for row in panel.query(".gpu-power"))


async def test_eight_gpus_take_a_line_each_and_fit_the_sidebar_and_80x24() -> None:
    # Six rows and a gap each: the sidebar showed one GPU of eight, the monitor three.
    eight = tuple(
        gpu(i, name="NVIDIA H100 80GB HBM3", memory_used_bytes=i * 9 * GiB, memory_total_bytes=80 * GiB)
        for i in range(8)
    )
    eight = (*eight[:7], gpu(7, temperature=91.0, memory_total_bytes=80 * GiB))  # one hot
    # 52 and 60 columns: the wide line (67 columns) lost temperature and power to an ellipsis.
    sized = ((SidebarApp(), (80, 24)), (FullScreenApp(), (80, 24)), (FullScreenApp(), (52, 24)))
    for app, size in (*sized, (FullScreenApp(), (60, 24))):
        async with app.run_test(size=size) as pilot:
            panel = app.panel
            panel.snapshot = snapshot(gpus=eight, sources=(HOST_OK, NVIDIA_OK))
            await drawn(pilot, panel)
            lines = []
            for block in panel.gpu_blocks:
                (shown,) = [line for line in block.query(".gpu-brief, .gpu-brief-wide") if line.display]
                lines.append(shown)
            assert all(isinstance(line, Static) and line.region.height == 1 for line in lines)
            assert panel.region.height <= (16 if size[0] == 80 else 18)  # the GPUs fit 24 rows
            assert text_of(lines[3]).startswith("GPU3") and "27/80" in text_of(lines[3])
            assert panel.gpu_blocks[7].has_class("-hot")
            for line in lines:  # nothing cut off in the sidebar's 27 columns
                assert cell_len(text_of(line)) <= line.content_region.width, text_of(line)
    # Two GPUs keep their full blocks.
    app = SidebarApp()
    async with app.run_test(size=(80, 24)) as pilot:
        app.panel.snapshot = snapshot(gpus=two_gpus_one_hot(), sources=(HOST_OK, NVIDIA_OK))
        await drawn(pilot, app.panel)
        assert all(not b.query_one(".gpu-brief", Static).display for b in app.panel.gpu_blocks)
        assert all(b.query_one(".gpu-util", MetricRow).display for b in app.panel.gpu_blocks)


async def test_wide_panel_adds_per_core_strip_and_more_history() -> None:
    app = FullScreenApp()
    async with app.run_test(size=(100, 40)) as pilot:
        panel = app.panel
        ticks = series(20, two_gpus_one_hot())
        panel.history = history_of(ticks)
        panel.snapshot = ticks[-1]
        await drawn(pilot, panel)
        assert panel.wide and panel.has_class("-wide")
        assert panel.query_one("#hw-cores").display
        assert text_of(panel.query_one("#hw-cores-strip", Static)) == "▁▂▃▄▅▆▇█"
        hot = panel.query(GpuBlock).last()
        power = hot.query_one(".gpu-power", MetricRow)
        assert power.display and power.value.text == "440/450 W" and power.has_class("-hot")
        details = text_of(hot.query_one(".gpu-details", Static))
        assert "throttle: hw thermal, power cap" in details and "fan 45%" in details
        assert "AMD Ryzen 9 7950X" in text_of(panel.query_one("#hw-cpu-detail", Static))


async def test_history_redraws_the_strips() -> None:
    app = FullScreenApp()
    async with app.run_test(size=(100, 40)) as pilot:
        panel = app.panel
        ticks = series(10)
        history = history_of(ticks[:1])
        panel.history = history
        panel.snapshot = ticks[0]
        await pilot.pause()
        strip = panel.query_one("#hw-cpu .metric-spark")
        before = strip.render()
        for tick in ticks[1:]:
            history.add(tick)
        panel.history = history  # the same object, grown in place
        await pilot.pause()
        assert strip.render() != before


def test_panel_constructor_takes_domain_arguments_first() -> None:
    first = series(1)[0]
    panel = HardwarePanel(first, history_of([first]), id="hw", classes="x")
    assert panel.snapshot is first and panel.id == "hw" and panel.has_class("x")

"""`lollma-tui monitor`: the real default sources on this machine, and NVML through a fake module."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from hw_fakes import FakeGpu, FakeNvml, kill_tree, link_driver, write_tree
from panel_fakes import GiB, wait_until
from textual.widgets import Static

from lollma_tui.core.hardware import HostSource, NvidiaSource, SysfsGpuSource
from lollma_tui.ui.messages import HardwareSampled
from lollma_tui.ui.monitor_app import LlmProcessFinder, MonitorApp, next_interval
from lollma_tui.ui.widgets.hardware_gpu import GpuBlock
from lollma_tui.ui.widgets.hardware_rows import MetricRow


def samples(messages: list[object]) -> list[HardwareSampled]:
    return [m for m in messages if isinstance(m, HardwareSampled)]


async def test_real_sources_on_a_cpu_only_box() -> None:
    messages: list[object] = []
    app = MonitorApp(interval_s=0.25, find_llm_processes=False)
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        panel = app.panel
        assert app.theme == "lollma-dark"
        await wait_until(pilot, lambda: len(samples(messages)) >= 2)
        await pilot.pause()
        first = samples(messages)[0].snapshot
        if first.gpus:
            pytest.skip("this machine has a GPU; the CPU-only checks do not apply")
        assert first.cpu is not None and first.cpu.percent is None  # a rate needs two readings
        assert panel.query_one("#hw-no-gpu", Static).display
        assert str(panel.query_one("#hw-no-gpu", Static).content) == "CPU only"
        assert not panel.query_one("#hw-problems").display

        cpu_text = panel.query_one("#hw-cpu", MetricRow).value.text
        assert cpu_text.endswith("%") and cpu_text[:-1].isdigit()

        ram_text = panel.query_one("#hw-ram", MetricRow).value.text
        used, _, rest = ram_text.partition("/")
        total_text, unit = rest.split()
        assert unit == "GiB"
        assert abs(float(total_text) - psutil.virtual_memory().total / GiB) <= 0.5
        assert float(used) <= float(total_text)
        assert panel.wide


async def test_a_watched_process_that_is_gone_is_said_so_not_left_blank() -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    app = MonitorApp(interval_s=0.25, process_ids=[ended.pid], find_llm_processes=False)
    async with app.run_test(size=(100, 30)) as pilot:
        footprint = app.panel.query_one("#hw-footprint", Static)
        await wait_until(pilot, lambda: footprint.display)
        assert str(footprint.content) == f"processes: pid {ended.pid} not running · p hides this"
        await pilot.press("p")
        await wait_until(pilot, lambda: not footprint.display)


async def test_keys_change_the_interval_and_toggle_processes() -> None:
    app = MonitorApp(interval_s=0.25, find_llm_processes=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("minus")
        assert app.hardware.interval_s == 0.25  # already the floor
        await pilot.press("plus")
        assert app.hardware.interval_s == 0.5
        await wait_until(
            pilot, lambda: app.panel.snapshot is not None and app.panel.snapshot.interval_s == 0.5
        )
        assert "every 0.5 s" in str(app.panel.query_one("#hw-title", Static).content)
        await pilot.press("minus")
        assert app.hardware.interval_s == 0.25
        assert app.show_processes
        await pilot.press("p")
        assert not app.show_processes
        await pilot.press("q")
    assert not app.hardware.running


async def test_ctrl_c_quits_the_monitor() -> None:
    # It showed "Press [b]ctrl+q[/b] to quit the app", markup and all, and kept running.
    app = MonitorApp(interval_s=1.0, find_llm_processes=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not app._notifications
    assert app.return_code == 0 and not app.hardware.running


def test_interval_steps_stay_within_bounds() -> None:
    assert next_interval(1.0, +1) == 2.0
    assert next_interval(1.0, -1) == 0.5
    assert next_interval(5.0, +1) == 5.0
    assert next_interval(0.25, -1) == 0.25
    assert next_interval(0.7, +1) == 1.0


async def test_nvml_through_the_real_source_reaches_the_gpu_blocks(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu(), FakeGpu(temperature=91, bus_id="00000000:02:00.0", throttle_mask=0)])
    # An empty sysfs: on a laptop whose own GPU at 01:00.0 sleeps, the real one would say so.
    nvidia = NvidiaSource(nvml.loader(), sysfs_root=tmp_path)
    app = MonitorApp(interval_s=0.25, sources=[HostSource(), nvidia], find_llm_processes=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.panel.query(GpuBlock)) == 2)
        await pilot.pause()
        cool, hot = app.panel.query(GpuBlock)
        assert str(cool.query_one(".gpu-name", Static).content) == "GPU0 GeForce RTX 4090"
        assert cool.query_one(".gpu-util", MetricRow).value.text == "87%"
        assert cool.query_one(".gpu-vram", MetricRow).value.text == "8.0/24 GiB"
        assert cool.has_class("-ok") and hot.has_class("-hot")
        assert not app.panel.query_one("#hw-no-gpu").display


async def test_gpus_of_two_vendors_are_told_apart(tmp_path: Path) -> None:
    # An NVIDIA card and an AMD one are each their driver's number 0: both read "GPU0" in the
    # one-line view of many GPUs.
    nvml = FakeNvml([FakeGpu(), FakeGpu(bus_id="00000000:02:00.0")])
    drm = tmp_path / "sys/class/drm"
    card = drm / "card0"
    write_tree(
        card,
        {
            "device/vendor": "0x1002",
            "device/product_name": "AMD Radeon RX 7900 XTX",
            "device/uevent": "DRIVER=amdgpu\nPCI_SLOT_NAME=0000:03:00.0",
            "device/gpu_busy_percent": 37,
            "device/mem_info_vram_used": 6 * GiB,
            "device/mem_info_vram_total": 24 * GiB,
        },
    )
    link_driver(card / "device", tmp_path / "sys/bus/pci/drivers", "amdgpu")
    sources = [HostSource(), NvidiaSource(nvml.loader(), sysfs_root=tmp_path / "empty"), SysfsGpuSource(drm)]
    app = MonitorApp(interval_s=0.25, sources=sources, find_llm_processes=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.panel.query(GpuBlock)) == 3)
        await pilot.pause()
        briefs = [str(block.query_one(".gpu-brief", Static).content) for block in app.panel.query(GpuBlock)]
        titles = [str(block.query_one(".gpu-name", Static).content) for block in app.panel.query(GpuBlock)]
    assert [brief.split()[0] for brief in briefs] == ["NV0", "NV1", "AMD0"]
    assert titles == ["NV0 GeForce RTX 4090", "NV1 GeForce RTX 4090", "AMD0 AMD Radeon RX 7900 XTX"]


async def test_an_unknown_theme_falls_back_and_builtin_themes_get_our_colours() -> None:
    app = MonitorApp(theme="no-such-theme", find_llm_processes=False)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.theme == "lollma-dark"
    builtin = MonitorApp(theme="textual-light", find_llm_processes=False)
    async with builtin.run_test() as pilot:
        await pilot.pause()
        assert builtin.theme == "textual-light"
        assert builtin.theme_variables["metric-hot"] == builtin.theme_variables["error"]


@pytest.fixture
def fake_llm_server(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process named "llama-server" (a python under that name) with a child of the same name."""
    exe = tmp_path / "llama-server"
    exe.symlink_to(sys.executable)
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.argv[1], '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)\n"
    )
    server = subprocess.Popen([str(exe), "-c", code, str(exe)])
    deadline = time.monotonic() + 10
    while not psutil.Process(server.pid).children() and time.monotonic() < deadline:
        time.sleep(0.02)
    yield server
    kill_tree(server)


def test_llm_process_finder_reports_the_server_not_its_runner(
    fake_llm_server: subprocess.Popen[bytes],
) -> None:
    found = LlmProcessFinder()()
    assert fake_llm_server.pid in found
    (child,) = psutil.Process(fake_llm_server.pid).children()
    assert child.pid not in found


async def test_monitor_lists_llm_servers_with_their_children(
    fake_llm_server: subprocess.Popen[bytes],
) -> None:
    app = MonitorApp(interval_s=0.25)
    async with app.run_test(size=(100, 40)) as pilot:
        footprint = app.panel.query_one("#hw-footprint", Static)
        await wait_until(pilot, lambda: f"pid {fake_llm_server.pid}" in str(footprint.content))
        assert f"llama-server (pid {fake_llm_server.pid}): RSS" in str(footprint.content)
        (server,) = [p for p in app.hardware.latest.processes if p.pid == fake_llm_server.pid]  # type: ignore[union-attr]
        assert len(server.child_pids) == 1
        await pilot.press("p")
        await pilot.pause()
        assert not footprint.display

"""ProcessTracker on real processes: a parent with a child, like Ollama's server and runner."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
from hw_fakes import GiB, MiB, kill_tree, spawn_with_child

from lollma_tui.core.hardware.processes import ProcessTracker, vram_by_pid
from lollma_tui.core.hardware.snapshots import GpuProcessMemory, GpuSnapshot, GpuVendor


def test_parent_and_children_are_measured_and_summed() -> None:
    server = spawn_with_child()
    try:
        (runner,) = psutil.Process(server.pid).children()
        tracker = ProcessTracker()
        pids = tracker.refresh([server.pid], now=0.0)
        assert pids == {server.pid, runner.pid}

        (first,) = tracker.read()
        assert first.cpu_percent is None  # a rate needs two readings
        assert first.name is not None
        assert first.name.startswith("python")
        assert first.child_pids == (runner.pid,)
        assert first.rss_bytes is not None
        assert 1 * MiB < first.rss_bytes < 1 * GiB
        assert first.rss_bytes == psutil.Process(server.pid).memory_info().rss

        time.sleep(0.05)
        tracker.refresh([server.pid], now=1.0)
        (second,) = tracker.read({runner.pid: 5 * GiB, 999_999: GiB})
        assert second.cpu_percent is not None
        assert second.cpu_percent >= 0.0
        assert second.total_cpu_percent is not None
        assert second.total_rss_bytes is not None
        assert second.rss_bytes is not None
        runner_rss = psutil.Process(runner.pid).memory_info().rss
        assert abs(second.total_rss_bytes - (second.rss_bytes + runner_rss)) < 4 * MiB
        assert second.vram_bytes is None
        assert second.total_vram_bytes == 5 * GiB
    finally:
        kill_tree(server)


def test_vanished_pid_is_dropped_quietly() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tracker = ProcessTracker()
        tracker.refresh([gone.pid, alive.pid], now=0.0)
        assert [p.pid for p in tracker.read()] == [alive.pid]

        alive.kill()
        alive.wait()
        tracker.refresh([alive.pid], now=1.0)
        assert tracker.read() == ()
    finally:
        alive.kill()
        alive.wait()


def wait_for_zombie(process: subprocess.Popen[bytes]) -> None:
    """`process` has ended and this test, its parent, has not reaped it."""
    deadline = time.monotonic() + 10
    while psutil.Process(process.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the child never ended"
        time.sleep(0.02)


def test_a_process_that_died_unreaped_is_dropped() -> None:
    # A server whose launcher never reaps it: shown as running with "RSS 0 B" for ever.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        tracker = ProcessTracker()
        tracker.refresh([dead.pid], now=0.0)
        wait_for_zombie(dead)
        tracker.refresh([dead.pid], now=1.0)
        assert tracker.read() == ()
    finally:
        dead.wait()


def test_new_children_are_found_on_the_next_rescan() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.stdin.readline(); "
            "import subprocess; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
            "time.sleep(30)",
        ],
        stdin=subprocess.PIPE,
    )
    try:
        tracker = ProcessTracker(rescan_every_s=5.0)
        assert tracker.refresh([parent.pid], now=0.0) == {parent.pid}
        assert parent.stdin is not None
        parent.stdin.write(b"go\n")
        parent.stdin.flush()
        deadline = time.monotonic() + 10
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert tracker.refresh([parent.pid], now=4.0) == {parent.pid}  # not rescanned yet
        (child,) = psutil.Process(parent.pid).children()
        assert tracker.refresh([parent.pid], now=5.0) == {parent.pid, child.pid}
    finally:
        kill_tree(parent)


def test_vram_is_added_up_over_gpus() -> None:
    gpus = [
        GpuSnapshot(
            0, "a", GpuVendor.NVIDIA, processes=(GpuProcessMemory(1, GiB), GpuProcessMemory(2, None))
        ),
        GpuSnapshot(1, "b", GpuVendor.NVIDIA, processes=(GpuProcessMemory(1, 2 * GiB),)),
    ]
    assert vram_by_pid(gpus) == {1: 3 * GiB}

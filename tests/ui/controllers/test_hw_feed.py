"""HardwareFeed with the real sampler thread and the real host source."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import pytest
from panel_fakes import wait_until
from textual.app import App

from lollma_tui.core.hardware import (
    HardwareSource,
    HostSource,
    IntervalError,
    SampleContext,
    SourceReading,
    SourceState,
    SourceStatus,
)
from lollma_tui.ui.controllers.hardware_feed import HardwareFeed
from lollma_tui.ui.messages import HardwareSampled


class FeedApp(App[None]):
    def __init__(self, sources: Sequence[HardwareSource], interval_s: float = 0.25) -> None:
        super().__init__()
        self.feed = HardwareFeed(self, sources, interval_s=interval_s)
        self.received: list[HardwareSampled] = []

    def on_mount(self) -> None:
        self.feed.start()

    def on_unmount(self) -> None:
        self.feed.stop()

    def on_hardware_sampled(self, message: HardwareSampled) -> None:
        self.received.append(message)


class StallingSource:
    """Answers the first tick at once, then hangs until released, as NVML does while a GPU resets."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    @property
    def name(self) -> str:
        return "stall"

    def sample(self, context: SampleContext) -> SourceReading:
        self.calls += 1
        if self.calls > 1:
            self.release.wait(10.0)
        return SourceReading(status=SourceStatus("stall", SourceState.OK, "fine"))

    def close(self) -> None:
        self.release.set()


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lollma-hardware-sampler"]


async def test_snapshots_arrive_as_messages_and_stop_joins_the_thread() -> None:
    app = FeedApp([HostSource()])
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: len(app.received) >= 3)
        feed = app.feed
        assert feed.running and sampler_threads()
        latest = app.received[-1]
        assert latest.snapshot is feed.latest
        assert latest.history is feed.history
        assert not latest.stale
        assert latest.snapshot.memory is not None and latest.snapshot.memory.total_bytes > 0
        # A CPU figure needs two readings; by the third sample there is one, and history has it.
        assert latest.snapshot.cpu is not None and latest.snapshot.cpu.percent is not None
        assert len(feed.history) >= 3
        assert feed.history.cpu_percent()[-1] == latest.snapshot.cpu.percent

        assert feed.stop() is True
        assert not feed.running
        assert not sampler_threads()
        count = len(app.received)
        await pilot.pause(0.6)
        assert len(app.received) <= count + 1  # at most one already on its way


async def test_interval_changes_reach_the_snapshots_and_bad_ones_are_refused() -> None:
    app = FeedApp([HostSource()])
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: bool(app.received))
        assert app.feed.set_interval(0.5) == 0.5
        await wait_until(pilot, lambda: app.received[-1].snapshot.interval_s == 0.5)
        with pytest.raises(IntervalError):
            app.feed.set_interval(0.1)
        assert app.feed.interval_s == 0.5


async def test_our_processes_are_measured() -> None:
    app = FeedApp([HostSource()])
    async with app.run_test() as pilot:
        app.feed.set_process_ids_provider(lambda: [os.getpid()])
        await wait_until(pilot, lambda: bool(app.received and app.received[-1].snapshot.processes))
        (ours,) = app.received[-1].snapshot.processes
        assert ours.pid == os.getpid() and ours.rss_bytes


async def test_a_stalled_source_makes_the_data_stale_until_it_answers_again() -> None:
    stalling = StallingSource()
    app = FeedApp([HostSource(), stalling], interval_s=0.25)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: bool(app.received))
        assert not app.received[0].stale
        # 3 intervals of silence (0.75 s) and the feed says so, once, with the last snapshot.
        await wait_until(pilot, lambda: app.received[-1].stale, limit_s=5.0)
        stale = app.received[-1]
        assert stale.snapshot is app.received[0].snapshot and app.feed.stale
        assert [m.stale for m in app.received].count(True) == 1

        stalling.release.set()
        await wait_until(pilot, lambda: not app.received[-1].stale, limit_s=5.0)
        assert app.received[-1].snapshot.tick > stale.snapshot.tick
        assert not app.feed.stale


async def test_while_another_machine_is_watched_this_one_s_budget_is_sampled_aside() -> None:
    # Moving the chat from a host whose hardware is read over ssh back to llama.cpp here took
    # its budget from the panel, which still showed the other machine: "free memory unknown:
    # fit not checked".
    import psutil

    from lollma_tui.core.hardware.ssh_target import SshTarget
    from lollma_tui.ui.controllers.hardware_feed import RemoteLink

    app = FeedApp([HostSource()])
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: app.received != [])
        here = await app.feed.local_budget(1.0)
        assert here is not None and here.free_ram
        app.feed.watch(RemoteLink(SshTarget("127.0.0.1", port=1)))  # nothing answers there
        assert app.feed.budget() is None  # the panel has no figures of this machine now
        aside = await app.feed.local_budget(1.0)
        assert aside is not None and aside.free_ram is not None
        assert abs(aside.free_ram - psutil.virtual_memory().available) < 512 << 20

"""HardwareSampler: interval rules, the schedule, the thread, and the default sources here.

Timing assertions use lower bounds (which load cannot break) or generous upper bounds; the
exact schedule arithmetic is tested on `TickSchedule` without a thread.
"""

from __future__ import annotations

import ctypes.util
import itertools
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hw_fakes import StubSource, make_snapshot

from lollma_tui.core.hardware import default_sources
from lollma_tui.core.hardware.host import HostSource
from lollma_tui.core.hardware.sampler import (
    HardwareSampler,
    IntervalError,
    TickSchedule,
    validate_interval,
)
from lollma_tui.core.hardware.snapshots import SourceState, SystemSnapshot, is_stale


class Collector:
    def __init__(self) -> None:
        self.snapshots: list[SystemSnapshot] = []
        self.threads: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, snapshot: SystemSnapshot) -> None:
        with self._cond:
            self.snapshots.append(snapshot)
            self.threads.append(threading.current_thread().name)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[SystemSnapshot]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.snapshots) >= count, timeout):
                raise AssertionError(f"only {len(self.snapshots)} of {count} snapshots in {timeout} s")
            return list(self.snapshots)


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def samplers() -> Iterator[list[HardwareSampler]]:
    made: list[HardwareSampler] = []
    yield made
    for sampler in made:
        sampler.stop()


# -- interval -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.25, 1, 2.5, 5.0])
def test_valid_intervals(seconds: float) -> None:
    assert validate_interval(seconds) == float(seconds)


@pytest.mark.parametrize("seconds", [0.0, 0.2, 5.01, -1.0, math.nan, math.inf, "fast", None])
def test_invalid_intervals_are_refused_with_the_range(seconds: object) -> None:
    with pytest.raises(IntervalError, match=r"between 0\.25 and 5 s|number of seconds"):
        validate_interval(seconds)  # type: ignore[arg-type]


def test_sampler_refuses_bad_interval_and_keeps_the_old_one() -> None:
    with pytest.raises(IntervalError):
        HardwareSampler(lambda _: None, [StubSource()], interval_s=10)
    sampler = HardwareSampler(lambda _: None, [StubSource()], interval_s=2.0)
    with pytest.raises(IntervalError, match=r"not 0\.1"):
        sampler.set_interval(0.1)
    assert sampler.interval_s == 2.0


# -- schedule arithmetic ---------------------------------------------------------------------------


def test_schedule_is_drift_free() -> None:
    schedule = TickSchedule(start=100.0, interval=1.0)
    assert schedule.deadline() == 100.0
    # Each tick's work takes 0.3 s; deadlines stay on the grid instead of creeping by 0.3 s.
    for k in range(1, 50):
        skipped = schedule.advance(now=100.0 + (k - 1) + 0.3)
        assert skipped == 0
        assert schedule.tick == k
        assert schedule.deadline() == pytest.approx(100.0 + k)


def test_overrun_skips_missed_slots_instead_of_queueing() -> None:
    schedule = TickSchedule(start=0.0, interval=0.5)
    schedule.advance(now=0.1)
    assert schedule.tick == 1
    skipped = schedule.advance(now=0.5 + 1.7)  # tick 1 ran from 0.5 until 2.2
    assert skipped == 3  # slots 2, 3 and 4 (1.0, 1.5, 2.0) are gone
    assert schedule.tick == 5
    assert schedule.deadline() == pytest.approx(2.5)


def test_finishing_exactly_on_a_deadline_is_not_an_overrun() -> None:
    schedule = TickSchedule(start=0.0, interval=0.1)
    for k in range(1, 30):
        assert schedule.advance(now=k * 0.1) == 0  # float noise must not skip a slot


def test_schedule_continues_numbering_after_reanchor() -> None:
    schedule = TickSchedule(start=10.0, interval=1.0, first_tick=7)
    assert schedule.deadline() == 10.0
    schedule.advance(now=10.2)
    assert (schedule.tick, schedule.deadline()) == (8, 11.0)


# -- the thread ----------------------------------------------------------------------------------


def test_ticks_stay_on_the_grid_despite_slow_work(
    collector: Collector, samplers: list[HardwareSampler]
) -> None:
    interval, work = 0.25, 0.12
    sampler = HardwareSampler(collector, [StubSource(delay=work)], interval_s=interval)
    samplers.append(sampler)
    sampler.start()
    snaps = collector.wait_for(5)
    sampler.stop()
    first = snaps[0]
    for snap in snaps[1:]:
        slots = snap.tick - first.tick
        offset = snap.monotonic - first.monotonic - slots * interval
        assert offset >= -0.005  # never early
        assert offset < 0.2  # and no creeping by `work` per tick (4 ticks would add 0.48 s)
    assert collector.threads[0] == "lollma-hardware-sampler"
    assert collector.threads[0] != threading.current_thread().name


def test_slow_source_causes_skipped_ticks_not_a_backlog(
    collector: Collector, samplers: list[HardwareSampler]
) -> None:
    interval, work = 0.25, 0.3
    sampler = HardwareSampler(collector, [StubSource(delay=work)], interval_s=interval)
    samplers.append(sampler)
    sampler.start()
    snaps = collector.wait_for(3)
    sampler.stop()
    for before, after in itertools.pairwise(snaps):
        assert after.tick - before.tick >= 2  # 0.3 s of work overruns slot k+1: it is skipped
        gap = after.monotonic - before.monotonic
        assert gap >= work
        # Starts sit on the grid (a queued backlog would start right after each overrun).
        assert gap == pytest.approx((after.tick - before.tick) * interval, abs=0.15)


def test_stop_is_prompt_even_with_a_long_interval(collector: Collector) -> None:
    source = StubSource()
    sampler = HardwareSampler(collector, [source], interval_s=5.0)
    sampler.start()
    collector.wait_for(1)
    began = time.monotonic()
    assert sampler.stop() is True
    assert time.monotonic() - began < 1.0
    assert not sampler.running
    assert source.closed == 1
    assert len(collector.snapshots) == 1


def test_set_interval_takes_effect_without_waiting_out_the_old_one(
    collector: Collector, samplers: list[HardwareSampler]
) -> None:
    sampler = HardwareSampler(collector, [StubSource()], interval_s=5.0)
    samplers.append(sampler)
    sampler.start()
    collector.wait_for(1)
    began = time.monotonic()
    sampler.set_interval(0.25)
    snaps = collector.wait_for(4, timeout=4.0)
    assert time.monotonic() - began < 4.0
    assert snaps[-1].interval_s == 0.25
    assert [s.tick for s in snaps] == sorted({s.tick for s in snaps})  # ticks keep counting up


def test_callback_errors_do_not_stop_sampling(samplers: list[HardwareSampler]) -> None:
    seen: list[int] = []

    def flaky(snapshot: SystemSnapshot) -> None:
        seen.append(snapshot.tick)
        if len(seen) == 1:
            raise RuntimeError("UI went away for a moment")

    sampler = HardwareSampler(flaky, [StubSource()], interval_s=0.25)
    samplers.append(sampler)
    sampler.start()
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(seen) >= 3


def test_cpu_percent_is_measured_on_the_sampler_thread(
    collector: Collector, samplers: list[HardwareSampler]
) -> None:
    # psutil keeps its previous CPU reading per thread: the first tick on a new thread must say
    # "not measured yet" rather than 0 %, and the next one must carry a real figure.
    sampler = HardwareSampler(collector, [HostSource()], interval_s=0.25)
    samplers.append(sampler)
    sampler.sample_now()  # primes the calling thread only
    sampler.start()
    first, second = collector.wait_for(2)[:2]
    assert first.cpu is not None
    assert first.cpu.percent is None
    assert second.cpu is not None
    assert second.cpu.percent is not None
    assert len(second.cpu.per_core_percent) == second.cpu.logical_cores


def test_a_raising_source_is_contained() -> None:
    bad = StubSource("bad", error=RuntimeError("boom"))
    snap = HardwareSampler(lambda _: None, [HostSource(), bad]).sample_now()
    assert snap.cpu is not None
    (problem,) = snap.problems
    assert problem.name == "bad"
    assert problem.message == "bad failed: boom"
    assert all(s.cost_s is not None and s.cost_s >= 0 for s in snap.sources)


def test_sources_get_interval_and_process_ids() -> None:
    source = StubSource()
    sampler = HardwareSampler(lambda _: None, [source], interval_s=0.5)
    sampler.set_process_ids_provider(lambda: [1])
    sampler.sample_now()
    assert source.contexts[-1].interval_s == 0.5
    assert 1 in source.contexts[-1].pids
    sampler.set_process_ids_provider(None)
    sampler.sample_now()
    assert source.contexts[-1].pids == frozenset()


# -- staleness -----------------------------------------------------------------------------------


def test_stale_after_three_intervals() -> None:
    snap = make_snapshot(monotonic=100.0, interval_s=1.0)
    assert not is_stale(snap, now=100.0)
    assert not is_stale(snap, now=102.9)
    assert is_stale(snap, now=103.1)
    slow = make_snapshot(monotonic=100.0, interval_s=5.0)
    assert not is_stale(slow, now=114.0)
    assert is_stale(slow, now=115.5)


# -- this machine ----------------------------------------------------------------------------------


def _machine_has_gpu() -> bool:
    if ctypes.util.find_library("nvidia-ml"):
        return True
    for vendor in Path("/sys/class/drm").glob("card*/device/vendor"):
        if vendor.read_text().strip() in ("0x1002", "0x8086"):
            return True
    return False


def test_default_sources_on_this_machine() -> None:
    sampler = HardwareSampler(lambda _: None, default_sources())
    try:
        time.sleep(0.05)
        snap = sampler.sample_now()
    finally:
        sampler.close()
    assert [s.name for s in snap.sources] == ["host", "nvidia", "sysfs"]
    assert snap.cpu is not None
    assert snap.memory is not None
    assert snap.sample_cost_s < 0.5
    if _machine_has_gpu():
        assert snap.gpus
    else:
        # The CPU-only box: a clean line, no error banner.
        assert snap.gpu_summary == "CPU only"
        assert snap.gpus == ()
        assert snap.problems == ()
        assert {s.name: s.state for s in snap.sources} == {
            "host": SourceState.OK,
            "nvidia": SourceState.ABSENT,
            "sysfs": SourceState.ABSENT,
        }


@pytest.mark.parametrize(
    ("system", "machine", "names"),
    [
        ("linux", "x86_64", ["host", "nvidia", "sysfs"]),
        ("darwin", "arm64", ["host", "macmon"]),
        ("darwin", "x86_64", ["host"]),
        ("win32", "AMD64", ["host", "nvidia"]),
    ],
)
def test_default_sources_per_platform(system: str, machine: str, names: list[str]) -> None:
    assert [s.name for s in default_sources(system, machine)] == names

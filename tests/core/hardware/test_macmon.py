"""`macmon pipe` parsing across schema versions, and the source's process handling."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable

import psutil
import pytest
from hw_fakes import MACMON_LINES, FakeMacmon, ctx

from lollma_tui.core.hardware.macmon import INSTALL_HINT, MacmonSource, parse_macmon_line
from lollma_tui.core.hardware.sampler import HardwareSampler
from lollma_tui.core.hardware.snapshots import GpuVendor, SourceState
from lollma_tui.core.hardware.source import SourceReading

MacmonFactory = Callable[..., MacmonSource]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "gpu_ratio", "gpu_freq", "pcpu_ratio", "gpu_temp", "gpu_power"),
    [
        ("v0.6", 0.61, 1398, 0.5, 41.0, 7.5),  # [freq, ratio] pairs only
        ("v0.7", 0.07, 444, 0.2, None, 0.3),  # 0 °C means "no sensor"
        ("v0.8.0", 0.77, 1300, 0.33, 52.0, 12.0),  # *_usage_ratio wins over the pairs
        ("v0.8.2", 0.88, 1578, 0.44, 58.5, 31.5),  # *_scaled_ratio + *_freq_mhz win over aliases
    ],
)
def test_every_schema_version_parses(
    version: str, gpu_ratio: float, gpu_freq: int, pcpu_ratio: float, gpu_temp: float | None, gpu_power: float
) -> None:
    reading = parse_macmon_line(MACMON_LINES[version])
    assert reading is not None
    assert reading.gpu_ratio == pytest.approx(gpu_ratio)
    assert reading.gpu_freq_mhz == gpu_freq
    assert reading.pcpu_ratio == pytest.approx(pcpu_ratio)
    assert reading.gpu_temp_c == gpu_temp
    assert reading.gpu_power_w == pytest.approx(gpu_power)
    assert reading.ram_total_bytes == json.loads(MACMON_LINES[version])["memory"]["ram_total"]


def test_details_of_the_newest_schema() -> None:
    reading = parse_macmon_line(MACMON_LINES["v0.8.2"])
    assert reading is not None
    assert reading.chip_name == "Apple M4 Max"
    assert reading.sys_power_w == 48.0
    assert reading.cpu_temp_c == 61.0
    assert reading.ecpu_freq_mhz == 1200
    old = parse_macmon_line(MACMON_LINES["v0.7"])
    assert old is not None
    assert old.sys_power_w is None  # 0 when the SMC key is missing
    assert old.chip_name is None


@pytest.mark.parametrize(
    "line",
    [
        "",
        "not json",
        MACMON_LINES["v0.8.2"][:80],  # truncated mid-object
        "[1, 2, 3]",
        '{"hello": "world"}',
        '{"gpu_usage": "fast", "gpu_power": "high"}',
    ],
)
def test_junk_lines_are_not_readings(line: str) -> None:
    assert parse_macmon_line(line) is None


def test_out_of_range_values_are_clamped_or_dropped() -> None:
    reading = parse_macmon_line(json.dumps({"gpu_usage": [500, 1.7], "temp": {"gpu_temp_avg": 400.0}}))
    assert reading is not None
    assert reading.gpu_ratio == 1.0
    assert reading.gpu_temp_c is None


# -- the source ----------------------------------------------------------------------------------


def test_not_installed_gives_the_hint_and_cpu_only_summary() -> None:
    looked: list[str] = []

    def which(name: str) -> str | None:
        looked.append(name)
        return None

    source = MacmonSource(which=which)
    reading = source.sample(ctx(now=0.0))
    assert reading.status.state is SourceState.ABSENT
    assert reading.hint == INSTALL_HINT
    assert "install macmon for GPU/power" in reading.status.message
    source.sample(ctx(now=10.0))
    assert looked == ["macmon"]  # PATH is looked at again only after 30 s
    source.sample(ctx(now=31.0))
    assert looked == ["macmon", "macmon"]

    snap = HardwareSampler(lambda _: None, [MacmonSource(which=lambda _: None)]).sample_now()
    assert snap.hint == INSTALL_HINT
    assert snap.gpu_summary == f"CPU only — {INSTALL_HINT}"
    assert snap.problems == ()


def test_reports_the_newest_line_as_an_apple_gpu(
    fake_macmon: FakeMacmon, macmon_source: MacmonFactory
) -> None:
    fake_macmon.configure([MACMON_LINES["v0.6"], MACMON_LINES["v0.8.2"]], linger=30.0)
    source = macmon_source()
    first = source.sample(ctx(interval_s=0.5))
    assert first.status.state is SourceState.OK

    def has_newest() -> bool:
        gpus = source.sample(ctx(interval_s=0.5)).gpus
        return bool(gpus) and gpus[0].utilization_percent == pytest.approx(88.0)

    wait_for(has_newest)
    reading = source.sample(ctx(interval_s=0.5))
    (gpu,) = reading.gpus
    assert gpu.vendor is GpuVendor.APPLE
    assert gpu.name == "Apple M4 Max GPU"
    assert gpu.unified_memory is True
    assert gpu.memory_total_bytes is None
    assert gpu.clock_mhz == 1578
    assert gpu.power_w == pytest.approx(31.5)
    assert gpu.temperature_c == 58.5
    (start,) = fake_macmon.starts()
    assert start["argv"] == ["pipe", "-i", "500"]


def test_exit_restarts_with_growing_backoff(fake_macmon: FakeMacmon, macmon_source: MacmonFactory) -> None:
    fake_macmon.configure([MACMON_LINES["v0.8.0"]], exit_code=3)
    source = macmon_source(backoff_initial_s=0.05, backoff_max_s=0.2)
    source.sample(ctx())
    wait_for(lambda: len(fake_macmon.starts()) >= 5, timeout=20.0)

    reading = source.sample(ctx())
    assert source.restarts >= 4
    if reading.status.state is SourceState.ERROR:  # between runs
        assert reading.status.message.startswith("macmon exited (code 3) — restarting in")
        assert reading.gpus == ()
    else:  # caught mid-run: the fresh process's line
        assert reading.gpus[0].utilization_percent == pytest.approx(77.0)
    starts = [s["t"] for s in fake_macmon.starts()]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Waits of 0.05, 0.1, 0.2, 0.2 s at least (plus the script's own run time).
    for gap, wait in zip(gaps, (0.05, 0.1, 0.2, 0.2), strict=False):
        assert gap >= wait * 0.95


def test_error_status_between_restarts(fake_macmon: FakeMacmon, macmon_source: MacmonFactory) -> None:
    fake_macmon.configure([], exit_code=7)
    source = macmon_source(backoff_initial_s=5.0, backoff_max_s=5.0)
    source.sample(ctx())
    wait_for(lambda: source.sample(ctx()).status.state is SourceState.ERROR)
    reading = source.sample(ctx())
    assert reading.status.message == "macmon exited (code 7) — restarting in 5 s"
    assert reading.gpus == ()


def test_interval_change_restarts_macmon_with_new_rate(
    fake_macmon: FakeMacmon, macmon_source: MacmonFactory
) -> None:
    fake_macmon.configure([MACMON_LINES["v0.8.2"]], linger=30.0)
    source = macmon_source()
    source.sample(ctx(interval_s=1.0))
    wait_for(lambda: bool(source.sample(ctx(interval_s=1.0)).gpus))
    source.sample(ctx(interval_s=0.25))
    wait_for(lambda: len(fake_macmon.starts()) == 2)
    assert [s["argv"][-1] for s in fake_macmon.starts()] == ["1000", "250"]
    assert source.restarts == 0  # a deliberate restart is not a crash


def test_a_macmon_that_goes_quiet_is_not_taken_for_live_and_is_restarted(
    fake_macmon: FakeMacmon, macmon_source: MacmonFactory
) -> None:
    # One line, then nothing while it keeps running: its 88 % and 31.5 W showed as live for ever.
    fake_macmon.configure([MACMON_LINES["v0.8.2"]], linger=30.0)
    source = macmon_source(silent_after_s=0.6)
    source.sample(ctx(interval_s=0.1))
    wait_for(lambda: bool(source.sample(ctx(interval_s=0.1)).gpus))
    wait_for(lambda: source.sample(ctx(interval_s=0.1)).status.state is SourceState.ERROR)
    reading = source.sample(ctx(interval_s=0.1))
    assert reading.gpus == () and "has not reported for" in reading.status.message
    wait_for(lambda: len(fake_macmon.starts()) == 2)  # started again, to speak up or fail clearly


@pytest.mark.parametrize(
    "lines", [[], ["Error: IOReport channel missing", "{not json"]], ids=["silent", "unread"]
)
def test_a_macmon_that_never_reports_is_a_problem_and_is_restarted_again_and_again(
    lines: list[str], fake_macmon: FakeMacmon, macmon_source: MacmonFactory
) -> None:
    # Silent (or unreadable) from the start, the Mac showed "CPU only" with no problem, and a
    # macmon silent again after one restart was never restarted twice.
    fake_macmon.configure(lines, linger=30.0)
    source = macmon_source(silent_after_s=0.3, backoff_max_s=0.6)
    source.sample(ctx(interval_s=0.1))
    wait_for(lambda: source.sample(ctx(interval_s=0.1)).status.state is SourceState.ERROR)
    message = source.sample(ctx(interval_s=0.1)).status.message
    expected = "has not reported for" if not lines else "printed 2 lines this lollma-tui cannot read"
    assert expected in message and message.endswith("— restarting it")

    def started_again() -> bool:
        source.sample(ctx(interval_s=0.1))  # the sampler's ticks are what notice the silence
        return len(fake_macmon.starts()) >= 3

    wait_for(started_again)
    snap = HardwareSampler(lambda _: None, [source]).sample_now()
    assert snap.gpu_summary != "CPU only" or snap.problems


def test_a_macmon_that_keeps_reporting_is_left_running(
    fake_macmon: FakeMacmon, macmon_source: MacmonFactory
) -> None:
    fake_macmon.configure([MACMON_LINES["v0.8.2"]] * 30, gap=0.05, linger=30.0)
    source = macmon_source(silent_after_s=0.3)
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        reading = source.sample(ctx(interval_s=0.05))
        assert reading.status.state is SourceState.OK, reading.status.message
        time.sleep(0.05)
    assert len(fake_macmon.starts()) == 1


def test_an_exit_says_what_macmon_wrote_to_stderr(
    fake_macmon: FakeMacmon, macmon_source: MacmonFactory
) -> None:
    fake_macmon.configure([], exit_code=1, stderr="Error: Failed to get SMC key: kIOReturnNotPrivileged\n")
    source = macmon_source(backoff_initial_s=5.0, backoff_max_s=5.0)
    source.sample(ctx())
    wait_for(lambda: source.sample(ctx()).status.state is SourceState.ERROR)
    assert source.sample(ctx()).status.message == (
        "macmon exited (code 1: Error: Failed to get SMC key: kIOReturnNotPrivileged) — restarting in 5 s"
    )


def test_close_kills_the_child_promptly(fake_macmon: FakeMacmon, macmon_source: MacmonFactory) -> None:
    fake_macmon.configure([MACMON_LINES["v0.8.2"]], linger=60.0)
    source = macmon_source()
    source.sample(ctx())
    wait_for(lambda: bool(source.sample(ctx()).gpus))
    (start,) = fake_macmon.starts()
    child = psutil.Process(start["pid"])
    began = time.monotonic()
    source.close()
    assert time.monotonic() - began < 5.0
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_all_zero_readings_are_flagged(fake_macmon: FakeMacmon, macmon_source: MacmonFactory) -> None:
    zeros = json.dumps(
        {
            "temp": {"cpu_temp_avg": 0, "gpu_temp_avg": 0},
            "memory": {"ram_total": 17179869184, "ram_usage": 1, "swap_total": 0, "swap_usage": 0},
            "ecpu_usage": [0, 0.0],
            "pcpu_usage": [0, 0.0],
            "gpu_usage": [0, 0.0],
            "cpu_power": 0.0,
            "gpu_power": 0.0,
            "ane_power": 0.0,
            "all_power": 0.0,
        }
    )
    fake_macmon.configure([zeros], linger=30.0)
    source = macmon_source()
    source.sample(ctx())

    def flagged() -> SourceReading | None:
        reading = source.sample(ctx())
        return reading if reading.status.state is SourceState.ERROR else None

    wait_for(lambda: flagged() is not None)
    reading = source.sample(ctx())
    assert "headless" in reading.status.message
    assert reading.gpus == ()

"""HostSource with real psutil figures, checked against what the kernel says independently."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hw_fakes import GiB, ctx

from lollma_tui.core.hardware.host import HostSource, read_cpu_model
from lollma_tui.core.hardware.snapshots import SourceState


def meminfo_kib(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name == field:
            return int(rest.split()[0])
    raise KeyError(field)


def test_cpu_figures_are_sane_on_this_machine() -> None:
    source = HostSource()
    first = source.sample(ctx()).cpu
    assert first is not None
    assert first.percent is None  # nothing to compare with yet
    time.sleep(0.05)
    reading = source.sample(ctx())
    assert reading.status.state is SourceState.OK
    cpu = reading.cpu
    assert cpu is not None
    assert cpu.logical_cores == os.cpu_count()
    assert cpu.logical_cores is not None
    assert cpu.physical_cores is None or 1 <= cpu.physical_cores <= cpu.logical_cores
    assert len(cpu.per_core_percent) == os.cpu_count()
    assert cpu.percent is not None
    assert 0.0 <= cpu.percent <= 100.0
    assert all(0.0 <= p <= 100.0 for p in cpu.per_core_percent)
    load = os.getloadavg()
    assert cpu.load_avg is not None
    assert cpu.load_avg[2] == pytest.approx(load[2], abs=1.0)
    if cpu.freq_mhz is not None:
        assert 100.0 < cpu.freq_mhz < 10_000.0


def test_cpu_percent_sees_a_busy_loop() -> None:
    source = HostSource()
    source.sample(ctx())
    end = time.perf_counter() + 0.4
    while time.perf_counter() < end:
        pass
    cpu = source.sample(ctx()).cpu
    assert cpu is not None
    assert cpu.percent is not None
    # One of the cores was pinned for the whole window (others' load only adds to it).
    assert cpu.percent >= 100.0 / (os.cpu_count() or 1) * 0.6
    assert max(cpu.per_core_percent) >= 50.0


def test_memory_matches_proc_meminfo() -> None:
    memory = HostSource().sample(ctx()).memory
    assert memory is not None
    assert memory.total_bytes == pytest.approx(meminfo_kib("MemTotal") * 1024, rel=0.001)
    assert 1 * GiB <= memory.total_bytes <= 4096 * GiB
    assert 0 < memory.available_bytes <= memory.total_bytes
    assert memory.used_bytes == memory.total_bytes - memory.available_bytes
    assert memory.available_bytes == pytest.approx(meminfo_kib("MemAvailable") * 1024, rel=0.2)
    assert memory.swap_total_bytes == pytest.approx(meminfo_kib("SwapTotal") * 1024, abs=1 << 20)
    assert memory.used_fraction is not None
    assert 0.0 < memory.used_fraction < 1.0


def test_cpu_model_from_cpuinfo(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD Ryzen 9 7950X 16-Core Processor\n"
    )
    assert read_cpu_model(x86) == "AMD Ryzen 9 7950X 16-Core Processor"
    arm = tmp_path / "arm"
    arm.write_text(
        "processor\t: 0\nBogoMIPS\t: 48.00\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B\n"
    )
    assert read_cpu_model(arm) == "Raspberry Pi 4 Model B"
    assert read_cpu_model(tmp_path / "missing") is None

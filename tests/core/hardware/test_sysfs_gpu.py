"""SysfsGpuSource over fake /sys/class/drm trees for amdgpu, i915 and xe."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest
from hw_fakes import GiB, MiB, ctx, link_driver, write_tree

from lollma_tui.core.hardware.sampler import HardwareSampler
from lollma_tui.core.hardware.snapshots import GpuState, GpuVendor, SourceState
from lollma_tui.core.hardware.sysfs_gpu import SysfsGpuSource


def amd_card(drm_root: Path, n: int = 0, overrides: Mapping[str, str | int | None] | None = None) -> Path:
    files: dict[str, str | int | None] = {
        "device/vendor": "0x1002",
        "device/product_name": "AMD Radeon RX 7900 XTX",
        "device/uevent": f"DRIVER=amdgpu\nPCI_SLOT_NAME=0000:0{n + 3}:00.0\nPCI_ID=1002:744C",
        "device/gpu_busy_percent": 37,
        "device/mem_busy_percent": 12,
        "device/mem_info_vram_used": 6 * GiB,
        "device/mem_info_vram_total": 24 * GiB,
        "device/mem_info_gtt_used": 100 * MiB,
        "device/mem_info_gtt_total": 16 * GiB,
        "device/hwmon/hwmon3/temp1_input": 45000,
        "device/hwmon/hwmon3/temp1_label": "edge",
        "device/hwmon/hwmon3/temp2_input": 61000,
        "device/hwmon/hwmon3/temp2_label": "junction",
        "device/hwmon/hwmon3/power1_average": 150_000_000,
        "device/hwmon/hwmon3/power1_input": 999_000_000,
        "device/hwmon/hwmon3/power1_cap": 300_000_000,
        "device/hwmon/hwmon3/freq1_input": 2_100_000_000,
        "device/hwmon/hwmon3/pwm1": 51,
        "device/hwmon/hwmon3/pwm1_max": 255,
    }
    files.update(overrides or {})
    card = drm_root / f"card{n}"
    write_tree(card, {k: v for k, v in files.items() if v is not None})
    link_driver(card / "device", drm_root.parent.parent / "bus/pci/drivers", "amdgpu")
    return card


def test_amdgpu_discrete_card(drm_root: Path) -> None:
    amd_card(drm_root)
    # Connector entries and other vendors' cards must be ignored.
    (drm_root / "card0-DP-1").mkdir()
    write_tree(drm_root / "card1", {"device/vendor": "0x10de"})
    link_driver(drm_root / "card1/device", drm_root.parent.parent / "bus/pci/drivers", "nvidia")
    (drm_root / "renderD128").mkdir()

    reading = SysfsGpuSource(drm_root).sample(ctx())
    assert reading.status.state is SourceState.OK
    assert reading.status.message == "sysfs: 1 AMD GPU"
    (gpu,) = reading.gpus
    assert gpu.key == "amd0"
    assert gpu.vendor is GpuVendor.AMD
    assert gpu.name == "AMD Radeon RX 7900 XTX"
    assert gpu.utilization_percent == 37.0
    assert gpu.memory_bandwidth_percent == 12.0
    assert gpu.memory_used_bytes == 6 * GiB
    assert gpu.memory_total_bytes == 24 * GiB
    assert gpu.temperature_c == 45.0  # the "edge" sensor, not junction
    assert gpu.power_w == pytest.approx(150.0)  # power1_average preferred over power1_input
    assert gpu.power_limit_w == pytest.approx(300.0)
    assert gpu.clock_mhz == 2100
    assert gpu.fan_percent == pytest.approx(20.0)
    assert gpu.unified_memory is False
    assert gpu.bus_id == "0000:03:00.0"


def test_values_are_reread_each_tick(drm_root: Path) -> None:
    card = amd_card(drm_root)
    source = SysfsGpuSource(drm_root)
    assert source.sample(ctx(now=0.0)).gpus[0].utilization_percent == 37.0
    (card / "device/gpu_busy_percent").write_text("99\n")
    assert source.sample(ctx(now=1.0)).gpus[0].utilization_percent == 99.0


def test_amdgpu_power_input_fallback_and_missing_hwmon(drm_root: Path) -> None:
    amd_card(drm_root, 0, {"device/hwmon/hwmon3/power1_average": None})
    no_sensors = ["temp1_input", "temp1_label", "temp2_input", "temp2_label", "power1_average"]
    no_sensors += ["power1_input", "power1_cap", "freq1_input", "pwm1", "pwm1_max"]
    amd_card(drm_root, 1, {f"device/hwmon/hwmon3/{name}": None for name in no_sensors})
    first, second = SysfsGpuSource(drm_root).sample(ctx()).gpus
    assert first.power_w == pytest.approx(999.0)
    assert second.temperature_c is None
    assert second.power_w is None
    assert second.fan_percent is None
    assert second.clock_mhz is None
    assert second.utilization_percent == 37.0


def test_amd_apu_counts_gtt_as_unified_memory(drm_root: Path) -> None:
    amd_card(
        drm_root,
        0,
        {
            "device/product_name": None,
            "device/mem_info_vram_total": 512 * MiB,
            "device/mem_info_vram_used": 300 * MiB,
            "device/mem_info_gtt_total": 15 * GiB,
            "device/mem_info_gtt_used": 5 * GiB,
        },
    )
    (gpu,) = SysfsGpuSource(drm_root).sample(ctx()).gpus
    assert gpu.name == "AMD GPU (card0)"
    assert gpu.unified_memory is True
    assert gpu.memory_used_bytes == 300 * MiB + 5 * GiB
    assert gpu.memory_total_bytes == 512 * MiB + 15 * GiB


def test_i915_integrated_gpu(drm_root: Path) -> None:
    card = drm_root / "card0"
    write_tree(
        card,
        {
            "device/vendor": "0x8086",
            "device/uevent": "DRIVER=i915\nPCI_SLOT_NAME=0000:00:02.0",
            "gt_cur_freq_mhz": 1300,
            "gt_act_freq_mhz": 1250,
            "gt_max_freq_mhz": 1500,
        },
    )
    reading = SysfsGpuSource(drm_root).sample(ctx())
    (gpu,) = reading.gpus
    assert gpu.vendor is GpuVendor.INTEL
    assert gpu.name == "Intel GPU (card0)"
    assert gpu.clock_mhz == 1250  # actual frequency preferred over requested
    assert gpu.utilization_percent is None
    assert gpu.unified_memory is True
    assert gpu.memory_total_bytes is None
    assert "CAP_PERFMON" in reading.status.message


def test_xe_discrete_gpu_power_from_energy_counter(drm_root: Path) -> None:
    card = drm_root / "card1"
    hw = "device/hwmon/hwmon5"
    write_tree(
        card,
        {
            "device/vendor": "0x8086",
            "device/tile0/gt0/freq0/act_freq": 2400,
            "device/tile0/gt0/freq0/cur_freq": 2450,
            "device/tile0/physical_vram_size_bytes": 12 * GiB,
            f"{hw}/temp1_input": 30000,
            f"{hw}/temp1_label": "vram",
            f"{hw}/temp2_input": 52000,
            f"{hw}/temp2_label": "pkg",
            f"{hw}/energy1_input": 1_000_000,
            f"{hw}/power1_max": 190_000_000,
        },
    )
    link_driver(card / "device", drm_root.parent.parent / "bus/pci/drivers", "xe")
    source = SysfsGpuSource(drm_root)
    (first,) = source.sample(ctx(now=10.0)).gpus
    assert first.power_w is None  # a rate needs two readings
    (card / f"{hw}/energy1_input").write_text("101000000\n")
    (gpu,) = source.sample(ctx(now=12.0)).gpus
    assert gpu.power_w == pytest.approx(50.0)
    assert gpu.power_limit_w == pytest.approx(190.0)
    assert gpu.temperature_c == 52.0
    assert gpu.clock_mhz == 2400
    assert gpu.memory_total_bytes == 12 * GiB
    assert gpu.memory_used_bytes is None
    assert gpu.unified_memory is False
    assert gpu.key == "intel1"


def test_no_drm_directory_is_absent_and_cpu_only(tmp_path: Path) -> None:
    source = SysfsGpuSource(tmp_path / "nothing/here")
    reading = source.sample(ctx())
    assert reading.status.state is SourceState.ABSENT
    assert reading.gpus == ()
    snap = HardwareSampler(lambda _: None, [SysfsGpuSource(tmp_path / "nothing/here")]).sample_now()
    assert snap.gpu_summary == "CPU only"


def test_cards_are_rescanned_every_30_s_when_none_found(drm_root: Path) -> None:
    source = SysfsGpuSource(drm_root)
    assert source.sample(ctx(now=0.0)).gpus == ()
    amd_card(drm_root)
    assert source.sample(ctx(now=29.0)).gpus == ()  # not looked again yet
    assert len(source.sample(ctx(now=30.0)).gpus) == 1


def test_a_card_unplugged_added_or_rebound_is_seen_at_the_next_scan(drm_root: Path) -> None:
    # Found once, the cards were read from the same paths for good: one unplugged stayed with
    # every figure blank, one added never showed, a rebound one lost its hwmon figures.
    amd_card(drm_root)
    source = SysfsGpuSource(drm_root)
    assert [g.temperature_c for g in source.sample(ctx(now=0.0)).gpus] == [45.0]
    amd_card(drm_root, 1)
    shutil.rmtree(drm_root / "card0/device/hwmon/hwmon3")  # rebound: hwmon3 is now hwmon7
    write_tree(drm_root / "card0/device/hwmon/hwmon7", {"temp1_input": 52000, "power1_average": 90_000_000})
    assert len(source.sample(ctx(now=10.0)).gpus) == 1  # until the next scan
    both = source.sample(ctx(now=30.0)).gpus
    assert [(g.index, g.temperature_c, g.power_w) for g in both] == [(0, 52.0, 90.0), (1, 45.0, 150.0)]
    shutil.rmtree(drm_root / "card1")
    (left,) = source.sample(ctx(now=60.0)).gpus
    assert left.index == 0 and left.utilization_percent == 37.0


def test_a_sleeping_card_is_asleep_and_its_figures_are_not_read(drm_root: Path) -> None:
    # Reading a runtime-suspended dGPU's files wakes it: a hybrid laptop's never slept.
    card = amd_card(drm_root, overrides={"device/power/runtime_status": "suspended"})
    (gpu,) = SysfsGpuSource(drm_root).sample(ctx()).gpus
    assert gpu.state is GpuState.ASLEEP and gpu.name == "AMD Radeon RX 7900 XTX"
    assert gpu.utilization_percent is None and gpu.memory_used_bytes is None
    assert "gpu_busy_percent" in {p.name for p in (card / "device").iterdir()}  # there, not read
    (card / "device/power/runtime_status").write_text("active\n")
    source = SysfsGpuSource(drm_root)
    (awake,) = source.sample(ctx()).gpus
    assert awake.state is GpuState.OK and awake.utilization_percent == 37.0

"""NvidiaSource against a fake `pynvml` module injected at the loader seam."""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

import psutil
import pynvml
import pytest
from hw_fakes import FakeGpu, FakeNvml, GiB, MiB, ctx, kill_tree, proc_info, spawn_with_child

from lollma_tui.core.hardware.nvidia import NvidiaSource, import_pynvml, sysfs_pci_address
from lollma_tui.core.hardware.sampler import HardwareSampler
from lollma_tui.core.hardware.snapshot_lines import decode, encode
from lollma_tui.core.hardware.snapshots import (
    GpuState,
    GpuVendor,
    MemorySnapshot,
    SourceState,
    SystemSnapshot,
)
from lollma_tui.core.hardware.summary import gpu_summary
from lollma_tui.core.session.budget import budget_from_snapshot


def source_for(fake: FakeNvml, **kwargs: object) -> NvidiaSource:
    return NvidiaSource(fake.loader(), **kwargs)  # type: ignore[arg-type]


def test_one_gpu_maps_every_field_with_units(fake_nvml: FakeNvml) -> None:
    reading = source_for(fake_nvml).sample(ctx())

    assert reading.status.state is SourceState.OK
    assert reading.status.message == "NVML: 1 GPU, driver 580.65.06"
    (gpu,) = reading.gpus
    assert gpu.key == "nvidia0"
    assert gpu.vendor is GpuVendor.NVIDIA
    assert gpu.state is GpuState.OK
    assert gpu.name == "NVIDIA GeForce RTX 4090"
    assert gpu.utilization_percent == 87.0
    assert gpu.memory_bandwidth_percent == 54.0
    assert gpu.memory_used_bytes == 8 * GiB
    assert gpu.memory_total_bytes == 24 * GiB
    assert gpu.temperature_c == 71.0
    assert gpu.power_w == pytest.approx(215.0)
    assert gpu.power_limit_w == pytest.approx(450.0)
    assert gpu.clock_mhz == 2520
    assert gpu.fan_percent == 45.0
    assert gpu.throttle_reasons == ("power cap", "hw thermal")
    assert gpu.unified_memory is False
    assert gpu.mig_enabled is False
    assert gpu.bus_id == "00000000:01:00.0"
    assert gpu.processes == ()
    # No pids asked about: the process lists are not even queried.
    assert fake_nvml.calls["nvmlDeviceGetComputeRunningProcesses_v3"] == 0


def test_handles_are_fetched_once_not_per_tick(fake_nvml: FakeNvml) -> None:
    source = source_for(fake_nvml)
    for t in range(5):
        source.sample(ctx(now=float(t)))
    assert fake_nvml.calls["nvmlInit"] == 1
    assert fake_nvml.calls["nvmlDeviceGetHandleByIndex"] == 1
    assert fake_nvml.calls["nvmlDeviceGetUtilizationRates"] == 5


def test_two_gpus_are_reported_in_index_order() -> None:
    fake = FakeNvml([FakeGpu(name="NVIDIA A100", util_gpu=10), FakeGpu(name="NVIDIA L4", util_gpu=90)])
    reading = source_for(fake).sample(ctx())
    assert [(g.index, g.name, g.utilization_percent) for g in reading.gpus] == [
        (0, "NVIDIA A100", 10.0),
        (1, "NVIDIA L4", 90.0),
    ]
    assert reading.status.message.startswith("NVML: 2 GPUs")

    sampler = HardwareSampler(lambda _: None, [source_for(fake)])
    assert sampler.sample_now().gpu_summary == "2 GPUs: NVIDIA A100, NVIDIA L4"


def test_mig_enabled_gpu_has_no_utilisation() -> None:
    gpu = FakeGpu(name="NVIDIA A100-SXM4-80GB", mig_mode=pynvml.NVML_DEVICE_MIG_ENABLE)
    gpu.errors["nvmlDeviceGetUtilizationRates"] = pynvml.NVML_ERROR_NOT_SUPPORTED
    (snap,) = source_for(FakeNvml([gpu])).sample(ctx()).gpus
    assert snap.mig_enabled is True
    assert snap.utilization_percent is None
    assert snap.memory_bandwidth_percent is None
    assert snap.memory_total_bytes == 24 * GiB

    sampler = HardwareSampler(lambda _: None, [source_for(FakeNvml([gpu]))])
    assert sampler.sample_now().gpu_summary == "GPU: NVIDIA A100-SXM4-80GB (MIG)"


def test_unsupported_fields_are_probed_once_then_left_alone() -> None:
    gpu = FakeGpu()
    gpu.errors["nvmlDeviceGetFanSpeed"] = pynvml.NVML_ERROR_NOT_SUPPORTED
    gpu.errors["nvmlDeviceGetPowerUsage"] = pynvml.NVML_ERROR_NOT_SUPPORTED
    gpu.errors["nvmlDeviceGetClockInfo"] = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    fake = FakeNvml([gpu])
    source = source_for(fake, slow_every_s=0.0)  # slow tier every tick: fan would be asked each time
    for t in range(6):
        (snap,) = source.sample(ctx(now=float(t))).gpus
        assert snap.fan_percent is None
        assert snap.power_w is None
        assert snap.clock_mhz is None
        assert snap.temperature_c == 71.0
    assert fake.calls["nvmlDeviceGetFanSpeed"] == 1
    assert fake.calls["nvmlDeviceGetPowerUsage"] == 1
    assert fake.calls["nvmlDeviceGetClockInfo"] == 1
    assert fake.calls["nvmlDeviceGetTemperatureV"] == 6


def test_transient_errors_are_retried_next_tick() -> None:
    gpu = FakeGpu()
    gpu.errors["nvmlDeviceGetUtilizationRates"] = pynvml.NVML_ERROR_TIMEOUT
    fake = FakeNvml([gpu])
    source = source_for(fake)
    assert source.sample(ctx(now=0.0)).gpus[0].utilization_percent is None
    del gpu.errors["nvmlDeviceGetUtilizationRates"]
    assert source.sample(ctx(now=1.0)).gpus[0].utilization_percent == 87.0


def test_older_bindings_fall_back_to_legacy_calls() -> None:
    gpu = FakeGpu(throttle_mask=0x1)
    # Bindings without the versioned temperature call; a driver without the new event-reasons name.
    gpu.errors["nvmlDeviceGetCurrentClocksEventReasons"] = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    fake = FakeNvml([gpu], missing=("nvmlDeviceGetTemperatureV", "nvmlMemory_v2"))
    (snap,) = source_for(fake).sample(ctx()).gpus
    assert snap.temperature_c == 71.0
    assert snap.throttle_reasons == ("idle",)
    assert fake.calls["nvmlDeviceGetTemperature"] == 1
    assert fake.calls["nvmlDeviceGetCurrentClocksThrottleReasons"] == 1
    assert fake.calls["nvmlDeviceGetMemoryInfo"] == 1
    assert fake.calls["nvmlDeviceGetMemoryInfo_v2"] == 0


def test_memory_info_v2_preferred_when_bindings_have_it(fake_nvml: FakeNvml) -> None:
    source_for(fake_nvml).sample(ctx())
    assert fake_nvml.calls["nvmlDeviceGetMemoryInfo_v2"] == 1
    assert fake_nvml.calls["nvmlDeviceGetMemoryInfo"] == 0


def test_throttle_reasons_are_read_every_few_seconds_only(fake_nvml: FakeNvml) -> None:
    source = source_for(fake_nvml, slow_every_s=5.0)
    for t in range(11):
        source.sample(ctx(now=float(t)))
    # t = 0, 5 and 10
    assert fake_nvml.calls["nvmlDeviceGetCurrentClocksEventReasons"] == 3
    assert fake_nvml.calls["nvmlDeviceGetFanSpeed"] == 3
    fake_nvml.gpus[0].throttle_mask = 0
    assert source.sample(ctx(now=11.0)).gpus[0].throttle_reasons == ("power cap", "hw thermal")
    assert source.sample(ctx(now=15.0)).gpus[0].throttle_reasons == ()


@pytest.mark.parametrize("unsupported", [True, False], ids=["memory-info-not-supported", "total-zero"])
def test_unified_memory_gpu_is_flagged(unsupported: bool) -> None:
    gpu = FakeGpu(name="NVIDIA GB10")
    if unsupported:
        gpu.errors["nvmlDeviceGetMemoryInfo"] = pynvml.NVML_ERROR_NOT_SUPPORTED
        gpu.errors["nvmlDeviceGetMemoryInfo_v2"] = pynvml.NVML_ERROR_NOT_SUPPORTED
    else:
        gpu.memory_total = gpu.memory_used = 0
    (snap,) = source_for(FakeNvml([gpu])).sample(ctx()).gpus
    assert snap.unified_memory is True
    assert snap.memory_used_bytes is None
    assert snap.memory_total_bytes is None
    assert snap.utilization_percent == 87.0


def test_memory_info_refused_is_unknown_not_unified() -> None:
    # A card that refuses its memory info has VRAM of its own: it was shown as unified, and the
    # fit estimate counted the machine's free RAM as its free VRAM.
    gpu = FakeGpu(name="NVIDIA GeForce RTX 4090")
    gpu.errors["nvmlDeviceGetMemoryInfo"] = pynvml.NVML_ERROR_NO_PERMISSION
    gpu.errors["nvmlDeviceGetMemoryInfo_v2"] = pynvml.NVML_ERROR_NO_PERMISSION
    source = source_for(FakeNvml([gpu]))
    for t in range(3):
        (snap,) = source.sample(ctx(now=float(t))).gpus
        assert snap.unified_memory is False
        assert snap.memory_total_bytes is None and snap.memory_free_bytes is None


def test_transient_memory_error_is_not_mistaken_for_unified() -> None:
    gpu = FakeGpu()
    gpu.errors["nvmlDeviceGetMemoryInfo_v2"] = pynvml.NVML_ERROR_UNKNOWN
    (snap,) = source_for(FakeNvml([gpu])).sample(ctx()).gpus
    assert snap.unified_memory is False
    assert snap.memory_total_bytes is None


@pytest.mark.parametrize(
    ("code", "state", "words"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, SourceState.ABSENT, "libnvidia-ml not found"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, SourceState.ERROR, "driver/library version mismatch"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, SourceState.ERROR, "driver not loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, SourceState.ERROR, "No permission"),
        (pynvml.NVML_ERROR_UNKNOWN, SourceState.ERROR, "container"),
    ],
)
def test_init_failures_become_one_status_line(code: int, state: SourceState, words: str) -> None:
    fake = FakeNvml()
    fake.init_error = code
    reading = source_for(fake).sample(ctx())
    assert reading.gpus == ()
    assert reading.status.state is state
    assert words in reading.status.message
    if state is SourceState.ERROR:
        assert reading.status.message.endswith("retrying every 30 s")


def test_init_is_retried_every_30_s_and_recovers() -> None:
    fake = FakeNvml()
    fake.init_error = pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH
    source = source_for(fake)
    source.sample(ctx(now=100.0))
    for t in (101.0, 110.0, 129.9):
        assert source.sample(ctx(now=t)).status.state is SourceState.ERROR
    assert fake.calls["nvmlInit"] == 1

    fake.init_error = None  # the user rebooted / reloaded the module
    reading = source.sample(ctx(now=130.0))
    assert fake.calls["nvmlInit"] == 2
    assert reading.status.state is SourceState.OK
    assert len(reading.gpus) == 1


def test_init_failure_leaves_other_sources_working() -> None:
    fake = FakeNvml()
    fake.init_error = pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH
    from lollma_tui.core.hardware.host import HostSource

    snap = HardwareSampler(lambda _: None, [HostSource(), source_for(fake)]).sample_now()
    assert snap.cpu is not None
    assert snap.memory is not None
    assert snap.gpu_summary.startswith("GPU unavailable: NVIDIA driver/library version mismatch")
    assert [p.name for p in snap.problems] == ["nvidia"]


def test_missing_bindings_are_absent_not_an_error() -> None:
    def no_bindings() -> object:
        raise ImportError("No module named 'pynvml'")

    reading = NvidiaSource(no_bindings).sample(ctx())
    assert reading.status.state is SourceState.ABSENT
    assert "nvidia-ml-py not installed" in reading.status.message


def test_gpu_lost_mid_run_keeps_the_others_then_reinitialises() -> None:
    fake = FakeNvml([FakeGpu(name="NVIDIA A", util_gpu=11), FakeGpu(name="NVIDIA B", util_gpu=22)])
    source = source_for(fake)
    assert source.sample(ctx(now=0.0)).status.state is SourceState.OK

    fake.gpus[1].lost = True
    reading = source.sample(ctx(now=1.0))
    a, b = reading.gpus
    assert (a.state, a.utilization_percent) == (GpuState.OK, 11.0)
    assert (b.state, b.utilization_percent, b.name) == (GpuState.LOST, None, "NVIDIA B")
    assert reading.status.state is SourceState.ERROR
    assert "GPU 1 (NVIDIA B) is lost" in reading.status.message

    lost_calls = fake.calls["nvmlDeviceGetUtilizationRates"]
    reading = source.sample(ctx(now=20.0))
    assert reading.gpus[1].state is GpuState.LOST
    assert reading.gpus[0].utilization_percent == 11.0
    # Only GPU A was asked; the lost one is not hammered.
    assert fake.calls["nvmlDeviceGetUtilizationRates"] == lost_calls + 1
    assert fake.calls["nvmlInit"] == 1

    fake.gpus[1].lost = False  # back after a reset
    reading = source.sample(ctx(now=31.0))
    assert fake.calls["nvmlInit"] == 2
    assert reading.status.state is SourceState.OK
    assert [g.state for g in reading.gpus] == [GpuState.OK, GpuState.OK]
    assert reading.gpus[1].utilization_percent == 22.0


def test_gpu_still_lost_at_reinit_does_not_hide_the_others() -> None:
    fake = FakeNvml([FakeGpu(name="NVIDIA A", util_gpu=11), FakeGpu(name="NVIDIA B")])
    source = source_for(fake)
    source.sample(ctx(now=0.0))
    fake.gpus[1].lost = True
    source.sample(ctx(now=1.0))
    reading = source.sample(ctx(now=31.0))  # re-initialised, B still gone
    assert fake.calls["nvmlInit"] == 2
    a, b = reading.gpus
    assert (a.state, a.utilization_percent) == (GpuState.OK, 11.0)
    assert (b.state, b.name) == (GpuState.LOST, "NVIDIA GPU 1")
    assert reading.status.state is SourceState.ERROR
    assert "GPU 1 (NVIDIA GPU 1) is lost" in reading.status.message


def test_sleeping_gpu_is_not_woken(tmp_path: Path) -> None:
    status_file = tmp_path / "bus/pci/devices/0000:01:00.0/power/runtime_status"
    status_file.parent.mkdir(parents=True)
    status_file.write_text("suspended\n")
    fake = FakeNvml()
    source = source_for(fake, sysfs_root=tmp_path)
    (snap,) = source.sample(ctx()).gpus
    assert snap.state is GpuState.ASLEEP
    assert fake.calls["nvmlDeviceGetUtilizationRates"] == 0

    status_file.write_text("active\n")
    (snap,) = source.sample(ctx(now=1.0)).gpus
    assert snap.state is GpuState.OK
    assert snap.utilization_percent == 87.0


def test_pci_address_conversion() -> None:
    assert sysfs_pci_address("00000000:3B:00.0") == "0000:3b:00.0"
    assert sysfs_pci_address("0001:01:00.0") == "0001:01:00.0"


# -- per-process memory --------------------------------------------------------------------------


def test_process_memory_only_for_our_pids() -> None:
    gpu = FakeGpu(compute=[proc_info(100, 6 * GiB), proc_info(555, 1 * GiB), proc_info(101, 512 * MiB)])
    (snap,) = source_for(FakeNvml([gpu])).sample(ctx(pids=frozenset({100, 101, 102}))).gpus
    assert [(p.pid, p.used_bytes) for p in snap.processes] == [(100, 6 * GiB), (101, 512 * MiB)]


def test_process_lists_fall_back_from_v3_to_v2_to_v1() -> None:
    gpu = FakeGpu(compute=[proc_info(100, 2 * GiB)])
    gpu.errors["nvmlDeviceGetComputeRunningProcesses_v3"] = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    fake = FakeNvml([gpu], missing=("nvmlDeviceGetComputeRunningProcesses_v2",))
    source = source_for(fake)
    for t in range(3):
        (snap,) = source.sample(ctx(now=float(t), pids=frozenset({100}))).gpus
        assert [(p.pid, p.used_bytes) for p in snap.processes] == [(100, 2 * GiB)]
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses_v3"] == 1
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses"] == 3


def test_library_mismatch_error_from_unversioned_call_counts_as_missing() -> None:
    gpu = FakeGpu(compute=[proc_info(100, 3 * GiB)])
    fake = FakeNvml([gpu])

    def mismatch(handle: object) -> list[object]:
        raise pynvml.NVMLLibraryMismatchError("use a versioned function")

    module = fake.module()
    module.nvmlDeviceGetComputeRunningProcesses_v3 = mismatch  # type: ignore[attr-defined]
    (snap,) = NvidiaSource(lambda: module).sample(ctx(pids=frozenset({100}))).gpus
    assert [(p.pid, p.used_bytes) for p in snap.processes] == [(100, 3 * GiB)]
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses_v2"] == 1


def test_compute_and_graphics_entries_merge_without_double_counting() -> None:
    gpu = FakeGpu(
        # MIG: the same pid once per GPU instance → added up.
        compute=[proc_info(100, 1 * GiB, gi=1), proc_info(100, 2 * GiB, gi=2), proc_info(200, None)],
        # C+G: the same allocation listed twice → counted once.
        graphics=[proc_info(100, 3 * GiB), proc_info(300, 256 * MiB)],
    )
    (snap,) = source_for(FakeNvml([gpu])).sample(ctx(pids=frozenset({100, 200, 300}))).gpus
    assert [(p.pid, p.used_bytes) for p in snap.processes] == [(100, 3 * GiB), (200, None), (300, 256 * MiB)]


def test_not_available_sentinel_reads_as_none() -> None:
    gpu = FakeGpu(compute=[proc_info(100, (1 << 64) - 1)])
    (snap,) = source_for(FakeNvml([gpu])).sample(ctx(pids=frozenset({100}))).gpus
    assert snap.processes[0].used_bytes is None


def test_no_permission_for_process_list_keeps_device_metrics() -> None:
    gpu = FakeGpu(compute=[proc_info(100, 1 * GiB)])
    for name in ("_v3", "_v2", ""):
        gpu.errors["nvmlDeviceGetComputeRunningProcesses" + name] = pynvml.NVML_ERROR_NO_PERMISSION
    fake = FakeNvml([gpu])
    source = source_for(fake)
    for t in range(3):
        (snap,) = source.sample(ctx(now=float(t), pids=frozenset({100}))).gpus
        assert snap.processes == ()
        assert snap.utilization_percent == 87.0
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses_v3"] == 1


def test_sampler_joins_gpu_memory_to_our_process_tree() -> None:
    # Our "server" is a real process with a real child, like an Ollama server and its runner.
    server = spawn_with_child()
    try:
        (runner,) = psutil.Process(server.pid).children()
        gpu = FakeGpu(compute=[proc_info(runner.pid, 6 * GiB), proc_info(server.pid, 300 * MiB)])
        gpu2 = FakeGpu(name="second", compute=[proc_info(runner.pid, 2 * GiB), proc_info(os.getpid(), GiB)])
        sampler = HardwareSampler(lambda _: None, [source_for(FakeNvml([gpu, gpu2]))])
        sampler.set_process_ids_provider(lambda: [server.pid])
        snap = sampler.sample_now()
        (proc,) = snap.processes
        assert proc.pid == server.pid
        assert proc.child_pids == (runner.pid,)
        assert proc.vram_bytes == 300 * MiB
        assert proc.total_vram_bytes == 300 * MiB + 8 * GiB
        # Our own test process is on the GPU list but was not asked about.
        assert all(p.pid != os.getpid() for g in snap.gpus for p in g.processes)
    finally:
        kill_tree(server)


# -- the real bindings on this machine ------------------------------------------------------------


def test_real_pynvml_import_seam_matches_this_machine() -> None:
    module = import_pynvml()
    assert module.NVMLError is pynvml.NVMLError
    source = NvidiaSource()
    reading = source.sample(ctx())
    try:
        if ctypes.util.find_library("nvidia-ml") is None:
            # CPU-only box: the real library load fails and that is not an error.
            assert reading.status.state is SourceState.ABSENT
            assert reading.status.message == "No NVIDIA driver (libnvidia-ml not found)"
            assert reading.gpus == ()
        else:
            assert reading.status.state is SourceState.OK, reading.status.message
            assert reading.gpus
            assert all(g.memory_total_bytes or g.unified_memory for g in reading.gpus)
    finally:
        source.close()


def test_a_gpu_the_driver_will_not_open_for_us_does_not_hide_the_others() -> None:
    # A shared server: nvmlDeviceGetCount_v2 counts every GPU, even those whose device file
    # this user may not open.
    refused = FakeGpu(name="NVIDIA B", errors={"nvmlDeviceGetHandleByIndex": pynvml.NVML_ERROR_NO_PERMISSION})
    fake = FakeNvml([FakeGpu(name="NVIDIA A", util_gpu=11), refused])
    source = source_for(fake)
    for now in (0.0, 1.0, 40.0):
        reading = source.sample(ctx(now=now))
        a, b = reading.gpus
        assert (a.state, a.utilization_percent) == (GpuState.OK, 11.0)
        assert (b.state, b.name, b.utilization_percent) == (GpuState.UNREADABLE, "NVIDIA GPU 1", None)
        assert reading.status.state is SourceState.OK
        assert reading.status.message.endswith("(GPU 1: Insufficient Permissions)")
    # Not taken for a lost GPU: NVML is not started again every 30 s for it.
    assert fake.calls["nvmlInit"] == 1
    assert gpu_summary(reading.gpus, [reading.status]) == "2 GPUs: NVIDIA A, NVIDIA GPU 1 (unreadable)"


@pytest.mark.parametrize("code", [pynvml.NVML_ERROR_TIMEOUT, pynvml.NVML_ERROR_INSUFFICIENT_POWER])
def test_a_gpu_that_failed_to_open_is_asked_again_and_nvml_says_why(code: int) -> None:
    # Any error but a refusal made it unreadable for the session, with a fixed line; NVML's
    # reason ("Insufficient External Power") showed nowhere the panel looks.
    slow = FakeGpu(name="NVIDIA B", util_gpu=22, errors={"nvmlDeviceGetHandleByIndex": code})
    fake = FakeNvml([FakeGpu(name="NVIDIA A", util_gpu=11), slow])
    source = source_for(fake)
    reading = source.sample(ctx(now=0.0))
    assert [g.state for g in reading.gpus] == [GpuState.OK, GpuState.UNREADABLE]
    assert reading.status.state is SourceState.ERROR
    reason = str(pynvml.NVMLError(code))
    assert reading.status.message == f"GPU 1 did not open: {reason} — retrying every 30 s"
    del slow.errors["nvmlDeviceGetHandleByIndex"]
    source.sample(ctx(now=10.0))
    reading = source.sample(ctx(now=31.0))
    assert [(g.name, g.utilization_percent) for g in reading.gpus] == [("NVIDIA A", 11.0), ("NVIDIA B", 22.0)]
    assert reading.status.state is SourceState.OK


def test_free_vram_is_the_driver_s_own_figure_which_leaves_out_what_it_reserves() -> None:
    # NVML's v2 "used" leaves the driver's reserve out, so total - used would count it as free,
    # and "auto" GPU layers would plan into memory no model can have.
    reserved = FakeGpu(memory_total=24 * GiB, memory_used=8 * GiB, memory_reserved=512 * MiB)
    (snap,) = source_for(FakeNvml([reserved])).sample(ctx()).gpus
    assert (snap.memory_used_bytes, snap.memory_total_bytes) == (8 * GiB, 24 * GiB)
    assert snap.memory_free_bytes == 16 * GiB - 512 * MiB
    memory = MemorySnapshot(64 * GiB, 32 * GiB, 32 * GiB, None, None)
    system = SystemSnapshot(0.0, 0.0, 1.0, 1, None, memory, (snap,))
    assert budget_from_snapshot(system).free_vram == 16 * GiB - 512 * MiB
    # Through the JSON lines of `monitor --jsonl` (a remote machine's panel), the same figure.
    (remote,) = decode(encode(system), received_at=0.0).snapshot.gpus
    assert remote.memory_free_bytes == 16 * GiB - 512 * MiB


def test_a_gpu_that_answers_only_unknown_errors_is_reported_lost_then_nvml_restarts() -> None:
    # A container that lost its device access (a systemd daemon-reload): every call on a GPU
    # already open says "Unknown Error" from then on, and a new nvmlInit says it too.
    fake = FakeNvml([FakeGpu(name="NVIDIA A", util_gpu=11), FakeGpu(name="NVIDIA B")])
    source = source_for(fake)
    assert source.sample(ctx(now=0.0)).status.state is SourceState.OK
    dynamic = ("UtilizationRates", "MemoryInfo", "MemoryInfo_v2", "TemperatureV", "Temperature", "PowerUsage")
    for name in (*dynamic, "ClockInfo"):
        fake.gpus[1].errors[f"nvmlDeviceGet{name}"] = pynvml.NVML_ERROR_UNKNOWN
    reading = source.sample(ctx(now=1.0))
    assert reading.gpus[1].state is GpuState.OK, "one bad second is not a lost GPU"
    source.sample(ctx(now=2.0))
    reading = source.sample(ctx(now=4.0))
    a, b = reading.gpus
    assert (a.state, a.utilization_percent) == (GpuState.OK, 11.0)
    assert b.state is GpuState.LOST
    assert reading.status.state is SourceState.ERROR
    assert "GPU 1 (NVIDIA B) is lost" in reading.status.message

    fake.init_error = pynvml.NVML_ERROR_UNKNOWN
    reading = source.sample(ctx(now=40.0))
    assert fake.calls["nvmlInit"] == 2
    assert reading.status.state is SourceState.ERROR
    assert "recreate it" in reading.status.message


def test_a_gpu_that_stops_answering_for_a_moment_is_not_lost() -> None:
    fake = FakeNvml([FakeGpu()])
    source = source_for(fake)
    source.sample(ctx(now=0.0))
    fake.gpus[0].errors["nvmlDeviceGetUtilizationRates"] = pynvml.NVML_ERROR_UNKNOWN
    fake.gpus[0].errors["nvmlDeviceGetPowerUsage"] = pynvml.NVML_ERROR_TIMEOUT
    for t in range(1, 8):  # some readings fail, others answer: a busy driver, not a lost GPU
        (snap,) = source.sample(ctx(now=float(t))).gpus
        assert snap.state is GpuState.OK and snap.temperature_c == 71.0
    fake.gpus[0].errors.clear()
    (snap,) = source.sample(ctx(now=9.0)).gpus
    assert snap.utilization_percent == 87.0

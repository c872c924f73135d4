"""The `monitor --jsonl` line schema: a faithful round trip, bounded reads, per-entry failures."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from lollma_tui.core.hardware.snapshot_lines import MAX_LINE, MAX_SUMMARY, SnapshotLineError, decode, encode
from lollma_tui.core.hardware.snapshots import (
    CpuSnapshot,
    GpuProcessMemory,
    GpuSnapshot,
    GpuState,
    GpuVendor,
    MemorySnapshot,
    ProcessSnapshot,
    SourceState,
    SourceStatus,
    SystemSnapshot,
)
from lollma_tui.core.hardware.summary import gpu_summary

GiB = 1 << 30


def full_snapshot() -> SystemSnapshot:
    gpu = GpuSnapshot(
        index=1, name="NVIDIA H100", vendor=GpuVendor.NVIDIA, state=GpuState.OK, utilization_percent=87.0,
        memory_bandwidth_percent=54.0, memory_used_bytes=8 * GiB, memory_total_bytes=80 * GiB,
        temperature_c=71.0, power_w=215.5, power_limit_w=700.0, clock_mhz=1980, fan_percent=None,
        throttle_reasons=("power cap",), unified_memory=False, mig_enabled=True, bus_id="00000000:01:00.0",
        processes=(GpuProcessMemory(4242, 6 * GiB), GpuProcessMemory(4243, None)),
    )  # fmt: skip
    return SystemSnapshot(
        monotonic=100.0, wall_time=1_764_000_000.5, interval_s=1.0, tick=7,
        cpu=CpuSnapshot(63.5, (60.0, 67.0), 3200.0, 4500.0, (1.5, 1.0, 0.5), 2, 2, "AMD EPYC"),
        memory=MemorySnapshot(24 * GiB, 19 * GiB, 5 * GiB, 0, 2 * GiB),
        gpus=(gpu, GpuSnapshot(0, "AMD Radeon", GpuVendor.AMD, state=GpuState.ASLEEP)),
        processes=(
            ProcessSnapshot(4242, "llama-server", GiB, 350.0, 6 * GiB, (4243,), 2 * GiB, 360.0, 6 * GiB),
        ),
        sources=(SourceStatus("host", SourceState.OK, "CPU and memory via psutil", 0.001),),
        gpu_summary="2 GPUs", hint="install macmon", sample_cost_s=0.002,
    )  # fmt: skip


def test_round_trip_keeps_every_field_but_the_clock() -> None:
    snapshot = full_snapshot()
    line = encode(snapshot)
    assert "\n" not in line
    decoded = decode(line, received_at=5.0, host="gpu-box")
    assert decoded.problems == ()
    assert decoded.snapshot == dataclasses.replace(snapshot, monotonic=5.0, host="gpu-box")


def test_no_throttle_reason_is_not_an_unknown_one_and_empty_lists_are_written() -> None:
    # "throttle: none" here became no throttle line at all on the far side: () read back as None.
    snapshot = full_snapshot()
    calm = dataclasses.replace(snapshot.gpus[0], throttle_reasons=())
    snapshot = dataclasses.replace(snapshot, gpus=(calm,), processes=())
    line = encode(snapshot)
    assert json.loads(line)["processes"] == []  # a script reading the line finds the key
    decoded = decode(line, received_at=5.0, host="gpu-box")
    assert decoded.snapshot.gpus[0].throttle_reasons == ()
    assert decoded.snapshot == dataclasses.replace(snapshot, monotonic=5.0, host="gpu-box")


def test_a_bad_gpu_costs_that_gpu_only() -> None:
    data = json.loads(encode(full_snapshot()))
    data["gpus"][0]["temperature_c"] = 1e9
    data["gpus"].append("not a gpu")
    decoded = decode(json.dumps(data), received_at=0.0)
    assert [g.name for g in decoded.snapshot.gpus] == ["AMD Radeon"]
    assert decoded.problems == (
        "gpus[0].temperature_c: 1e+09 is outside -100..300",
        "gpus[2]: expected an object, got a string",
    )
    assert decoded.snapshot.cpu is not None  # the rest of the line is intact


def test_unknown_fields_are_ignored_for_newer_monitors() -> None:
    data = json.loads(encode(full_snapshot()))
    data["npu"] = {"utilization": 3}
    data["cpu"]["boost"] = True
    assert decode(json.dumps(data), received_at=0.0).snapshot.cpu == full_snapshot().cpu


def test_non_finite_readings_are_sent_as_unknown() -> None:
    snapshot = dataclasses.replace(
        full_snapshot(), cpu=dataclasses.replace(full_snapshot().cpu, percent=math.nan)
    )  # type: ignore[arg-type]
    decoded = decode(encode(snapshot), received_at=0.0)
    assert decoded.snapshot.cpu is not None and decoded.snapshot.cpu.percent is None


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("hello", "not JSON"),
        ('{"schema": "macmon"}', "not a lollma-hw line"),
        ('{"schema": "lollma-hw", "v": 2}', "version 2; this lollma-tui reads version 1"),
        ("x" * (MAX_LINE + 1), "more than the"),
    ],
)
def test_lines_that_are_not_snapshots_are_refused_with_a_reason(line: str, words: str) -> None:
    with pytest.raises(SnapshotLineError, match=words):
        decode(line, received_at=0.0)


def test_names_and_messages_from_the_far_side_lose_their_control_characters() -> None:
    # The far side is another machine: its words reach this terminal through the panel.
    hostile = "Evil [/] GPU [@click=app.quit]\x1b]0;t\x07\x1b[2J\nsecond line"
    shown = "Evil [/] GPU [@click=app.quit] second line"
    snapshot = full_snapshot()
    gpu = dataclasses.replace(
        snapshot.gpus[0], name=hostile, bus_id=hostile, throttle_reasons=("cap\x1b[31m",)
    )
    snapshot = dataclasses.replace(
        snapshot,
        cpu=dataclasses.replace(snapshot.cpu, model=hostile) if snapshot.cpu else None,
        gpus=(gpu,),
        processes=(dataclasses.replace(snapshot.processes[0], name=hostile),),
        sources=(dataclasses.replace(snapshot.sources[0], message=hostile),),
        gpu_summary=hostile,
        hint=hostile,
    )
    decoded = decode(encode(snapshot), received_at=5.0).snapshot
    assert decoded.gpus[0].name == shown and decoded.gpus[0].bus_id == shown
    assert decoded.gpus[0].throttle_reasons == ("cap",)
    assert decoded.cpu is not None and decoded.cpu.model == shown
    assert decoded.processes[0].name == shown and decoded.sources[0].message == shown
    assert decoded.gpu_summary == shown and decoded.hint == shown


def test_a_long_gpu_summary_and_hint_are_shortened_by_the_monitor_not_refused_by_the_reader() -> None:
    # Twelve GPUs of two kinds wrote a 307-character summary; the reader refused every line.
    snapshot = dataclasses.replace(full_snapshot(), gpu_summary="12 GPUs: " + "G" * 400, hint="h" * 400)
    line = encode(snapshot)
    sent = json.loads(line)
    assert len(sent["gpu_summary"]) == len(sent["hint"]) == MAX_SUMMARY  # an older reader takes it
    decoded = decode(line, received_at=0.0).snapshot
    assert len(decoded.gpu_summary) == MAX_SUMMARY and decoded.gpu_summary.endswith("…")
    assert decoded.gpu_summary.startswith("12 GPUs: GGG")
    assert decoded.hint is not None and len(decoded.hint) == MAX_SUMMARY


def test_the_reader_cuts_an_over_long_summary_from_an_older_monitor() -> None:
    data = json.loads(encode(full_snapshot()))
    data["gpu_summary"] = "x" * (MAX_SUMMARY + 7)
    decoded = decode(json.dumps(data), received_at=0.0)
    assert decoded.snapshot.gpu_summary == "x" * (MAX_SUMMARY - 1) + "…"
    assert decoded.problems == ()


def test_a_summary_of_the_wrong_type_costs_the_summary_only() -> None:
    data = json.loads(encode(full_snapshot()))
    data["hint"] = ["not", "text"]
    decoded = decode(json.dumps(data), received_at=0.0)
    assert decoded.snapshot.hint is None and decoded.snapshot.gpus
    assert decoded.problems == ("line.hint: expected a string, got a list",)


def test_gpus_of_a_few_kinds_are_counted_per_kind() -> None:
    kinds = ["NVIDIA GeForce RTX 3090"] * 6 + ["NVIDIA GeForce RTX 3060"] * 6
    gpus = [GpuSnapshot(i, name, GpuVendor.NVIDIA) for i, name in enumerate(kinds)]
    assert gpu_summary(gpus, []) == "12 GPUs: 6 × NVIDIA GeForce RTX 3090, 6 × NVIDIA GeForce RTX 3060"

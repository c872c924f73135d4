"""Hardware snapshots as JSON lines: what `lollma-tui monitor --jsonl` prints and a remote reads.

One line per snapshot, schema ``lollma-hw`` version 1, with the fields the panel uses. The
encoder leaves out empty values; the decoder reads the fields it knows and ignores others, so a
newer monitor can add fields without breaking an older reader (removing or changing one needs a
new version). Decoding is bounded and typed throughout: a bad GPU, process or status entry is
dropped with its reason, a bad CPU or memory block reads as unknown, and only a line that is
not this schema at all is refused.

Clocks: `monotonic` is meaningless on another machine, so the reader sets it to its own receive
time; `wall_time` keeps the sender's clock, from which the delivery delay can be measured.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from lollma_tui.core.checked import (
    WireError,
    integer,
    items,
    mapping,
    number,
    optional_bool,
    optional_integer,
    optional_number,
    optional_text,
    text,
)
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
from lollma_tui.core.safe_text import clean_text

T = TypeVar("T")

SCHEMA = "lollma-hw"
VERSION = 1
MAX_LINE = 256 * 1024
"""Longest line read; a 1024-core machine's line is a few KB."""
MAX_CORES = 4096
MAX_GPUS = 64
MAX_PROCESSES = 256
MAX_SOURCES = 16
MAX_BYTES = 1 << 62
MAX_RATE = 1e6
"""Percentages per core can pass 100 (a process on 8 cores reads 800): a generous bound."""
MAX_SUMMARY = 300
"""Longest GPU summary or hint kept: the encoder shortens to it, the decoder cuts to it."""
MAX_SUMMARY_READ = 4096
"""Longest GPU summary or hint read at all (an older monitor did not shorten its own)."""


class SnapshotLineError(WireError):
    """A line that is not a hardware snapshot of a version this reader knows."""


class OtherVersionError(SnapshotLineError):
    """A hardware snapshot line of a version this reader does not know."""


# -- encoding -----------------------------------------------------------------------------------


def encode(snapshot: SystemSnapshot) -> str:
    """One JSON line (no newline) for `snapshot`."""
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "v": VERSION,
        "wall_time": snapshot.wall_time,
        "interval_s": snapshot.interval_s,
        "tick": snapshot.tick,
        "cost_s": snapshot.sample_cost_s,
        "cpu": _plain(snapshot.cpu),
        "memory": _plain(snapshot.memory),
        "gpus": [_plain(g) for g in snapshot.gpus],
        "processes": [_plain(p) for p in snapshot.processes],
        "sources": [_plain(s) for s in snapshot.sources],
        # A rig of many GPUs can describe itself at length: a line the reader refuses is no line.
        "gpu_summary": shorten(snapshot.gpu_summary, MAX_SUMMARY),
        "hint": shorten(snapshot.hint, MAX_SUMMARY) if snapshot.hint is not None else None,
    }
    return json.dumps(_drop_empty(body), separators=(",", ":"), allow_nan=False)


def shorten(value: str, limit: int) -> str:
    """`value` cut to `limit` characters, the cut marked with an ellipsis."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _plain(value: object) -> Any:
    """Dataclasses to dicts, enums to values, non-finite floats to None."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, SourceState | GpuState | GpuVendor) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    slots = getattr(type(value), "__dataclass_fields__", None)
    if slots is None:
        raise TypeError(f"cannot encode {type(value).__name__}")
    return {name: _plain(getattr(value, name)) for name in slots}


def _drop_empty(data: Any) -> Any:
    # An empty list stays: "no throttle reason" is not "none known", and a script finds the key.
    if isinstance(data, dict):
        return {k: _drop_empty(v) for k, v in data.items() if v is not None and v != ""}
    if isinstance(data, list):
        return [_drop_empty(v) for v in data]
    return data


# -- decoding -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodedLine:
    snapshot: SystemSnapshot
    problems: tuple[str, ...]
    """Entries left out of the snapshot, each with its reason."""


def decode(line: str | bytes, *, received_at: float, host: str | None = None) -> DecodedLine:
    """The snapshot in `line`; its `monotonic` is `received_at` (the reader's clock).

    Raises `SnapshotLineError` for a line that is not this schema and version, and `WireError`
    for one whose own fields (wall_time, interval_s, tick) are unusable.
    """
    if len(line) > MAX_LINE:
        raise SnapshotLineError(f"line of {len(line)} bytes, more than the {MAX_LINE} accepted")
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as error:
        raise SnapshotLineError(f"not JSON: {error}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise SnapshotLineError(f"not a {SCHEMA} line (is the remote command `lollma-tui monitor --jsonl`?)")
    version = data.get("v")
    if version != VERSION:
        raise OtherVersionError(
            f"{SCHEMA} version {version!r}; this lollma-tui reads version {VERSION} — "
            "run the same lollma-tui version on both machines"
        )
    problems: list[str] = []
    snapshot = SystemSnapshot(
        monotonic=received_at,
        wall_time=number(data.get("wall_time"), "wall_time", low=0.0, high=1e11),
        interval_s=number(data.get("interval_s"), "interval_s", low=0.01, high=3600.0),
        tick=integer(data.get("tick", 0), "tick"),
        cpu=_one(problems, data.get("cpu"), _cpu),
        memory=_one(problems, data.get("memory"), _memory),
        gpus=_many(problems, data.get("gpus"), "gpus", MAX_GPUS, _gpu),
        processes=_many(problems, data.get("processes"), "processes", MAX_PROCESSES, _process),
        sources=_many(problems, data.get("sources"), "sources", MAX_SOURCES, _source),
        gpu_summary=_summary(problems, data, "gpu_summary") or "",
        hint=_summary(problems, data, "hint"),
        sample_cost_s=optional_number(data, "cost_s", "line", low=0.0, high=3600.0) or 0.0,
        host=host,
    )
    return DecodedLine(snapshot, tuple(problems))


def _one(problems: list[str], value: object, reader: Callable[[Mapping[str, Any]], T]) -> T | None:
    if value is None:
        return None
    try:
        return reader(mapping(value, "block"))
    except WireError as error:
        problems.append(str(error))
        return None


def _many(
    problems: list[str], value: object, where: str, limit: int, reader: Callable[[Mapping[str, Any], str], T]
) -> tuple[T, ...]:
    if value is None:
        return ()
    try:
        entries = items(value, where, limit)
    except WireError as error:
        problems.append(str(error))
        return ()
    found: list[T] = []
    for i, entry in enumerate(entries):
        place = f"{where}[{i}]"
        try:
            found.append(reader(mapping(entry, place), place))
        except WireError as error:
            problems.append(str(error))
    return tuple(found)


def _words(data: Mapping[str, Any], key: str, where: str, max_length: int) -> str | None:
    # Names and messages from the far side reach the panel and the hosts view: no control
    # characters (an escape sequence there would go to this terminal), one line each.
    value = optional_text(data, key, where, max_length=max_length)
    return None if value is None else clean_text(value, keep_lines=False)


def _summary(problems: list[str], data: Mapping[str, Any], key: str) -> str | None:
    # Words for the panel, not figures: a long or odd one costs itself, never the line.
    try:
        value = _words(data, key, "line", MAX_SUMMARY_READ)
    except WireError as error:
        problems.append(str(error))
        return None
    return None if value is None else shorten(value, MAX_SUMMARY)


def _percent(data: Mapping[str, Any], key: str, where: str) -> float | None:
    return optional_number(data, key, where, low=0.0, high=MAX_RATE)


def _bytes(data: Mapping[str, Any], key: str, where: str) -> int | None:
    return optional_integer(data, key, where, high=MAX_BYTES)


def _cpu(data: Mapping[str, Any]) -> CpuSnapshot:
    where = "cpu"
    cores = items(data.get("per_core_percent", []), f"{where}.per_core_percent", MAX_CORES)
    load = data.get("load_avg")
    load_avg = None
    if load is not None:
        values = items(load, f"{where}.load_avg", 3)
        if len(values) != 3:
            raise WireError(f"{where}.load_avg: expected 3 numbers")
        a, b, c = (number(v, f"{where}.load_avg", low=0.0, high=MAX_RATE) for v in values)
        load_avg = (a, b, c)
    return CpuSnapshot(
        percent=_percent(data, "percent", where),
        per_core_percent=tuple(number(v, f"{where}.per_core_percent", low=0.0, high=100.0) for v in cores),
        freq_mhz=optional_number(data, "freq_mhz", where, low=0.0, high=MAX_RATE),
        freq_max_mhz=optional_number(data, "freq_max_mhz", where, low=0.0, high=MAX_RATE),
        load_avg=load_avg,
        logical_cores=optional_integer(data, "logical_cores", where, high=MAX_CORES),
        physical_cores=optional_integer(data, "physical_cores", where, high=MAX_CORES),
        model=_words(data, "model", where, 200),
    )


def _memory(data: Mapping[str, Any]) -> MemorySnapshot:
    where = "memory"
    return MemorySnapshot(
        total_bytes=integer(data.get("total_bytes"), f"{where}.total_bytes", high=MAX_BYTES),
        available_bytes=integer(data.get("available_bytes"), f"{where}.available_bytes", high=MAX_BYTES),
        used_bytes=integer(data.get("used_bytes"), f"{where}.used_bytes", high=MAX_BYTES),
        swap_used_bytes=_bytes(data, "swap_used_bytes", where),
        swap_total_bytes=_bytes(data, "swap_total_bytes", where),
    )


def _enum(data: Mapping[str, Any], key: str, where: str, kind: type[T], default: T | None = None) -> T:
    value = data.get(key)
    if value is None and default is not None:
        return default
    try:
        return kind(text(value, f"{where}.{key}", max_length=40))  # type: ignore[call-arg]
    except ValueError:
        raise WireError(f"{where}.{key}: unknown value {value!r}") from None


def _gpu(data: Mapping[str, Any], where: str) -> GpuSnapshot:
    reasons = data.get("throttle_reasons")
    throttle = None
    if reasons is not None:
        throttle = tuple(
            clean_text(text(r, f"{where}.throttle_reasons", max_length=40), keep_lines=False)
            for r in items(reasons, where, 16)
        )
    procs = items(data.get("processes", []), f"{where}.processes", MAX_PROCESSES)
    return GpuSnapshot(
        index=integer(data.get("index"), f"{where}.index", high=4096),
        name=clean_text(text(data.get("name"), f"{where}.name", max_length=200), keep_lines=False),
        vendor=_enum(data, "vendor", where, GpuVendor),
        state=_enum(data, "state", where, GpuState, GpuState.OK),
        utilization_percent=optional_number(data, "utilization_percent", where, low=0.0, high=100.0),
        memory_bandwidth_percent=optional_number(
            data, "memory_bandwidth_percent", where, low=0.0, high=100.0
        ),
        memory_used_bytes=_bytes(data, "memory_used_bytes", where),
        memory_total_bytes=_bytes(data, "memory_total_bytes", where),
        memory_free_bytes=_bytes(data, "memory_free_bytes", where),
        temperature_c=optional_number(data, "temperature_c", where, low=-100.0, high=300.0),
        power_w=optional_number(data, "power_w", where, low=0.0, high=1e5),
        power_limit_w=optional_number(data, "power_limit_w", where, low=0.0, high=1e5),
        clock_mhz=optional_integer(data, "clock_mhz", where, high=1_000_000),
        fan_percent=optional_number(data, "fan_percent", where, low=0.0, high=1000.0),
        throttle_reasons=throttle,
        unified_memory=optional_bool(data, "unified_memory", where) or False,
        mig_enabled=optional_bool(data, "mig_enabled", where) or False,
        bus_id=_words(data, "bus_id", where, 64),
        processes=tuple(_gpu_process(mapping(p, f"{where}.processes"), where) for p in procs),
    )


def _gpu_process(data: Mapping[str, Any], where: str) -> GpuProcessMemory:
    return GpuProcessMemory(
        pid=integer(data.get("pid"), f"{where}.pid", high=1 << 32),
        used_bytes=_bytes(data, "used_bytes", where),
    )


def _process(data: Mapping[str, Any], where: str) -> ProcessSnapshot:
    children = items(data.get("child_pids", []), f"{where}.child_pids", MAX_CORES)
    return ProcessSnapshot(
        pid=integer(data.get("pid"), f"{where}.pid", high=1 << 32),
        name=_words(data, "name", where, 200),
        rss_bytes=_bytes(data, "rss_bytes", where),
        cpu_percent=_percent(data, "cpu_percent", where),
        vram_bytes=_bytes(data, "vram_bytes", where),
        child_pids=tuple(integer(c, f"{where}.child_pids", high=1 << 32) for c in children),
        total_rss_bytes=_bytes(data, "total_rss_bytes", where),
        total_cpu_percent=_percent(data, "total_cpu_percent", where),
        total_vram_bytes=_bytes(data, "total_vram_bytes", where),
    )


def _source(data: Mapping[str, Any], where: str) -> SourceStatus:
    return SourceStatus(
        name=clean_text(text(data.get("name"), f"{where}.name", max_length=40), keep_lines=False),
        state=_enum(data, "state", where, SourceState),
        message=_words(data, "message", where, 300) or "",
        cost_s=optional_number(data, "cost_s", where, low=0.0, high=3600.0),
    )

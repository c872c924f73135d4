"""RSS, CPU % and GPU memory of the processes we care about, each with its descendants.

"Our" processes are few (the llama.cpp worker, a local Ollama server), so only they are read,
never a full process scan. Finding descendants does walk the process table (a few ms), so it
runs only when the set of roots changes and every `rescan_every_s` after that: a new Ollama
runner shows up within that delay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import psutil

from lollma_tui.core.hardware.snapshots import GpuSnapshot, ProcessSnapshot

_T = TypeVar("_T")
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, FileNotFoundError, ProcessLookupError)


@dataclass(frozen=True, slots=True)
class _Reading:
    pid: int
    name: str | None
    rss: int | None
    cpu: float | None


def vram_by_pid(gpus: Iterable[GpuSnapshot]) -> dict[int, int]:
    """GPU memory per pid, added up over all GPUs (a process may use several)."""
    totals: dict[int, int] = {}
    for gpu in gpus:
        for proc in gpu.processes:
            if proc.used_bytes is not None:
                totals[proc.pid] = totals.get(proc.pid, 0) + proc.used_bytes
    return totals


def _sum_ints(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _sum_floats(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


class ProcessTracker:
    """Two steps per tick: `refresh(roots)` finds the pids (so GPU sources can be asked about
    them), then `read(vram)` measures them and folds in the GPU memory those sources found."""

    def __init__(self, *, rescan_every_s: float = 5.0) -> None:
        self._rescan_every_s = rescan_every_s
        self._roots: tuple[int, ...] = ()
        self._children: dict[int, tuple[int, ...]] = {}
        self._scanned_at: float | None = None
        self._procs: dict[int, psutil.Process] = {}
        self._cpu_primed: set[int] = set()

    def refresh(self, roots: Iterable[int], now: float) -> frozenset[int]:
        """Set the roots for this tick; returns them plus every known descendant."""
        wanted = tuple(dict.fromkeys(int(pid) for pid in roots))
        due = self._scanned_at is None or now - self._scanned_at >= self._rescan_every_s
        if wanted != self._roots or due:
            self._roots = wanted
            self._children = {root: self._descendants(root) for root in wanted}
            self._scanned_at = now
            self._forget_others()
        return frozenset(self._roots).union(*self._children.values())

    def read(self, vram: Mapping[int, int] | None = None) -> tuple[ProcessSnapshot, ...]:
        vram = vram or {}
        snapshots: list[ProcessSnapshot] = []
        for root in self._roots:
            own = self._read(root)
            if own is None:
                continue  # the process ended: drop it without fuss
            kids = [r for r in (self._read(pid) for pid in self._children.get(root, ())) if r is not None]
            family = [own, *kids]
            snapshots.append(
                ProcessSnapshot(
                    pid=root,
                    name=own.name,
                    rss_bytes=own.rss,
                    cpu_percent=own.cpu,
                    vram_bytes=vram.get(root),
                    child_pids=tuple(k.pid for k in kids),
                    total_rss_bytes=_sum_ints(r.rss for r in family),
                    total_cpu_percent=_sum_floats(r.cpu for r in family),
                    total_vram_bytes=_sum_ints(vram.get(r.pid) for r in family),
                )
            )
        return tuple(snapshots)

    def _process(self, pid: int) -> psutil.Process | None:
        proc = self._procs.get(pid)
        if proc is not None:
            return proc
        try:
            proc = psutil.Process(pid)
        except (*_GONE, psutil.AccessDenied, ValueError):
            return None
        self._procs[pid] = proc
        return proc

    def _descendants(self, root: int) -> tuple[int, ...]:
        proc = self._process(root)
        if proc is None:
            return ()
        try:
            if not proc.is_running():  # the pid was reused by another program
                self._procs.pop(root, None)
                self._cpu_primed.discard(root)
                proc = self._process(root)
                if proc is None:
                    return ()
            return tuple(child.pid for child in proc.children(recursive=True))
        except (*_GONE, psutil.AccessDenied):
            return ()

    def _forget_others(self) -> None:
        keep = set(self._roots).union(*self._children.values())
        for pid in list(self._procs):
            if pid not in keep:
                del self._procs[pid]
                self._cpu_primed.discard(pid)

    def _read(self, pid: int) -> _Reading | None:
        proc = self._process(pid)
        if proc is None:
            return None
        try:
            with proc.oneshot():
                if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                    raise psutil.NoSuchProcess(pid)  # ended; its parent has not reaped it
                name = _attempt(proc.name)
                rss = _attempt(lambda: proc.memory_info().rss)
                cpu = _attempt(lambda: proc.cpu_percent(interval=None))
        except _GONE:
            self._procs.pop(pid, None)
            self._cpu_primed.discard(pid)
            return None
        if pid not in self._cpu_primed:
            # The first cpu_percent() of a Process object only starts the measurement.
            self._cpu_primed.add(pid)
            cpu = None
        return _Reading(pid=pid, name=name, rss=rss, cpu=cpu)


def _attempt(read: Callable[[], _T]) -> _T | None:
    try:
        return read()
    except psutil.AccessDenied:
        return None

"""The one-line description of the GPU block ("CPU only", "GPU: NVIDIA H100 …")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from lollma_tui.core.hardware.snapshots import GpuSnapshot, GpuState, SourceState, SourceStatus

CPU_ONLY = "CPU only"
HOST_SOURCE = "host"


def _describe(gpu: GpuSnapshot) -> str:
    if gpu.state is GpuState.LOST:
        return f"{gpu.name} (lost)"
    if gpu.state is GpuState.ASLEEP:
        return f"{gpu.name} (asleep)"
    if gpu.state is GpuState.UNREADABLE:
        return f"{gpu.name} (unreadable)"
    extras = [
        label for flag, label in ((gpu.unified_memory, "unified memory"), (gpu.mig_enabled, "MIG")) if flag
    ]
    return f"{gpu.name} ({', '.join(extras)})" if extras else gpu.name


def gpu_summary(gpus: Sequence[GpuSnapshot], sources: Sequence[SourceStatus], hint: str | None = None) -> str:
    """What the GPU block should say in one line.

    With GPUs: their names, identical ones folded ("2 × name", "6 × A, 6 × B"). Without: the first GPU
    source error if there is one, then the install hint, else "CPU only" — a machine without
    a GPU is normal, not an error.
    """
    if gpus:
        labels = [_describe(g) for g in gpus]
        if len(labels) == 1:
            return f"GPU: {labels[0]}"
        kinds = Counter(labels)  # first-seen order: the order the machine lists them
        return f"{len(labels)} GPUs: " + ", ".join(
            label if count == 1 else f"{count} × {label}" for label, count in kinds.items()
        )
    for source in sources:
        if source.name != HOST_SOURCE and source.state is SourceState.ERROR:
            return f"GPU unavailable: {source.message}"
    if hint:
        return f"{CPU_ONLY} — {hint}"
    return CPU_ONLY

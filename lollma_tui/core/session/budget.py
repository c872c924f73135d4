"""Free memory to fit a model into, taken from a hardware snapshot or given by hand."""

from __future__ import annotations

from dataclasses import dataclass

from lollma_tui.core.hardware.snapshots import GpuState, SystemSnapshot


@dataclass(frozen=True, slots=True)
class MemoryBudget:
    """Free bytes right now. ``free_vram=None`` means no usable GPU; ``free_ram=None``, unknown."""

    free_ram: int | None
    free_vram: int | None = None

    def plus(self, ram: int, vram: int) -> MemoryBudget:
        """The budget once `ram` / `vram` bytes held by something we are about to stop are freed."""
        return MemoryBudget(
            None if self.free_ram is None else self.free_ram + max(0, ram),
            None if self.free_vram is None else self.free_vram + max(0, vram),
        )


def budget_from_snapshot(snapshot: SystemSnapshot) -> MemoryBudget:
    """Available RAM and the free VRAM of the GPUs that report it.

    Several discrete GPUs are summed, since llama.cpp splits layers across them by default. A
    unified-memory GPU (Apple, APUs) has no memory of its own: its "VRAM" is the same pool as the
    RAM, so the available RAM stands for both.
    """
    memory = snapshot.memory
    free_ram = memory.available_bytes if memory is not None else None
    discrete = 0
    any_discrete = False
    unified = False
    for gpu in snapshot.gpus:
        if gpu.state is not GpuState.OK:
            continue
        if gpu.unified_memory:
            unified = True
            continue
        if gpu.memory_total_bytes is None or gpu.memory_used_bytes is None:
            continue
        any_discrete = True
        # The driver's own "free" also leaves out what it reserves (hundreds of MiB), which
        # NVML's "used" does not count.
        free = gpu.memory_free_bytes
        discrete += max(0, free if free is not None else gpu.memory_total_bytes - gpu.memory_used_bytes)
    if any_discrete:
        return MemoryBudget(free_ram, discrete)
    if unified:
        return MemoryBudget(free_ram, free_ram)
    return MemoryBudget(free_ram, None)

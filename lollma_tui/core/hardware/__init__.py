"""Hardware sampling: psutil, NVML, DRM sysfs and `macmon pipe`, as immutable snapshots.

No Textual and no rich here. Typical use::

    sampler = HardwareSampler(on_snapshot=lambda s: app.call_from_thread(panel.show, s))
    sampler.set_process_ids_provider(lambda: [worker_pid])
    sampler.start()
    ...
    sampler.stop()

"Not available" is ``None`` in every snapshot field (shown as "—").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lollma_tui.core.lazy_exports import lazy_getattr

if TYPE_CHECKING:
    from lollma_tui.core.hardware.defaults import default_sources
    from lollma_tui.core.hardware.history import (
        HISTORY_WINDOW_S,
        THRESHOLDS,
        HardwareHistory,
        Level,
        Metric,
        Thresholds,
        classify,
    )
    from lollma_tui.core.hardware.host import HostSource
    from lollma_tui.core.hardware.macmon import MacmonSource, parse_macmon_line
    from lollma_tui.core.hardware.nvidia import NvidiaSource, import_pynvml
    from lollma_tui.core.hardware.processes import ProcessTracker
    from lollma_tui.core.hardware.sampler import (
        DEFAULT_INTERVAL_S,
        MAX_INTERVAL_S,
        MIN_INTERVAL_S,
        HardwareSampler,
        IntervalError,
        validate_interval,
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
        is_stale,
    )
    from lollma_tui.core.hardware.source import HardwareSource, SampleContext, SourceReading
    from lollma_tui.core.hardware.sysfs_gpu import SysfsGpuSource

_EXPORTS = {
    "default_sources": "defaults",
    "HISTORY_WINDOW_S": "history",
    "THRESHOLDS": "history",
    "HardwareHistory": "history",
    "Level": "history",
    "Metric": "history",
    "Thresholds": "history",
    "classify": "history",
    "HostSource": "host",
    "MacmonSource": "macmon",
    "parse_macmon_line": "macmon",
    "NvidiaSource": "nvidia",
    "import_pynvml": "nvidia",
    "ProcessTracker": "processes",
    "DEFAULT_INTERVAL_S": "sampler",
    "MAX_INTERVAL_S": "sampler",
    "MIN_INTERVAL_S": "sampler",
    "HardwareSampler": "sampler",
    "IntervalError": "sampler",
    "validate_interval": "sampler",
    "CpuSnapshot": "snapshots",
    "GpuProcessMemory": "snapshots",
    "GpuSnapshot": "snapshots",
    "GpuState": "snapshots",
    "GpuVendor": "snapshots",
    "MemorySnapshot": "snapshots",
    "ProcessSnapshot": "snapshots",
    "SourceState": "snapshots",
    "SourceStatus": "snapshots",
    "SystemSnapshot": "snapshots",
    "is_stale": "snapshots",
    "HardwareSource": "source",
    "SampleContext": "source",
    "SourceReading": "source",
    "SysfsGpuSource": "sysfs_gpu",
}

__getattr__ = lazy_getattr(__name__, _EXPORTS)

__all__ = [
    "DEFAULT_INTERVAL_S",
    "HISTORY_WINDOW_S",
    "MAX_INTERVAL_S",
    "MIN_INTERVAL_S",
    "THRESHOLDS",
    "CpuSnapshot",
    "GpuProcessMemory",
    "GpuSnapshot",
    "GpuState",
    "GpuVendor",
    "HardwareHistory",
    "HardwareSampler",
    "HardwareSource",
    "HostSource",
    "IntervalError",
    "Level",
    "MacmonSource",
    "MemorySnapshot",
    "Metric",
    "NvidiaSource",
    "ProcessSnapshot",
    "ProcessTracker",
    "SampleContext",
    "SourceReading",
    "SourceState",
    "SourceStatus",
    "SysfsGpuSource",
    "SystemSnapshot",
    "Thresholds",
    "classify",
    "default_sources",
    "import_pynvml",
    "is_stale",
    "parse_macmon_line",
    "validate_interval",
]

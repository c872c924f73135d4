"""Type information for the lazily loaded names below (read by `lazy_loader` at run time)."""

from .defaults import (
    default_sources as default_sources,
)
from .history import (
    HISTORY_WINDOW_S as HISTORY_WINDOW_S,
    THRESHOLDS as THRESHOLDS,
    HardwareHistory as HardwareHistory,
    Level as Level,
    Metric as Metric,
    Thresholds as Thresholds,
    classify as classify,
)
from .host import (
    HostSource as HostSource,
)
from .macmon import (
    MacmonSource as MacmonSource,
    parse_macmon_line as parse_macmon_line,
)
from .nvidia import (
    NvidiaSource as NvidiaSource,
    import_pynvml as import_pynvml,
)
from .processes import (
    ProcessTracker as ProcessTracker,
)
from .sampler import (
    DEFAULT_INTERVAL_S as DEFAULT_INTERVAL_S,
    MAX_INTERVAL_S as MAX_INTERVAL_S,
    MIN_INTERVAL_S as MIN_INTERVAL_S,
    HardwareSampler as HardwareSampler,
    IntervalError as IntervalError,
    validate_interval as validate_interval,
)
from .snapshots import (
    CpuSnapshot as CpuSnapshot,
    GpuProcessMemory as GpuProcessMemory,
    GpuSnapshot as GpuSnapshot,
    GpuState as GpuState,
    GpuVendor as GpuVendor,
    MemorySnapshot as MemorySnapshot,
    ProcessSnapshot as ProcessSnapshot,
    SourceState as SourceState,
    SourceStatus as SourceStatus,
    SystemSnapshot as SystemSnapshot,
    is_stale as is_stale,
)
from .source import (
    HardwareSource as HardwareSource,
    SampleContext as SampleContext,
    SourceReading as SourceReading,
)
from .sysfs_gpu import (
    SysfsGpuSource as SysfsGpuSource,
)

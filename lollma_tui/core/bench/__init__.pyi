"""Type information for the lazily loaded names below (read by `lazy_loader` at run time)."""

from .compare import (
    Comparison as Comparison,
    best_configuration as best_configuration,
    compare_with_saved as compare_with_saved,
    load_settings_for as load_settings_for,
)
from .context import (
    BenchProgress as BenchProgress,
    ProgressCallback as ProgressCallback,
)
from .formatters import (
    FORMATS as FORMATS,
    OutputFormat as OutputFormat,
    RowWriter as RowWriter,
    format_comparison as format_comparison,
    format_records as format_records,
    layout_for as layout_for,
    layout_for_sweep as layout_for_sweep,
)
from .hardware_info import (
    HardwareInfo as HardwareInfo,
)
from .ollama_run import (
    OLLAMA_CAVEATS as OLLAMA_CAVEATS,
)
from .records import (
    CHAT_TEST as CHAT_TEST,
    LLAMA_BENCH_FIELDS as LLAMA_BENCH_FIELDS,
    BenchRecord as BenchRecord,
    bench_test_name as bench_test_name,
)
from .session import (
    BenchRun as BenchRun,
    BenchSession as BenchSession,
    ConfigFailure as ConfigFailure,
    bench_log_path as bench_log_path,
    plan_sweep as plan_sweep,
)
from .store import (
    ResultStore as ResultStore,
    results_path as results_path,
)
from .sweep import (
    DEFAULT_QUESTION as DEFAULT_QUESTION,
    Configuration as Configuration,
    ModelChoice as ModelChoice,
    SweepInputError as SweepInputError,
    SweepPlan as SweepPlan,
    SweepSpec as SweepSpec,
)

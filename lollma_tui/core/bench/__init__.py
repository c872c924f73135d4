"""llama-bench-compatible benchmarks: sweeps over quantizations, GPU layers and threads, each
configuration measured in a fresh worker process, plus an end-to-end chat test through the
app's own backend. No Textual and no rich here.

    plan = await plan_sweep(SweepSpec(models=("tiny.gguf",), quants="all", threads=(1, 2)))
    session = BenchSession(plan, on_progress=callback)
    run = await session.run()          # session.cancel() stops it; run.records are kept
    ResultStore().save(run.records)
    best = best_configuration(run.records)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lollma_tui.core.bench.compare import (
        Comparison,
        best_configuration,
        compare_with_saved,
        load_settings_for,
    )
    from lollma_tui.core.bench.context import BenchProgress, ProgressCallback
    from lollma_tui.core.bench.formatters import (
        FORMATS,
        OutputFormat,
        RowWriter,
        format_comparison,
        format_records,
        layout_for,
        layout_for_sweep,
    )
    from lollma_tui.core.bench.hardware_info import HardwareInfo
    from lollma_tui.core.bench.ollama_run import OLLAMA_CAVEATS
    from lollma_tui.core.bench.records import CHAT_TEST, LLAMA_BENCH_FIELDS, BenchRecord, bench_test_name
    from lollma_tui.core.bench.session import (
        BenchRun,
        BenchSession,
        ConfigFailure,
        bench_log_path,
        plan_sweep,
    )
    from lollma_tui.core.bench.store import ResultStore, results_path
    from lollma_tui.core.bench.sweep import (
        DEFAULT_QUESTION,
        Configuration,
        ModelChoice,
        SweepInputError,
        SweepPlan,
        SweepSpec,
    )

# Imported on first use: the bench worker process imports `bench.protocol`, and must not pay
# for the session machinery (Ollama client, hardware sampler) on every start.
_HOMES: dict[str, str] = {
    "BenchProgress": "context",
    "BenchRecord": "records",
    "BenchRun": "session",
    "BenchSession": "session",
    "CHAT_TEST": "records",
    "Comparison": "compare",
    "ConfigFailure": "session",
    "Configuration": "sweep",
    "DEFAULT_QUESTION": "sweep",
    "FORMATS": "formatters",
    "HardwareInfo": "hardware_info",
    "LLAMA_BENCH_FIELDS": "records",
    "ModelChoice": "sweep",
    "OLLAMA_CAVEATS": "ollama_run",
    "OutputFormat": "formatters",
    "ProgressCallback": "context",
    "ResultStore": "store",
    "RowWriter": "formatters",
    "SweepInputError": "sweep",
    "SweepPlan": "sweep",
    "SweepSpec": "sweep",
    "bench_log_path": "session",
    "bench_test_name": "records",
    "best_configuration": "compare",
    "compare_with_saved": "compare",
    "format_comparison": "formatters",
    "format_records": "formatters",
    "layout_for": "formatters",
    "layout_for_sweep": "formatters",
    "load_settings_for": "compare",
    "plan_sweep": "session",
    "results_path": "store",
}

__all__ = [
    "CHAT_TEST",
    "DEFAULT_QUESTION",
    "FORMATS",
    "LLAMA_BENCH_FIELDS",
    "OLLAMA_CAVEATS",
    "BenchProgress",
    "BenchRecord",
    "BenchRun",
    "BenchSession",
    "Comparison",
    "ConfigFailure",
    "Configuration",
    "HardwareInfo",
    "ModelChoice",
    "OutputFormat",
    "ProgressCallback",
    "ResultStore",
    "RowWriter",
    "SweepInputError",
    "SweepPlan",
    "SweepSpec",
    "bench_log_path",
    "bench_test_name",
    "best_configuration",
    "compare_with_saved",
    "format_comparison",
    "format_records",
    "layout_for",
    "layout_for_sweep",
    "load_settings_for",
    "plan_sweep",
    "results_path",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value

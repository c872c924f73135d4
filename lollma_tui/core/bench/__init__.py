"""llama-bench-compatible benchmarks: sweeps over quantizations, GPU layers and threads, each
configuration measured in a fresh worker process, plus an end-to-end chat test through the
app's own backend. No Textual and no rich here.

    plan = await plan_sweep(SweepSpec(models=("tiny.gguf",), quants="all", threads=(1, 2)))
    session = BenchSession(plan, on_progress=callback)
    run = await session.run()          # session.cancel() stops it; run.records are kept
    ResultStore().save(run.records)
    best = best_configuration(run.records)
"""

import lazy_loader

# The names, and the submodule each comes from, are listed once: in __init__.pyi.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

"""Hot-swap core: one active backend, its settings, and model swaps as transactions.

No Textual here. The app builds a `ModelSession` with a backend factory, calls `swap()` with
the settings the drawer or a slash command produced, and shows the `SwapProgress` and the
`SwapResult` it gets back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lollma_tui.core.lazy_exports import lazy_getattr

if TYPE_CHECKING:
    from lollma_tui.core.session.budget import MemoryBudget, budget_from_snapshot
    from lollma_tui.core.session.compare import SetupSummary, format_comparison, summarise_replies
    from lollma_tui.core.session.models import (
        ModelChoice,
        ModelChoiceError,
        model_names,
        ollama_catalog,
        quant_variants,
        resolve_model,
        settings_for_quant,
    )
    from lollma_tui.core.session.plan import LoadPlan, plan_load, reclaimable_memory
    from lollma_tui.core.session.reload import (
        applied_without_reload,
        changed_fields,
        ignored_fields,
        reload_needed,
        reloading_fields,
    )
    from lollma_tui.core.session.results import (
        ProgressListener,
        SwapPhase,
        SwapProgress,
        SwapResult,
        SwapTimings,
    )
    from lollma_tui.core.session.session import BackendFactory, ModelSession, SwapInProgressError

_EXPORTS = {
    "MemoryBudget": "budget",
    "budget_from_snapshot": "budget",
    "SetupSummary": "compare",
    "format_comparison": "compare",
    "summarise_replies": "compare",
    "ModelChoice": "models",
    "ModelChoiceError": "models",
    "model_names": "models",
    "ollama_catalog": "models",
    "quant_variants": "models",
    "resolve_model": "models",
    "settings_for_quant": "models",
    "LoadPlan": "plan",
    "plan_load": "plan",
    "reclaimable_memory": "plan",
    "applied_without_reload": "reload",
    "changed_fields": "reload",
    "ignored_fields": "reload",
    "reload_needed": "reload",
    "reloading_fields": "reload",
    "ProgressListener": "results",
    "SwapPhase": "results",
    "SwapProgress": "results",
    "SwapResult": "results",
    "SwapTimings": "results",
    "BackendFactory": "session",
    "ModelSession": "session",
    "SwapInProgressError": "session",
}

__getattr__ = lazy_getattr(__name__, _EXPORTS)

__all__ = [
    "BackendFactory",
    "LoadPlan",
    "MemoryBudget",
    "ModelChoice",
    "ModelChoiceError",
    "ModelSession",
    "ProgressListener",
    "SetupSummary",
    "SwapInProgressError",
    "SwapPhase",
    "SwapProgress",
    "SwapResult",
    "SwapTimings",
    "applied_without_reload",
    "budget_from_snapshot",
    "changed_fields",
    "format_comparison",
    "ignored_fields",
    "model_names",
    "ollama_catalog",
    "plan_load",
    "quant_variants",
    "reclaimable_memory",
    "reload_needed",
    "reloading_fields",
    "resolve_model",
    "settings_for_quant",
    "summarise_replies",
]

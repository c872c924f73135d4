"""Type information for the lazily loaded names below (read by `lazy_loader` at run time)."""

from .budget import (
    MemoryBudget as MemoryBudget,
    budget_from_snapshot as budget_from_snapshot,
)
from .compare import (
    SetupSummary as SetupSummary,
    SetupUnavailableError as SetupUnavailableError,
    format_comparison as format_comparison,
    settings_for as settings_for,
    summarise_replies as summarise_replies,
)
from .models import (
    ModelChoice as ModelChoice,
    ModelChoiceError as ModelChoiceError,
    model_names as model_names,
    ollama_catalog as ollama_catalog,
    quant_variants as quant_variants,
    resolve_model as resolve_model,
    settings_for_quant as settings_for_quant,
)
from .plan import (
    LoadPlan as LoadPlan,
    plan_load as plan_load,
    reclaimable_memory as reclaimable_memory,
)
from .reload import (
    applied_without_reload as applied_without_reload,
    changed_fields as changed_fields,
    ignored_fields as ignored_fields,
    reload_needed as reload_needed,
    reloading_fields as reloading_fields,
)
from .results import (
    ProgressListener as ProgressListener,
    SwapPhase as SwapPhase,
    SwapProgress as SwapProgress,
    SwapResult as SwapResult,
    SwapTimings as SwapTimings,
)
from .session import (
    BackendFactory as BackendFactory,
    ModelSession as ModelSession,
    SwapInProgressError as SwapInProgressError,
)

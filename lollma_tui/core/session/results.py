"""What a swap reports while it runs and when it ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from lollma_tui.core.backends.base import LoadedModel
from lollma_tui.core.session.plan import LoadPlan
from lollma_tui.core.settings import LoadSettings


class SwapPhase(StrEnum):
    ESTIMATING = "estimating"
    STOPPING_REPLY = "stopping reply"
    UNLOADING = "unloading"
    LOADING = "loading"
    ROLLING_BACK = "rolling back"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class SwapProgress:
    phase: SwapPhase
    message: str


ProgressListener = Callable[[SwapProgress], None]


@dataclass(frozen=True, slots=True)
class SwapTimings:
    """Seconds spent in each phase (0 for phases that did not run)."""

    estimate_s: float = 0.0
    stop_reply_s: float = 0.0
    unload_s: float = 0.0
    load_s: float = 0.0
    rollback_s: float = 0.0
    total_s: float = 0.0


@dataclass(frozen=True, slots=True)
class SwapResult:
    ok: bool
    """The requested settings are in force."""
    requested: LoadSettings
    loaded: LoadedModel | None
    """What is loaded now: the new model, the previous one after a rollback, or nothing."""
    message: str
    """One line for the chat log: what happened, and on failure why and where things stand."""
    reloaded: bool = False
    """A model was (re)loaded; False when the change applied without one, or was refused."""
    refused: bool = False
    """The fit check refused before anything was touched (the previous model is still loaded)."""
    rolled_back: bool = False
    """The new model failed and the previous one is loaded again."""
    rollback_failed: bool = False
    """The new model failed, and so did reloading the previous one: nothing is loaded."""
    stopped_reply: bool = False
    error: str | None = None
    """Why the requested model could not be loaded."""
    rollback_error: str | None = None
    notes: tuple[str, ...] = ()
    plan: LoadPlan | None = None
    timings: SwapTimings = field(default_factory=SwapTimings)


@dataclass
class SwapClock:
    """Times a swap's phases: `lap()` gives the seconds since the previous lap."""

    started: float

    @classmethod
    def start(cls) -> SwapClock:
        return cls(time.perf_counter())

    def lap(self) -> float:
        now = time.perf_counter()
        elapsed, self.started = now - self.started, now
        return elapsed


def failure_text(label: str, error: BaseException) -> str:
    text = str(error) or type(error).__name__
    # The llama.cpp backend already words its load errors this way.
    return text if text.lower().startswith("could not load") else f"Could not load {label}: {text}"


def refused(
    heading: str,
    reason: str,
    target: LoadSettings,
    previous: LoadedModel | None,
    notes: tuple[str, ...],
    plan: LoadPlan,
    timings: SwapTimings,
) -> SwapResult:
    """A swap that stopped before touching the model in use: `heading`, why, and what stays."""
    where = f" — still on {previous.name}" if previous is not None else ""
    if previous is not None and plan.unreadable and same_file(previous.settings.model, target.model):
        # Damaged or replaced under the model in use: its next reply may crash on it, and the
        # restart that follows a crash fails the same way.
        where += ", loaded before its file changed: its replies may fail until a good copy is loaded"
    return SwapResult(
        ok=False,
        requested=target,
        loaded=previous,
        message=f"{heading}: {reason}{where}",
        refused=True,
        error=reason,
        notes=notes,
        plan=plan,
        timings=timings,
    )


def same_file(one: str, other: str) -> bool:
    return bool(one) and Path(one).expanduser().absolute() == Path(other).expanduser().absolute()

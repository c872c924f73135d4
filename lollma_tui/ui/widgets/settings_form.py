"""What the settings drawer edits, without widgets: parsing, display, choices and pending changes.

Text entries read and show their values through the settings table (`core.settings_table`),
as the slash commands, the flags and the config file do.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import fields, replace
from typing import TypeVar

from lollma_tui.core import formatting as fmt
from lollma_tui.core.models.fit import FitStatus, FitVerdict
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, SettingsError
from lollma_tui.core.settings_table import SETTINGS, Setting, describe_fields, setting

ReloadFields = Callable[[LoadSettings, LoadSettings], tuple[str, ...]]
FitChecker = Callable[[LoadSettings], FitVerdict | None]
ReadOnlyFields = Callable[[BackendKind], Mapping[str, str]]
"""A backend → the load settings it does not let this app change, each with the reason."""
Settings = TypeVar("Settings", LoadSettings, SamplingSettings)

BACKEND_LABELS: dict[BackendKind, str] = {
    BackendKind.LLAMA_CPP: "llama.cpp",
    BackendKind.OLLAMA: "Ollama",
    BackendKind.OPENAI: "OpenAI-compatible",
}
REMOTE_FIT_NOTE = (
    "no fit estimate: the model runs on the server, whose memory this app cannot see "
    "(the hardware panel shows it with --hw-host)"
)


def no_read_only(kind: BackendKind) -> Mapping[str, str]:
    return {}


def read_only_summary(reasons: Mapping[str, str]) -> str:
    """One line per reason, naming the settings it fixes ("GPU layers, context: set when …")."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in reasons.items():
        by_reason.setdefault(reason, []).append(setting(name).label)
    return "\n".join(f"🔒 {', '.join(labels)}: {reason}" for reason, labels in by_reason.items())


def pending_line(
    draft: LoadSettings,
    *,
    errors: tuple[str, ...],
    reload: tuple[str, ...],
    changed: tuple[str, ...],
    asking: bool = False,
    unlisted: str | None = None,
) -> tuple[str, str]:
    """What the line above Apply says, and its state class ("-invalid", "-reload", "-changed"
    or ""). `asking`: the drafted backend's server was asked for its models and has not
    answered; `unlisted`: why it could not be asked."""
    if errors:
        return f"fix first: {describe_fields(errors)}", "-invalid"
    if not draft.model and asking:
        return f"asking {BACKEND_LABELS.get(draft.backend, draft.backend)} for its models…", ""
    if not draft.model and unlisted:
        return f"no model list: {unlisted}", "-invalid"
    if not draft.model:
        return "choose a model", "-invalid"
    if reload:
        # What applies without a reload is named too: it was left out, and not marked otherwise.
        others = tuple(name for name in changed if name not in reload)
        also = f" · also: {describe_fields(others)}" if others else ""
        return f"⟳ reload: {describe_fields(reload)}{also}", "-reload"
    if changed:
        return f"applies without reload: {describe_fields(changed)}", "-changed"
    return "no pending changes", ""


def changed_fields(old: Settings, new: Settings) -> tuple[str, ...]:
    return tuple(f.name for f in fields(old) if getattr(old, f.name) != getattr(new, f.name))


def applied_changes(old: LoadSettings, new: LoadSettings, ignored: Collection[str]) -> tuple[str, ...]:
    """The changed load fields the backend applies: one it ignores (flash attention on Ollama)
    is kept in the draft, for a switch back, but is nothing to apply."""
    return tuple(name for name in changed_fields(old, new) if name not in ignored)


def default_reload_fields(old: LoadSettings, new: LoadSettings) -> tuple[str, ...]:
    """Every changed load field whose row in the settings table says it reloads the model."""
    return tuple(name for name in changed_fields(old, new) if setting(name).reload)


def rebase(old_applied: Settings, new_applied: Settings, draft: Settings) -> Settings:
    """`draft` moved onto `new_applied`: the fields the user edited keep the edit, the rest
    follow the newly applied settings."""
    edits = {name: getattr(draft, name) for name in changed_fields(old_applied, draft)}
    old_backend, new_backend = (getattr(applied, "backend", None) for applied in (old_applied, new_applied))
    if new_backend is not old_backend and "backend" not in edits:
        # A model picked for the old backend (a GGUF) means nothing to the new one (Ollama).
        edits.pop("model", None)
    try:
        return replace(new_applied, **edits)
    except SettingsError:
        return new_applied


# --- text entries ----------------------------------------------------------------------------

LOAD_TEXT_FIELDS: tuple[Setting, ...] = tuple(
    setting(name) for name in ("n_threads", "n_batch", "keep_alive")
)
"""Load settings the drawer edits as text (the others have steppers, switches and menus)."""
SAMPLING_FIELDS: tuple[Setting, ...] = tuple(s for s in SETTINGS if s.section == "sampling")


# --- fit verdict ---------------------------------------------------------------------------

FIT_LEVELS: dict[FitStatus, str] = {
    FitStatus.FITS: "ok",
    FitStatus.FITS_WITH_LAYERS: "warm",
    FitStatus.DOES_NOT_FIT: "hot",
}


def fit_summary(verdict: FitVerdict) -> str:
    """One line: the verdict, and for a fit the memory it is expected to take."""
    if verdict.status == FitStatus.FITS:
        estimate = verdict.estimate
        parts = ["✓ fits"]
        if estimate.vram_total:
            parts.append(f"VRAM {fmt.size(estimate.vram_total)}")
        parts.append(f"RAM {fmt.size(estimate.ram_total)}")
        return " · ".join(parts)
    mark = "▲" if verdict.status == FitStatus.FITS_WITH_LAYERS else "✗"
    return f"{mark} {verdict.message}"


def shown_errors(errors: Mapping[str, str], backend: BackendKind) -> tuple[str, ...]:
    """The fields whose entry errors hold Apply back. A row hidden for `backend` (keep_alive
    off Ollama) cannot be fixed from there: its error waits until the row shows again."""
    hidden = {"keep_alive"} if backend != BackendKind.OLLAMA else set()
    return tuple(name for name in errors if name not in hidden)

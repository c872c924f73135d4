"""Which load-setting changes make a backend reload its model, per backend.

llama.cpp rebuilds the whole model and context for any load setting, so every field but
Ollama's keep_alive reloads. Ollama restarts its runner only when a *runner* option differs
from the loaded instance's (reference/backends.md §A.7: num_ctx, num_batch, num_gpu, num_thread,
use_mmap); keep_alive is sent per request, and flash attention, the KV cache type and mlock are
server-wide settings it does not take per request; repacked weights are llama.cpp's in-process
choice, which Ollama makes for itself. An OpenAI-compatible server fixes its settings when it
starts: only the model id changes anything, the rest is read-only (with the reason, for the UI).
"""

from __future__ import annotations

from dataclasses import fields

from lollma_tui.core.settings import BackendKind, LoadSettings
from lollma_tui.core.settings_table import SETTINGS

LOAD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(LoadSettings))
_TABLE_RELOADS = frozenset(s.name for s in SETTINGS if s.section == "load" and s.reload)
"""llama.cpp's rule, from the settings table: it rebuilds model and context for these."""

_OLLAMA_RUNNER_FIELDS: frozenset[str] = frozenset(
    {"model", "n_gpu_layers", "n_ctx", "n_batch", "n_threads", "use_mmap"}
)
_OLLAMA_SERVER_WIDE = (
    "an Ollama server setting (OLLAMA_FLASH_ATTENTION, OLLAMA_KV_CACHE_TYPE…), not per request"
)
_SET_AT_START = "set when the OpenAI-compatible server starts (its command line); a client cannot change it"
_READ_ONLY: dict[BackendKind, dict[str, str]] = {
    BackendKind.LLAMA_CPP: {"keep_alive": "Ollama only: llama.cpp keeps the model until you unload it"},
    BackendKind.OLLAMA: {
        "flash_attn": _OLLAMA_SERVER_WIDE,
        "kv_cache_type": _OLLAMA_SERVER_WIDE,
        "use_mlock": _OLLAMA_SERVER_WIDE,
        "repack": "llama.cpp's in-process choice: Ollama repacks weights as it sees fit",
    },
    BackendKind.OPENAI: {
        name: _SET_AT_START for name in LOAD_FIELDS if name not in ("backend", "model", "keep_alive")
    }
    | {"keep_alive": "Ollama's native API only: OpenAI-compatible servers decide when to unload"},
}


def read_only_fields(kind: BackendKind) -> dict[str, str]:
    """Load settings `kind` does not let this app change, each with the reason to show."""
    return dict(_READ_ONLY[kind])


def ignored_fields(kind: BackendKind) -> frozenset[str]:
    """Load settings `kind` does not apply at all (the drawer greys them out)."""
    return frozenset(_READ_ONLY[kind])


def reloading_fields(kind: BackendKind) -> frozenset[str]:
    """Load settings whose change makes `kind` load the model again."""
    if kind is BackendKind.OLLAMA:
        return _OLLAMA_RUNNER_FIELDS
    return _TABLE_RELOADS - {"backend"} - ignored_fields(kind)


_PUT_BACK = frozenset({BackendKind.OPENAI})
"""Backends whose read-only fields are put back when changed: an OpenAI server's start-up flags
never apply. The others' ignored fields are kept as asked, for after a backend switch."""


def fixed_fields(kind: BackendKind) -> dict[str, str]:
    """Load settings that `kind` puts back when changed (an OpenAI server's start-up flags),
    each with the reason to show: a command that changes one alone is refused with it."""
    return dict(_READ_ONLY[kind]) if kind in _PUT_BACK else {}


def keep_read_only(old: LoadSettings, new: LoadSettings) -> LoadSettings:
    """`new` with the fields its backend cannot change put back to `old`'s values."""
    if old.backend != new.backend or new.backend not in _PUT_BACK:
        return new
    reasons = _READ_ONLY[new.backend]
    kept = {name: getattr(old, name) for name in changed_fields(old, new) if name in reasons}
    return new.with_changes(**kept) if kept else new


def read_only_notes(old: LoadSettings, new: LoadSettings) -> tuple[str, ...]:
    """One line per field changed from `old` to `new` that `new.backend` cannot apply."""
    if old.backend != new.backend or new.backend not in _PUT_BACK:
        return ()
    reasons = _READ_ONLY[new.backend]
    return tuple(
        f"{name} not changed: {reasons[name]}" for name in changed_fields(old, new) if name in reasons
    )


def changed_fields(old: LoadSettings, new: LoadSettings) -> tuple[str, ...]:
    return tuple(name for name in LOAD_FIELDS if getattr(old, name) != getattr(new, name))


def reload_needed(old: LoadSettings, new: LoadSettings) -> tuple[str, ...]:
    """Names of the fields changed from `old` to `new` that need a model reload, in field order.

    A backend switch always reloads: "backend" comes first, then the other changed fields the
    new backend applies.
    """
    changed = changed_fields(old, new)
    relevant = reloading_fields(new.backend)
    names = tuple(name for name in changed if name in relevant)
    if old.backend != new.backend:
        return ("backend", *names)
    return names


def reload_needed_on_a_cpu_only_build(old: LoadSettings, new: LoadSettings) -> tuple[str, ...]:
    """`reload_needed` where the llama.cpp build runs every layer on the CPU: a change of GPU
    layers alone loads nothing new (the session keeps the model, see `plan._plan_gguf`)."""
    names = reload_needed(old, new)
    if old.backend is BackendKind.LLAMA_CPP and new.backend is BackendKind.LLAMA_CPP:
        return tuple(name for name in names if name != "n_gpu_layers")
    return names


def applied_without_reload(old: LoadSettings, new: LoadSettings) -> tuple[str, ...]:
    """Changed fields that take effect without a reload (Ollama's keep_alive, on the next request)."""
    if old.backend != new.backend:
        return ()
    skip = reloading_fields(new.backend) | ignored_fields(new.backend)
    return tuple(name for name in changed_fields(old, new) if name not in skip)

"""Which load-setting changes make a backend reload its model, per backend.

llama.cpp rebuilds the whole model and context for any load setting, so every field but
Ollama's keep_alive reloads. Ollama restarts its runner only when a *runner* option differs
from the loaded instance's (reference/backends.md §A.7: num_ctx, num_batch, num_gpu, num_thread,
use_mmap); keep_alive is sent per request, and flash attention, the KV cache type and mlock are
server-wide settings it does not take per request; repacked weights are llama.cpp's in-process
choice, which Ollama makes for itself.
"""

from __future__ import annotations

from dataclasses import fields

from lollma_tui.core.settings import BackendKind, LoadSettings

LOAD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(LoadSettings))

_OLLAMA_RUNNER_FIELDS: frozenset[str] = frozenset(
    {"model", "n_gpu_layers", "n_ctx", "n_batch", "n_threads", "use_mmap"}
)
_IGNORED: dict[BackendKind, frozenset[str]] = {
    BackendKind.LLAMA_CPP: frozenset({"keep_alive"}),
    BackendKind.OLLAMA: frozenset({"flash_attn", "kv_cache_type", "use_mlock", "repack"}),
}


def ignored_fields(kind: BackendKind) -> frozenset[str]:
    """Load settings `kind` does not apply at all (the drawer greys them out)."""
    return _IGNORED[kind]


def reloading_fields(kind: BackendKind) -> frozenset[str]:
    """Load settings whose change makes `kind` load the model again."""
    if kind is BackendKind.OLLAMA:
        return _OLLAMA_RUNNER_FIELDS
    return frozenset(LOAD_FIELDS) - {"backend"} - _IGNORED[kind]


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


def applied_without_reload(old: LoadSettings, new: LoadSettings) -> tuple[str, ...]:
    """Changed fields that take effect without a reload (Ollama's keep_alive, on the next request)."""
    if old.backend != new.backend:
        return ()
    skip = reloading_fields(new.backend) | ignored_fields(new.backend)
    return tuple(name for name in changed_fields(old, new) if name not in skip)

"""Which setting changes reload the model, per backend (pure)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from lollma_tui.core.session import (
    applied_without_reload,
    changed_fields,
    ignored_fields,
    reload_needed,
    reloading_fields,
)
from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings

# One different value per field, so every field can be toggled on its own.
OTHER_VALUE: dict[str, Any] = {
    "model": "other",
    "n_gpu_layers": AUTO,
    "n_ctx": 8192,
    "n_threads": 3,
    "n_batch": 256,
    "flash_attn": True,
    "kv_cache_type": "q8_0",
    "use_mmap": False,
    "use_mlock": True,
    "keep_alive": "30m",
    "repack": "off",
}
OLLAMA_RUNNER = {"model", "n_gpu_layers", "n_ctx", "n_threads", "n_batch", "use_mmap"}


def test_every_load_field_has_a_test_value() -> None:
    assert set(OTHER_VALUE) == {f.name for f in fields(LoadSettings)} - {"backend"}


@pytest.mark.parametrize("name", sorted(OTHER_VALUE))
def test_llama_cpp_reloads_for_everything_but_keep_alive(name: str) -> None:
    old = LoadSettings(model="a.gguf")
    new = old.with_changes(**{name: OTHER_VALUE[name]})
    assert changed_fields(old, new) == (name,)
    expected = () if name == "keep_alive" else (name,)
    assert reload_needed(old, new) == expected
    assert applied_without_reload(old, new) == ()


@pytest.mark.parametrize("name", sorted(OTHER_VALUE))
def test_ollama_reloads_only_for_runner_options(name: str) -> None:
    old = LoadSettings(backend=BackendKind.OLLAMA, model="m:1b")
    new = old.with_changes(**{name: OTHER_VALUE[name]})
    assert reload_needed(old, new) == ((name,) if name in OLLAMA_RUNNER else ())
    # keep_alive is sent with each request: it applies without a reload; the server-wide
    # settings (flash attention, KV type, mlock) do not apply at all.
    assert applied_without_reload(old, new) == (("keep_alive",) if name == "keep_alive" else ())
    server_wide = {"flash_attn", "kv_cache_type", "use_mlock", "repack"}
    assert (name in ignored_fields(BackendKind.OLLAMA)) == (name in server_wide)


def test_a_backend_switch_reloads_and_lists_what_else_changed() -> None:
    old = LoadSettings(model="a.gguf", n_ctx=4096)
    new = old.with_changes(backend=BackendKind.OLLAMA, model="m:1b", n_ctx=2048, flash_attn=True)
    assert reload_needed(old, new) == ("backend", "model", "n_ctx")
    assert applied_without_reload(old, new) == ()


def test_nothing_changed_nothing_to_reload() -> None:
    settings = LoadSettings(model="a.gguf")
    assert reload_needed(settings, settings) == ()
    assert reloading_fields(BackendKind.OLLAMA) == frozenset(OLLAMA_RUNNER)
    assert "keep_alive" not in reloading_fields(BackendKind.LLAMA_CPP)

"""Our settings as Ollama request ``options`` (always a plain dict: `ollama.Options` drops min_p).

Runner options (num_ctx, num_batch, num_gpu, num_thread, use_mmap) make Ollama reload the model
when they differ from the loaded instance's, so the backend computes them once per load and
sends the very same dict on every chat request afterwards.
"""

from __future__ import annotations

import re
from typing import Any

from lollma_tui.core.settings import AUTO, LoadSettings, SamplingSettings

ALL_LAYERS = 999
"""num_gpu for "every layer": llama.cpp caps it at the model's layer count."""

_BARE_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def runner_options(settings: LoadSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"num_ctx": settings.n_ctx, "num_batch": settings.n_batch}
    if settings.n_gpu_layers != AUTO:
        # -1 means all layers here; Ollama reads -1 as "decide for me", hence a big number.
        options["num_gpu"] = ALL_LAYERS if settings.n_gpu_layers == -1 else int(settings.n_gpu_layers)
    if settings.n_threads is not None:
        options["num_thread"] = settings.n_threads
    if not settings.use_mmap:
        # Only the non-default is sent: an explicit true would not match an "auto" instance.
        options["use_mmap"] = False
    return options


def sampling_options(sampling: SamplingSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_k": sampling.top_k,
        "top_p": sampling.top_p,
        "min_p": sampling.min_p,
        "repeat_penalty": sampling.repeat_penalty,
    }
    if sampling.seed is not None:
        options["seed"] = sampling.seed
    if sampling.max_tokens is not None:
        options["num_predict"] = sampling.max_tokens
    if sampling.stop:
        options["stop"] = list(sampling.stop)
    return options


def keep_alive_value(text: str) -> float | str:
    """The keep_alive to send: Go duration strings pass; a bare number becomes seconds.

    Ollama rejects unit-less strings such as ``"300"`` with a 400 (only ``"0"`` parses), while
    a JSON number means seconds, so "300" is sent as 300.0.
    """
    value = text.strip()
    if _BARE_NUMBER.match(value):
        return float(value)
    return value


def unsupported_settings(settings: LoadSettings) -> tuple[str, ...]:
    """Load settings Ollama cannot take per request, as notes for the user."""
    notes: list[str] = []
    if settings.flash_attn:
        notes.append("Flash attention is a server setting in Ollama (OLLAMA_FLASH_ATTENTION=1); not applied.")
    if settings.kv_cache_type != "f16":
        notes.append(
            f"KV cache type {settings.kv_cache_type} is a server setting in Ollama "
            "(OLLAMA_KV_CACHE_TYPE); not applied."
        )
    if settings.use_mlock:
        notes.append("Ollama no longer supports use_mlock; not applied.")
    return tuple(notes)

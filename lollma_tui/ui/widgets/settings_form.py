"""What the settings drawer edits, without widgets: parsing, display, choices and pending changes.

Each text field turns what the user typed into a settings value or a `SettingsError` whose
message names the field, by building a settings object with only that field changed, so the
range checks stay in `lollma_tui.core.settings` and each error belongs to exactly one field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from lollma_tui.core.models.fit import FitStatus, FitVerdict, format_bytes
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, SettingsError

ReloadFields = Callable[[LoadSettings, LoadSettings], tuple[str, ...]]
FitChecker = Callable[[LoadSettings], FitVerdict | None]
Settings = TypeVar("Settings", LoadSettings, SamplingSettings)

BACKEND_LABELS: dict[BackendKind, str] = {BackendKind.LLAMA_CPP: "llama.cpp", BackendKind.OLLAMA: "Ollama"}

FIELD_LABELS: dict[str, str] = {
    "backend": "backend",
    "model": "model",
    "n_gpu_layers": "GPU layers",
    "n_ctx": "context",
    "n_threads": "threads",
    "n_batch": "batch",
    "flash_attn": "flash attention",
    "kv_cache_type": "KV cache",
    "use_mmap": "mmap",
    "use_mlock": "mlock",
    "keep_alive": "keep_alive",
    "repack": "repack",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat penalty",
    "seed": "seed",
    "max_tokens": "max tokens",
    "stop": "stop",
}


def changed_fields(old: Settings, new: Settings) -> tuple[str, ...]:
    return tuple(f.name for f in fields(old) if getattr(old, f.name) != getattr(new, f.name))


def default_reload_fields(old: LoadSettings, new: LoadSettings) -> tuple[str, ...]:
    """Every load field that differs, except keep_alive, which Ollama takes with the next request."""
    return tuple(name for name in changed_fields(old, new) if name != "keep_alive")


def rebase(old_applied: Settings, new_applied: Settings, draft: Settings) -> Settings:
    """`draft` moved onto `new_applied`: the fields the user edited keep the edit, the rest
    follow the newly applied settings."""
    edits = {name: getattr(draft, name) for name in changed_fields(old_applied, draft)}
    try:
        return replace(new_applied, **edits)
    except SettingsError:
        return new_applied


def describe_fields(names: tuple[str, ...]) -> str:
    return ", ".join(FIELD_LABELS.get(name, name) for name in names)


# --- text fields ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextField:
    """A settings field edited as text."""

    name: str
    label: str
    parse: Callable[[str], Any]
    """Text → value; raises `SettingsError` with a message for the user."""
    show: Callable[[Any], str]
    placeholder: str = ""
    tooltip: str = ""


def _number(name: str, text: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text.strip())
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise SettingsError(f"{name} must be {noun}, not {text.strip()!r}") from None


def _checked(template: LoadSettings | SamplingSettings, name: str, value: Any) -> Any:
    replace(template, **{name: value})
    return value


def _sampling_number(
    name: str, kind: type[int] | type[float], *, optional: bool = False
) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if optional and not text.strip():
            return None
        return _checked(SamplingSettings(), name, _number(name, text, kind))

    return parse


def _load_number(name: str, *, optional: bool = False) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if optional and not text.strip():
            return None
        return _checked(LoadSettings(), name, _number(name, text, int))

    return parse


def show_number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


_STOP_ESCAPES = {"n": "\n", "t": "\t", ",": ",", "\\": "\\"}


def parse_stop(text: str) -> tuple[str, ...]:
    r"""Comma-separated stop strings; ``\,`` is a comma inside one, ``\n`` and ``\t`` what they say."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "\\")
            current.append(_STOP_ESCAPES.get(following, "\\" + following))
        elif char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    # Stop strings are matched literally, so only whitespace around the commas is dropped.
    return tuple(part.strip(" ") for part in parts if part.strip(" "))


def show_stop(stop: tuple[str, ...]) -> str:
    def escape(item: str) -> str:
        return item.replace("\\", "\\\\").replace(",", "\\,").replace("\n", "\\n").replace("\t", "\\t")

    return ", ".join(escape(item) for item in stop)


_DURATION = re.compile(r"^-?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$|^-?(?:\d+(?:\.\d*)?|\.\d+)$")


def parse_keep_alive(text: str) -> str:
    value = text.strip()
    if not _DURATION.match(value):
        raise SettingsError(
            f"keep_alive must be a duration (5m, 1h30m), seconds (300), 0 or -1, not {value!r}"
        )
    return value


LOAD_TEXT_FIELDS: tuple[TextField, ...] = (
    TextField(
        "n_threads",
        "Threads",
        _load_number("n_threads", optional=True),
        show_number,
        "auto",
        "CPU threads for generation; empty lets the backend choose",
    ),
    TextField("n_batch", "Batch", _load_number("n_batch"), show_number, "512", "Prompt tokens per batch"),
    TextField(
        "keep_alive",
        "keep_alive",
        parse_keep_alive,
        str,
        "5m",
        "How long Ollama keeps the model loaded after a reply (-1: forever)",
    ),
)

SAMPLING_FIELDS: tuple[TextField, ...] = (
    TextField("temperature", "Temperature", _sampling_number("temperature", float), show_number, "0.8"),
    TextField("top_p", "top_p", _sampling_number("top_p", float), show_number, "0.95"),
    TextField("top_k", "top_k", _sampling_number("top_k", int), show_number, "40", "0 turns it off"),
    TextField("min_p", "min_p", _sampling_number("min_p", float), show_number, "0.05"),
    TextField("repeat_penalty", "Repeat pen.", _sampling_number("repeat_penalty", float), show_number, "1.1"),
    TextField(
        "seed", "Seed", _sampling_number("seed", int, optional=True), show_number, "random", "Empty: random"
    ),
    TextField(
        "max_tokens",
        "Max tokens",
        _sampling_number("max_tokens", int, optional=True),
        show_number,
        "unlimited",
        "Empty: until the model stops or the context is full",
    ),
    TextField(
        "stop", "Stop", parse_stop, show_stop, "none", r"Comma-separated; \, for a comma, \n for a newline"
    ),
)


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
            parts.append(f"VRAM {format_bytes(estimate.vram_total)}")
        parts.append(f"RAM {format_bytes(estimate.ram_total)}")
        return " · ".join(parts)
    mark = "▲" if verdict.status == FitStatus.FITS_WITH_LAYERS else "✗"
    return f"{mark} {verdict.message}"

"""The settings table: one row per load and sampling setting, from text to value and back.

Every place a user types a setting reads it through this table: the settings drawer, the slash
commands (/set, /ngl, /ctx …), the command-line flags and the config file. A row names the
setting, says how to read it from text (`parse`, raising `SettingsError` with a message that
names the setting), how to write it back (`format`, text `parse` reads to the same value),
whether changing it reloads the model, and what it means (`help`). Ranges are the settings
objects' own checks, which every parse runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lollma_tui.core.settings import (
    AUTO,
    KV_CACHE_TYPES,
    REPACK_CHOICES,
    BackendKind,
    LoadSettings,
    SamplingSettings,
    SettingsError,
)

Section = Literal["load", "sampling"]

_TRUE = frozenset({"on", "true", "yes", "1", "enable", "enabled"})
_FALSE = frozenset({"off", "false", "no", "0", "disable", "disabled"})
_UNSET = frozenset({"", "none", "auto", "default", "random", "unlimited", "off", "-1"})
_KEEP_ALIVE = re.compile(r"^[+-]?(?:(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+|\d+(?:\.\d*)?|\.\d+)$")
"""What Ollama reads as keep_alive: a Go duration (5m, 1h30m, -1s) or a number of seconds."""
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_LONGEST_DURATION_S = (2**63 - 1) / 1e9
_STOP_ESCAPES = {"n": "\n", "t": "\t", ",": ",", "\\": "\\"}

BACKEND_NAMES: Mapping[str, BackendKind] = {
    "llama.cpp": BackendKind.LLAMA_CPP,
    "llamacpp": BackendKind.LLAMA_CPP,
    "llama-cpp": BackendKind.LLAMA_CPP,
    "llama_cpp": BackendKind.LLAMA_CPP,
    "llama": BackendKind.LLAMA_CPP,
    "ollama": BackendKind.OLLAMA,
    "openai": BackendKind.OPENAI,
    "oai": BackendKind.OPENAI,
}


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: how it reads and writes as text, and what a change to it does."""

    name: str
    """The field's name in `LoadSettings` or `SamplingSettings`."""
    section: Section
    parse: Callable[[str], Any]
    """Text → value; raises `SettingsError` naming the setting."""
    format: Callable[[Any], str]
    """Value → the text a user would type back (``parse(format(v)) == v``)."""
    reload: bool
    """A change loads the model again (llama.cpp; `core.session.reload` has Ollama's rules)."""
    help: str
    label: str
    """The setting in a sentence ("GPU layers", "repeat penalty")."""
    row_label: str
    """Its label in the settings drawer, where columns are narrow."""
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    """Words worth offering when completing a value (numbers are left to the user)."""
    flags: tuple[str, ...] = ()
    """Command-line flags; the first is the long form."""
    metavar: str = "VALUE"
    """What the flag takes, in --help."""

    def default(self) -> Any:
        settings = LoadSettings() if self.section == "load" else SamplingSettings()
        return getattr(settings, self.name)

    def entry_text(self, value: Any) -> str:
        """`value` in a text entry: empty for "no value" (None, no stop strings), which parses back."""
        return "" if value is None or value == () else self.format(value)

    def placeholder(self) -> str:
        """What an empty entry means: the default, or the word for no value (auto, random…)."""
        return self.format(self.default())

    def parse_entry(self, text: str) -> Any:
        """A drawer entry's value: an empty one is the default its placeholder shows."""
        return self.default() if not text.strip() else self.parse(text)


# --- readers --------------------------------------------------------------------------------


def _checked(section: Section, name: str, value: object) -> None:
    """Raises the settings object's own `SettingsError` (its range) unless it takes `value`."""
    if section == "load":
        LoadSettings().with_changes(**{name: value})
    else:
        SamplingSettings().with_changes(**{name: value})


def _whole(text: str, name: str, *, k_suffix: bool = False) -> int:
    word = text.strip().lower().replace("_", "")
    scale = 1
    if k_suffix and word.endswith("k"):
        word, scale = word[:-1], 1024
    try:
        return int(word) * scale
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {text.strip()!r}") from None


def _number(text: str, name: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {text.strip()!r}") from None


def _int_reader(
    section: Section, name: str, *, k_suffix: bool = False, unset: bool = False
) -> Callable[[str], Any]:
    def parse(text: str) -> int | None:
        if unset and text.strip().lower() in _UNSET:
            return None
        value = _whole(text, name, k_suffix=k_suffix)
        _checked(section, name, value)
        return value

    return parse


def _float_reader(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text, name)
        _checked("sampling", name, value)
        return value

    return parse


def _bool_reader(name: str) -> Callable[[str], bool]:
    def parse(text: str) -> bool:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise SettingsError(f"{name} must be on or off, not {text.strip()!r}")

    return parse


def _gpu_layers(text: str) -> int | str:
    word = text.strip().lower()
    if word == AUTO:
        return AUTO
    if word in ("all", "max", "-1"):
        return -1
    try:
        value = int(word)
    except ValueError:
        value = None
    if value is None or value < 0:
        what = "a whole number" if value is None else "a layer count"
        raise SettingsError(f"n_gpu_layers must be {what}, auto or all, not {text.strip()!r}")
    return value


def _backend(text: str) -> BackendKind:
    kind = BACKEND_NAMES.get(text.strip().lower())
    if kind is None:
        raise SettingsError(f"backend must be llama.cpp, ollama or openai, not {text.strip()!r}")
    return kind


def _kv_cache_type(text: str) -> str:
    value = text.strip().lower()
    _checked("load", "kv_cache_type", value)
    return value


def _repack(text: str) -> str:
    word = text.strip().lower()
    value = {"true": "on", "yes": "on", "1": "on", "false": "off", "no": "off", "0": "off"}.get(word, word)
    _checked("load", "repack", value)
    return value


def _keep_alive(text: str) -> str:
    value = text.strip()
    if not _KEEP_ALIVE.match(value):
        raise SettingsError(
            f"keep_alive must be a duration like 5m or 1h30m, seconds (300), 0 or -1 (forever), not {value!r}"
        )
    seconds = sum(
        float(amount) * _DURATION_UNITS[unit] for amount, unit in _DURATION_PART.findall(value.lstrip("+-"))
    )
    if seconds > _LONGEST_DURATION_S:
        # Ollama reads it as a Go duration, which ends there: it would refuse the load.
        raise SettingsError(f"keep_alive must be at most 2562047h (-1 keeps the model loaded), not {value!r}")
    return value


def _stop(text: str) -> tuple[str, ...]:
    r"""Comma-separated; ``\,`` is a comma inside one, ``\n`` and ``\t`` what they say.

    Spaces around the commas are dropped: stop strings are matched literally, and a space the
    user typed after a comma is rarely meant to be part of one.
    """
    if text.strip().lower() in ("", "none", "off"):
        return ()
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
    stops = tuple(part.strip(" ") for part in parts if part.strip(" "))
    if not stops:
        raise SettingsError("stop must be strings separated by commas, or none")
    return stops


# --- writers --------------------------------------------------------------------------------


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def _unset_as(word: str) -> Callable[[Any], str]:
    def show(value: Any) -> str:
        return word if value is None else _plain(value)

    return show


def _show_gpu_layers(value: Any) -> str:
    return "all" if value == -1 else str(value)


def _show_stop(value: Any) -> str:
    if not value:
        return "none"

    def escape(item: str) -> str:
        return item.replace("\\", "\\\\").replace(",", "\\,").replace("\n", "\\n").replace("\t", "\\t")

    return ",".join(escape(item) for item in value)


_ON_OFF = ("on", "off")

# A table reads best a row at a time; the formatter would give every argument its own line.
# fmt: off
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "backend", "load", parse=_backend, format=str, reload=True,
        help="the inference backend: llama.cpp (GGUF files, in a worker process), an Ollama server, "
        "or an OpenAI-compatible server",
        label="backend", row_label="Backend", choices=tuple(kind.value for kind in BackendKind),
    ),
    Setting(
        "model", "load", parse=str.strip, format=str, reload=True,
        help="a GGUF path for llama.cpp, a tag (name:tag) for Ollama, a model id for an OpenAI server",
        label="model", row_label="Model",
    ),
    Setting(
        "n_gpu_layers", "load", parse=_gpu_layers, format=_show_gpu_layers, reload=True,
        help="layers offloaded to the GPU: a count, all, or auto (what fits)",
        label="GPU layers", row_label="GPU layers", aliases=("ngl", "gpu_layers", "num_gpu"),
        choices=("auto", "all", "0"), flags=("--n-gpu-layers", "--ngl"), metavar="N|all|auto",
    ),
    Setting(
        "n_ctx", "load", parse=_int_reader("load", "n_ctx", k_suffix=True), format=_plain, reload=True,
        help="context size in tokens, e.g. 8192 or 8k",
        label="context", row_label="Context", aliases=("ctx", "context", "num_ctx"),
        flags=("--n-ctx", "--ctx"), metavar="N",
    ),
    Setting(
        "n_threads", "load", parse=_int_reader("load", "n_threads", unset=True), format=_unset_as("auto"),
        reload=True, help="CPU threads for generation; auto lets the backend choose",
        label="threads", row_label="Threads", aliases=("threads", "num_thread"), choices=("auto",),
        flags=("--n-threads", "--threads"), metavar="N|auto",
    ),
    Setting(
        "n_batch", "load", parse=_int_reader("load", "n_batch", k_suffix=True), format=_plain, reload=True,
        help="prompt tokens evaluated per batch",
        label="batch", row_label="Batch", aliases=("batch", "num_batch"), flags=("--n-batch", "--batch"),
        metavar="N",
    ),
    Setting(
        "flash_attn", "load", parse=_bool_reader("flash_attn"), format=_plain, reload=True,
        help="flash attention (llama.cpp)",
        label="flash attention", row_label="Flash attn", aliases=("fa",), choices=_ON_OFF,
        flags=("--flash-attn",), metavar="on|off",
    ),
    Setting(
        "kv_cache_type", "load", parse=_kv_cache_type, format=str, reload=True,
        help=f"KV cache precision: {', '.join(KV_CACHE_TYPES)} (llama.cpp)",
        label="KV cache", row_label="KV cache", aliases=("kv", "cache_type"), choices=KV_CACHE_TYPES,
        flags=("--kv-cache-type",), metavar="TYPE",
    ),
    Setting(
        "use_mmap", "load", parse=_bool_reader("use_mmap"), format=_plain, reload=True,
        help="map the model file instead of reading it into memory",
        label="mmap", row_label="mmap", aliases=("mmap",), choices=_ON_OFF, flags=("--mmap",),
        metavar="on|off",
    ),
    Setting(
        "use_mlock", "load", parse=_bool_reader("use_mlock"), format=_plain, reload=True,
        help="lock the model in RAM so it is never swapped out (llama.cpp)",
        label="mlock", row_label="mlock", aliases=("mlock",), choices=_ON_OFF, flags=("--mlock",),
        metavar="on|off",
    ),
    Setting(
        "keep_alive", "load", parse=_keep_alive, format=str, reload=False,
        help="how long Ollama keeps the model loaded after a reply (-1: forever)",
        label="keep_alive", row_label="keep_alive", choices=("5m", "30m", "1h", "-1", "0"),
        flags=("--keep-alive",), metavar="DURATION",
    ),
    Setting(
        "repack", "load", parse=_repack, format=str, reload=True,
        help="llama.cpp's repacked weights (fast CPU kernels, AMX included); auto turns them off where "
        "they crashed this model before",
        label="repack", row_label="Repack", choices=REPACK_CHOICES, flags=("--repack",),
        metavar="auto|on|off",
    ),
    Setting(
        "temperature", "sampling", parse=_float_reader("temperature"), format=_plain, reload=False,
        help="randomness of sampling; 0 always takes the likeliest token",
        label="temperature", row_label="Temperature", aliases=("temp",), flags=("--temperature", "--temp"),
        metavar="T",
    ),
    Setting(
        "top_p", "sampling", parse=_float_reader("top_p"), format=_plain, reload=False,
        help="sample from the likeliest tokens that together reach this probability",
        label="top_p", row_label="top_p", flags=("--top-p",), metavar="P",
    ),
    Setting(
        "top_k", "sampling", parse=_int_reader("sampling", "top_k"), format=_plain, reload=False,
        help="sample from this many likeliest tokens; 0 turns it off",
        label="top_k", row_label="top_k", flags=("--top-k",), metavar="K",
    ),
    Setting(
        "min_p", "sampling", parse=_float_reader("min_p"), format=_plain, reload=False,
        help="drop tokens less likely than this share of the likeliest one",
        label="min_p", row_label="min_p", flags=("--min-p",), metavar="P",
    ),
    Setting(
        "repeat_penalty", "sampling", parse=_float_reader("repeat_penalty"), format=_plain, reload=False,
        help="penalty for repeating recent tokens; 1.0 is off",
        label="repeat penalty", row_label="Repeat pen.", aliases=("repeat",), flags=("--repeat-penalty",),
        metavar="P",
    ),
    Setting(
        "seed", "sampling", parse=_int_reader("sampling", "seed", unset=True), format=_unset_as("random"),
        reload=False, help="sampling seed; random draws a fresh one for every reply",
        label="seed", row_label="Seed", choices=("random",), flags=("--seed",), metavar="N|random",
    ),
    Setting(
        "max_tokens", "sampling", parse=_int_reader("sampling", "max_tokens", unset=True),
        format=_unset_as("unlimited"), reload=False,
        help="longest reply in tokens; unlimited stops at the model's end or a full context",
        label="max tokens", row_label="Max tokens", aliases=("max", "num_predict"), choices=("unlimited",),
        flags=("--max-tokens",), metavar="N|unlimited",
    ),
    Setting(
        "stop", "sampling", parse=_stop, format=_show_stop, reload=False,
        help=r"strings that end a reply, comma-separated; \, for a comma, \n for a newline",
        label="stop", row_label="Stop", choices=("none",), flags=("--stop",), metavar="A,B,…",
    ),
)
"""One row per field of `LoadSettings` and `SamplingSettings`, in field order."""
# fmt: on


BY_NAME: Mapping[str, Setting] = {setting.name: setting for setting in SETTINGS}
SETTING_NAMES: tuple[str, ...] = tuple(BY_NAME)
"""Every setting, load settings first."""
LOAD_NAMES: frozenset[str] = frozenset(s.name for s in SETTINGS if s.section == "load")
_ALIASES: Mapping[str, str] = {alias: s.name for s in SETTINGS for alias in s.aliases}


QUANT_HELP = (
    "which quantization of the model to load: fewer bits per weight take less memory and run "
    "faster, at some cost in quality"
)
"""The drawer's Quant row: a choice of model file (or tag), not a setting of its own."""


def setting(name: str) -> Setting:
    return BY_NAME[name]


def find_setting(text: str) -> Setting:
    """The setting a user means: its name or an alias (temp, ngl, ctx…), dashes allowed."""
    key = text.strip().lower().replace("-", "_")
    found = BY_NAME.get(_ALIASES.get(key, key))
    if found is None:
        close = [name for name in SETTING_NAMES if key and key in name]
        hint = f" — did you mean {', '.join(close)}?" if close else f" — settings: {', '.join(SETTING_NAMES)}"
        raise SettingsError(f"no setting called {text.strip()!r}{hint}")
    return found


def format_value(name: str, value: Any) -> str:
    return BY_NAME[name].format(value)


def describe_fields(names: tuple[str, ...]) -> str:
    return ", ".join(BY_NAME[name].label if name in BY_NAME else name for name in names)

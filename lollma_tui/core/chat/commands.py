"""Slash commands typed in the chat input: parsing, and completion of names and arguments.

What the model-setting commands do to the settings is in `setting_commands`; this module only
knows their names and the values worth offering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import overload

from lollma_tui.core.settings import (
    KV_CACHE_TYPES,
    REPACK_CHOICES,
    BackendKind,
    LoadSettings,
    SamplingSettings,
)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    usage: str
    help: str


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("clear", "/clear", "start a new conversation"),
    CommandSpec("system", "/system [TEXT]", "set the system prompt (empty: show it)"),
    CommandSpec("regen", "/regen", "regenerate the last reply"),
    CommandSpec("stop", "/stop", "stop the reply being written"),
    CommandSpec("model", "/model [NAME]", "load another model: part of its name, a GGUF path or a tag"),
    CommandSpec("quant", "/quant [QUANT]", "load the current model in another quantization (e.g. Q8_0)"),
    CommandSpec("ngl", "/ngl N|auto|all", "GPU layers to offload (reloads the model)"),
    CommandSpec("ctx", "/ctx N", "context size in tokens, e.g. 8192 or 8k (reloads)"),
    CommandSpec("threads", "/threads N|auto", "CPU threads (reloads)"),
    CommandSpec("batch", "/batch N", "prompt batch size (reloads)"),
    CommandSpec("backend", "/backend llama.cpp|ollama|openai [MODEL]", "switch the inference backend"),
    CommandSpec("set", "/set KEY VALUE", "change any load or sampling setting, e.g. /set temperature 0.7"),
    CommandSpec("settings", "/settings", "show the current settings"),
    CommandSpec("compare", "/compare", "compare speeds of the set-ups used in this conversation"),
    CommandSpec("bench", "/bench", "benchmark quantizations, GPU layers and threads, llama-bench style"),
    CommandSpec("quantize", "/quantize", "make other quantizations of the current GGUF model"),
    CommandSpec("pull", "/pull NAME", "download an Ollama model, with progress"),
    CommandSpec("delete", "/delete NAME", "delete an Ollama model from the server"),
    CommandSpec("history", "/history", "list saved conversations (open, rename, delete)"),
    CommandSpec("search", "/search TEXT", "search every saved conversation"),
    CommandSpec("rename", "/rename TITLE", "rename this conversation"),
    CommandSpec("edit", "/edit", "edit your last message and send it again"),
    CommandSpec("continue", "/continue", "continue a reply that stopped at the token limit"),
    CommandSpec("copy", "/copy [code N]", "copy the last reply, or its Nth code block"),
    CommandSpec("export", "/export md|json [PATH]", "save this conversation as Markdown or JSON"),
    CommandSpec("import", "/import PATH", "open a conversation exported as JSON"),
    CommandSpec("theme", "/theme [NAME]", "switch colour theme (empty: list them)"),
    CommandSpec("help", "/help", "show keys and commands"),
    CommandSpec("quit", "/quit", "leave lollma-tui"),
)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    argument: str


class CommandError(ValueError):
    pass


def is_command(text: str) -> bool:
    # "//text" sends a message that starts with a slash.
    stripped = text.lstrip()
    return stripped.startswith("/") and not stripped.startswith("//")


def parse_command(text: str, known: tuple[CommandSpec, ...] = COMMANDS) -> Command:
    stripped = text.strip()
    if not stripped.startswith("/"):
        raise CommandError("commands start with '/'")
    head, _, argument = stripped[1:].partition(" ")
    name = head.lower()
    names = {spec.name for spec in known}
    if name not in names:
        matches = sorted(n for n in names if n.startswith(name)) if name else []
        if len(matches) == 1:
            name = matches[0]
        else:
            hint = (
                f" — did you mean {', '.join('/' + m for m in matches)}?"
                if matches
                else " — /help lists them"
            )
            raise CommandError(f"unknown command /{head}{hint}")
    return Command(name, argument.strip())


def unescape_message(text: str) -> str:
    stripped = text.lstrip()
    return stripped[1:] if stripped.startswith("//") else text


# --- completion -----------------------------------------------------------------------------

SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(LoadSettings)) + tuple(
    f.name for f in fields(SamplingSettings)
)
"""Every key /set accepts, load settings first."""

_ON_OFF = ("on", "off")
_BOOL_SETTINGS = tuple(f.name for f in fields(LoadSettings) if isinstance(f.default, bool))


def default_setting_values() -> dict[str, tuple[str, ...]]:
    """Words worth offering after ``/set KEY`` (numbers are left to the user)."""
    values: dict[str, tuple[str, ...]] = dict.fromkeys(_BOOL_SETTINGS, _ON_OFF)
    values.update(
        backend=tuple(kind.value for kind in BackendKind),
        n_gpu_layers=("auto", "all", "0"),
        n_threads=("auto",),
        kv_cache_type=KV_CACHE_TYPES,
        repack=REPACK_CHOICES,
        keep_alive=("5m", "30m", "1h", "-1", "0"),
        seed=("random",),
        max_tokens=("none",),
        stop=("none",),
    )
    return values


@dataclass(frozen=True, slots=True)
class CompletionContext:
    """What completion may offer as arguments; the app fills it from what it knows now."""

    models: tuple[str, ...] = ()
    """Names /model accepts: model names, GGUF file names, Ollama tags."""
    quants: tuple[str, ...] = ()
    """The current model's quantizations."""
    themes: tuple[str, ...] = ()
    backends: tuple[str, ...] = tuple(kind.value for kind in BackendKind)
    setting_values: Mapping[str, tuple[str, ...]] = field(default_factory=default_setting_values)


@dataclass(frozen=True, slots=True)
class Completion:
    name: str
    """The word offered: a command name (without the slash) or an argument value."""
    text: str
    """The whole input line once this completion is taken."""
    help: str = ""


_CONTEXT_SIZES = ("2048", "4096", "8192", "16384", "32768", "65536", "131072")
_BATCH_SIZES = ("128", "256", "512", "1024", "2048")


@overload
def complete(prefix: str, known: tuple[CommandSpec, ...] = ...) -> list[CommandSpec]: ...
@overload
def complete(
    prefix: str, known: tuple[CommandSpec, ...] = ..., *, context: CompletionContext
) -> list[Completion]: ...
def complete(
    prefix: str, known: tuple[CommandSpec, ...] = COMMANDS, *, context: CompletionContext | None = None
) -> list[CommandSpec] | list[Completion]:
    """Without `context`: the commands whose name starts with what follows the slash.

    With `context`: `Completion`s, for command names and, after a command and a space, for its
    argument (/quant, /model, /backend, /ngl, /ctx, /threads, /batch, /theme, /set KEY VALUE).
    """
    if context is None:
        if not prefix.startswith("/") or " " in prefix:
            return []
        word = prefix[1:].lower()
        return [spec for spec in known if spec.name.startswith(word)]
    if not prefix.startswith("/"):
        return []
    head, space, rest = prefix[1:].partition(" ")
    if not space:
        word = head.lower()
        return [Completion(s.name, f"/{s.name} ", s.help) for s in known if s.name.startswith(word)]
    try:
        name = parse_command("/" + head, known).name
    except CommandError:
        return []
    return _complete_argument(name, rest.lstrip(), context)


def _complete_argument(name: str, typed: str, context: CompletionContext) -> list[Completion]:
    if name == "set":
        key, space, value = typed.partition(" ")
        if not space:
            return _offer("/set ", key, SETTING_NAMES, suffix=" ")
        values = context.models if key == "model" else context.setting_values.get(key, ())
        return _offer(f"/set {key} ", value.lstrip(), values)
    choices: tuple[str, ...] = {
        "model": context.models,
        "quant": context.quants,
        "backend": context.backends,
        "theme": context.themes,
        "ngl": ("auto", "all", "0"),
        "threads": ("auto",),
        "ctx": _CONTEXT_SIZES,
        "batch": _BATCH_SIZES,
    }.get(name, ())
    return _offer(f"/{name} ", typed, choices, substring=name == "model")


def _offer(
    lead: str, typed: str, choices: tuple[str, ...], *, suffix: str = "", substring: bool = False
) -> list[Completion]:
    """Choices starting with `typed` (any case); for model names also those containing it, after."""
    needle = typed.lower()
    starts = [c for c in choices if c.lower().startswith(needle)]
    inside = [c for c in choices if substring and needle and needle in c.lower() and c not in starts]
    return [Completion(c, lead + c + suffix) for c in dict.fromkeys(starts + inside)]

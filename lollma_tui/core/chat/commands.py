"""The slash commands: one registry from which /help, Tab completion and dispatch derive.

Each `CommandSpec` says what the command is called, how it is used, what it does, how its
argument completes, and which handler runs it: the chat screen calls its method
``command_<handler>``. What the model-setting commands do to the settings is in
`setting_commands`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import overload

from lollma_tui.core.settings import BackendKind, SettingsError
from lollma_tui.core.settings_table import SETTING_NAMES, SETTINGS, find_setting, setting


def default_setting_values() -> dict[str, tuple[str, ...]]:
    """Words worth offering after ``/set KEY`` (numbers are left to the user)."""
    return {s.name: s.choices for s in SETTINGS if s.choices}


@dataclass(frozen=True, slots=True)
class CompletionContext:
    """What completion may offer as arguments; the app fills it from what it knows now."""

    models: tuple[str, ...] = ()
    """Names /model accepts: model names, GGUF file names, Ollama tags."""
    quants: tuple[str, ...] = ()
    """The current model's quantizations."""
    themes: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    """The names /host accepts: the config file's hosts and the defaults."""
    backend_models: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Models per backend, whatever the current one: `/backend KIND NAME` offers them (the GGUF
    files found; a server's models once it was asked)."""
    backends: tuple[str, ...] = tuple(kind.value for kind in BackendKind)
    setting_values: Mapping[str, tuple[str, ...]] = field(default_factory=default_setting_values)


@dataclass(frozen=True, slots=True)
class Completion:
    name: str
    """The word offered: a command name (without the slash) or an argument value."""
    text: str
    """The whole input line once this completion is taken."""
    help: str = ""


Completer = Callable[[str, str, CompletionContext], list[Completion]]
"""(the line up to the argument, the argument typed so far, the context) → completions."""


def _offer(
    lead: str, typed: str, choices: tuple[str, ...], *, suffix: str = "", substring: bool = False
) -> list[Completion]:
    """Choices starting with `typed` (any case); for model names also those containing it, after."""
    needle = typed.lower()
    starts = [c for c in choices if c.lower().startswith(needle)]
    inside = [c for c in choices if substring and needle and needle in c.lower() and c not in starts]
    return [Completion(c, lead + c + suffix) for c in dict.fromkeys(starts + inside)]


def _values(choices: Callable[[CompletionContext], tuple[str, ...]], *, substring: bool = False) -> Completer:
    def complete(lead: str, typed: str, context: CompletionContext) -> list[Completion]:
        return _offer(lead, typed, choices(context), substring=substring)

    return complete


def _complete_backend(lead: str, typed: str, context: CompletionContext) -> list[Completion]:
    kind, space, model = typed.partition(" ")
    if not space:
        return _offer(lead, kind, context.backends)
    models = context.backend_models.get(kind, ())
    return _offer(f"{lead}{kind} ", model.lstrip(), models, substring=True)


def _complete_set(lead: str, typed: str, context: CompletionContext) -> list[Completion]:
    key, space, value = typed.partition(" ")
    if not space:
        return _offer(lead, key, SETTING_NAMES, suffix=" ")
    values = context.models if key == "model" else context.setting_values.get(key, ())
    return _offer(f"{lead}{key} ", value.lstrip(), values)


_CONTEXT_SIZES = ("2048", "4096", "8192", "16384", "32768", "65536", "131072")
_BATCH_SIZES = ("128", "256", "512", "1024", "2048")


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    usage: str
    help: str
    handler: str = ""
    """The chat screen runs ``command_<handler>``; empty means the command's own name."""
    complete: Completer | None = None
    """How the argument completes; None offers nothing."""
    setting: str = ""
    """For a shortcut such as /ctx: the setting it shows or changes."""
    palette_runs: bool = False
    """Picked in the palette it runs at once, its optional argument left out (/help)."""

    @property
    def handler_name(self) -> str:
        return f"command_{self.handler or self.name}"


def _setting_choices(name: str) -> Completer:
    return _values(lambda _: setting(name).choices)


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("clear", "/clear", "start a new conversation"),
    CommandSpec("system", "/system [TEXT|off]", "set the system prompt (empty: show it; off: drop it)"),
    CommandSpec("regen", "/regen", "regenerate the last reply"),
    CommandSpec("stop", "/stop", "stop the reply being written"),
    CommandSpec(
        "model",
        "/model [NAME]",
        "load another model: part of its name, a GGUF path or a tag",
        "setting",
        _values(lambda c: c.models, substring=True),
    ),
    CommandSpec(
        "quant",
        "/quant [QUANT]",
        "load the current model in another quantization (e.g. Q8_0)",
        "setting",
        _values(lambda c: c.quants),
    ),
    CommandSpec(
        "ngl",
        "/ngl N|auto|all",
        "GPU layers to offload (reloads the model)",
        "setting",
        _setting_choices("n_gpu_layers"),
        "n_gpu_layers",
    ),
    CommandSpec(
        "ctx",
        "/ctx N",
        "context size in tokens, e.g. 8192 or 8k (reloads)",
        "setting",
        _values(lambda _: _CONTEXT_SIZES),
        "n_ctx",
    ),
    CommandSpec(
        "threads",
        "/threads N|auto",
        "CPU threads (reloads)",
        "setting",
        _setting_choices("n_threads"),
        "n_threads",
    ),
    CommandSpec(
        "batch",
        "/batch N",
        "prompt batch size (reloads)",
        "setting",
        _values(lambda _: _BATCH_SIZES),
        "n_batch",
    ),
    CommandSpec(
        "backend",
        "/backend llama.cpp|ollama|openai [MODEL]",
        "switch the inference backend (no MODEL: the one last used there, or what it offers)",
        "setting",
        _complete_backend,
    ),
    CommandSpec(
        "host",
        "/host NAME [MODEL]",
        "move the chat to another host (its model, or MODEL); the conversation goes along",
        complete=_values(lambda c: c.hosts),
    ),
    CommandSpec("hosts", "/hosts", "every host: reachable or not, its models, what is loaded, its GPUs"),
    CommandSpec(
        "set",
        "/set KEY VALUE",
        "change any load or sampling setting, e.g. /set temperature 0.7",
        "setting",
        _complete_set,
    ),
    CommandSpec("settings", "/settings", "show the current settings"),
    CommandSpec(
        "compare",
        "/compare [N]",
        "compare speeds of the set-ups used in this conversation, every version of a reply; "
        "N loads set-up N again",
    ),
    CommandSpec("force", "/force", "load the set-up the memory check just refused, anyway"),
    CommandSpec("keep", "/keep", "keep the settings in use as the start-up defaults (config.toml)"),
    CommandSpec("bench", "/bench", "benchmark quantizations, GPU layers and threads, llama-bench style"),
    CommandSpec("quantize", "/quantize", "make other quantizations of the current GGUF model"),
    CommandSpec("pull", "/pull NAME", "download an Ollama model, with progress"),
    CommandSpec("delete", "/delete NAME", "delete an Ollama model from the server (asks first)"),
    CommandSpec("history", "/history", "list saved conversations (open, rename, delete)"),
    CommandSpec("search", "/search TEXT", "search every saved conversation"),
    CommandSpec("rename", "/rename TITLE", "rename this conversation"),
    CommandSpec("edit", "/edit", "edit your last message and send it again"),
    CommandSpec("continue", "/continue", "continue a reply that stopped at the token limit"),
    CommandSpec(
        "version",
        "/version [N|prev|next]",
        "show another version of the last reply (Ctrl+R keeps each); empty: which one this is",
        complete=_values(lambda _: ("prev", "next")),
    ),
    CommandSpec("copy", "/copy [code N]", "copy the last reply, or its Nth code block"),
    CommandSpec("export", "/export md|json [PATH]", "save this conversation as Markdown or JSON"),
    CommandSpec("import", "/import PATH", "open a conversation exported as JSON"),
    CommandSpec(
        "theme",
        "/theme [NAME]",
        "switch colour theme (empty: list them)",
        complete=_values(lambda c: c.themes),
    ),
    CommandSpec("help", "/help [COMMAND]", "show keys and commands", palette_runs=True),
    CommandSpec("quit", "/quit", "leave lollma-tui"),
)

BY_NAME: Mapping[str, CommandSpec] = {spec.name: spec for spec in COMMANDS}
SETTING_COMMANDS: frozenset[str] = frozenset(spec.name for spec in COMMANDS if spec.handler == "setting")
"""Commands `setting_commands.apply_setting_command` handles; /settings and /compare only show things."""


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
    # The name ends at any whitespace: "/system" then Ctrl+J and the text is the same command.
    head, *rest = stripped[1:].split(maxsplit=1) or [""]
    argument = rest[0] if rest else ""
    name = head.lower()
    names = {spec.name for spec in known}
    if name not in names:
        matches = sorted(n for n in names if n.startswith(name)) if name else []
        if len(matches) == 1:
            name = matches[0]
        elif not matches and _is_setting(head):
            value = argument.strip() or "VALUE"
            raise CommandError(
                f"unknown command /{head} — /set {head.replace('-', '_')} {value} changes that setting"
            )
        else:
            hint = (
                f" — did you mean {', '.join('/' + m for m in matches)}?"
                if matches
                else " — /help lists them"
            )
            raise CommandError(f"unknown command /{head}{hint}")
    usage = next(spec.usage for spec in known if spec.name == name)
    if argument.strip() and usage == f"/{name}":
        # "/clear now" cleared, "/edit better words" dropped the words: nothing was said.
        raise CommandError(f"/{name} takes no argument (usage: {usage})")
    return Command(name, argument.strip())


def _is_setting(text: str) -> bool:
    try:
        find_setting(text)
    except SettingsError:
        return False
    return True


def unescape_message(text: str) -> str:
    stripped = text.lstrip()
    return stripped[1:] if stripped.startswith("//") else text


def escape_message(text: str) -> str:
    """`text` as typed to send it as a message: a leading "/" doubled (`unescape_message` undoes it)."""
    return "/" + text.lstrip() if text.lstrip().startswith("/") else text


# --- completion -----------------------------------------------------------------------------


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
    argument (by the command's own `complete`).
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
        spec = BY_NAME[parse_command("/" + head, known).name]
    except CommandError:
        return []
    if spec.complete is None:
        return []
    return spec.complete(f"/{spec.name} ", rest.lstrip(), context)

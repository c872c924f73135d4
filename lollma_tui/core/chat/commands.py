"""Slash commands typed in the chat input: parsing and the list used for completion."""

from __future__ import annotations

from dataclasses import dataclass


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


def complete(prefix: str, known: tuple[CommandSpec, ...] = COMMANDS) -> list[CommandSpec]:
    """Commands whose name starts with what follows the slash in `prefix`."""
    if not prefix.startswith("/") or " " in prefix:
        return []
    word = prefix[1:].lower()
    return [spec for spec in known if spec.name.startswith(word)]

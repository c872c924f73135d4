from __future__ import annotations

import pytest

from lollma_tui.core.chat.commands import CommandError, complete, is_command, parse_command, unescape_message


def test_parse_with_argument() -> None:
    command = parse_command("/system  You are terse.  ")
    assert (command.name, command.argument) == ("system", "You are terse.")


def test_unique_prefix_is_accepted() -> None:
    assert parse_command("/cl").name == "clear"


def test_ambiguous_prefix_lists_candidates() -> None:
    # /s could be /system or /stop
    with pytest.raises(CommandError, match=r"/stop.*/system|/system.*/stop"):
        parse_command("/s")


def test_unknown_command_points_at_help() -> None:
    with pytest.raises(CommandError, match="/help"):
        parse_command("/frobnicate")


def test_double_slash_sends_text() -> None:
    assert not is_command("//not a command")
    assert unescape_message("//etc/hosts is a file") == "/etc/hosts is a file"
    assert is_command("  /clear")


def test_completion() -> None:
    assert [c.name for c in complete("/th")] == ["theme"]
    assert complete("/theme dark") == []
    assert complete("hello") == []

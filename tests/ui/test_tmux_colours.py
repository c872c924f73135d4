"""In a terminal with 16 colours (TERM=xterm, no COLORTERM), what the screen says stays readable:
Textual maps each theme colour to the nearest of the 16, and two near colours become one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tmux_support import Tmux, app_folders, command_line

pytestmark = pytest.mark.slow

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def colours_at(line: str, text: str) -> tuple[int | None, int | None]:
    """The foreground and background (as foreground codes 30-37 / 90-97, None for the
    terminal's default) in force where `text` starts in a captured line (`capture-pane -e`)."""
    fg: int | None = None
    bg: int | None = None
    plain = ""
    position = 0
    for match in SGR.finditer(line):
        plain += line[position : match.start()]
        if text in plain:
            break
        position = match.end()
        for code in (int(c) for c in match.group(1).split(";") if c) if match.group(1) else (0,):
            if code == 0:
                fg = bg = None
            elif code == 39:
                fg = None
            elif code == 49:
                bg = None
            elif 30 <= code <= 37 or 90 <= code <= 97:
                fg = code
            elif 40 <= code <= 47 or 100 <= code <= 107:
                bg = code - 10
    return fg, bg


def test_the_drawer_buttons_and_the_footer_divider_are_not_grey_on_grey(
    tmux: Tmux, tmp_path: Path, session_cache: Path
) -> None:
    folders = app_folders(tmp_path, session_cache)
    line = command_line({**folders, "TERM": "xterm", "COLORTERM": ""}, "--ctx", "2048")
    tmux.run("new-session", "-d", "-s", "chat", "-x", "120", "-y", "35", line)
    tmux.wait_for("chat", lambda s: "loaded in" in s and "ready" in s, timeout=90)
    tmux.run("send-keys", "-t", "chat", "F2")
    tmux.wait_for("chat", lambda s: "no pending changes" in s, timeout=30)

    lines = tmux.run("capture-pane", "-p", "-e", "-t", "chat").splitlines()
    buttons = next(line for line in lines if "Apply" in line and "Reset" in line)
    footer = next(line for line in lines if "palette" in line)
    for name, where, text in (("Apply", buttons, " Apply "), ("divider", footer, "▏")):
        fg, bg = colours_at(where, text)
        # The disabled Apply was bright black on bright black, and so was the footer's divider.
        assert fg is None or fg != bg, f"{name}: colour {fg} on {bg}: {where!r}"

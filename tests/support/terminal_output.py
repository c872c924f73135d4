"""What an app draws on the terminal, and what in it Textual did not put there itself.

Pilot runs headless, so nothing is written anywhere; these helpers render the current screen as
the driver repaints it in full (the same compositor update `export_screenshot` uses), toasts and
the screens under a dialog included. Textual's own sequences are colours (SGR), cursor moves
and hyperlinks (OSC 8); any other control character in the output came from the text on screen.
"""

from __future__ import annotations

import re
from typing import Any

from textual._compositor import LayoutUpdate
from textual.app import App

_SGR_OR_CURSOR = re.compile(r"\x1b\[[0-9;]*[mH]")
_HYPERLINK = re.compile(r"\x1b\]8;[^;\x07\x1b]*;([^\x07\x1b]*)\x1b\\")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _full_update(app: App[Any]) -> LayoutUpdate:
    # The compositor is private, but no public API renders a screen to what the terminal gets.
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    assert isinstance(update, LayoutUpdate)
    return update


def screen_output(app: App[Any]) -> str:
    """The characters a terminal would receive to draw the app's current screen."""
    return _full_update(app).render_segments(app.console)


def screen_text(app: App[Any]) -> str:
    """The current screen as plain text, one line per row (what a person reads on it)."""
    return "\n".join(
        "".join(segment.text for strip in line for segment in strip) for line in _full_update(app).strips
    )


def hyperlinks(output: str) -> list[str]:
    """The targets of the OSC 8 hyperlinks in `output` (a terminal opens them on click)."""
    return [target for target in _HYPERLINK.findall(output) if target]


def foreign_controls(output: str) -> list[str]:
    """Control characters in `output` other than Textual's colour, cursor and hyperlink
    sequences and the newlines between rows: each one reached the terminal from shown text."""
    stripped = _HYPERLINK.sub("", _SGR_OR_CURSOR.sub("", output))
    return _CONTROL.findall(stripped)


def click_targets(app: App[Any]) -> dict[str, tuple[int, int]]:
    """Each action that clicking on the current screen would run (``@click`` links, such as a
    Markdown link's ``link('…')``), and the screen offset of its first cell."""
    targets: dict[str, tuple[int, int]] = {}
    for y, line in enumerate(_full_update(app).strips):
        x = 0
        for segment in (segment for strip in line for segment in strip):
            action = segment.style.meta.get("@click") if segment.style is not None else None
            if action is not None:
                targets.setdefault(str(action), (x, y))
            x += segment.cell_length
    return targets


def click_actions(app: App[Any]) -> list[str]:
    """The actions clickable on the current screen: markup such as ``[@click=app.quit]`` in a
    shown name would add one."""
    return list(click_targets(app))

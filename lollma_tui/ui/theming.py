"""Theme plumbing every lollma-tui app shares: our colour slots and the theme files.

An app overrides ``get_css_variables`` with `with_app_variables` and calls `register_themes`
and `choose_theme` in ``on_mount``.
"""

from __future__ import annotations

from typing import Any

from textual.app import App

from lollma_tui.core.theme_files import APP_VARIABLES
from lollma_tui.ui.themes import DEFAULT_THEME, load_themes

FALLBACK_THEME = "textual-dark"


def with_app_variables(variables: dict[str, str]) -> dict[str, str]:
    """Fill in our own slots ($metric-hot, …) that a theme leaves out (Textual's built-ins
    know nothing of them) from the palette colour each one falls back to."""
    for name, fallback in APP_VARIABLES.items():
        if name not in variables:
            variables[name] = variables[fallback.removeprefix("$")]
    return variables


def register_themes(app: App[Any]) -> list[str]:
    """Register the shipped and user themes; returns one line per theme file that failed."""
    themes, failures = load_themes()
    for theme in themes:
        app.register_theme(theme)
    return [f"{failure.path.name}: {failure.reason}" for failure in failures]


def choose_theme(app: App[Any], name: str) -> str | None:
    """Switch to theme `name`; when there is none by that name, keep or fall back to our
    default and return a warning to show."""
    if name in app.available_themes:
        app.theme = name
        return None
    if app.theme not in app.available_themes or app.theme.startswith("textual-"):
        app.theme = DEFAULT_THEME if DEFAULT_THEME in app.available_themes else FALLBACK_THEME
    return unknown_theme(app, name)


def unknown_theme(app: App[Any], name: str) -> str:
    """What to say of a theme name that is none: the themes there are."""
    return f"Unknown theme {name!r}; themes: {', '.join(sorted(app.available_themes))}"

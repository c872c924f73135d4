"""Turn theme files into Textual themes."""

from __future__ import annotations

from textual.color import Color, ColorParseError
from textual.theme import Theme

from lollma_tui.core.theme_files import (
    APP_VARIABLES,
    COLOR_KEYS,
    ThemeLoadFailure,
    ThemeSpec,
    load_theme_files,
    shipped_theme_dir,
    user_theme_dir,
)

DEFAULT_THEME = "lollma-dark"


def to_textual_theme(spec: ThemeSpec) -> Theme:
    colors = spec.colors
    return Theme(
        name=spec.name,
        primary=colors["primary"],
        secondary=colors.get("secondary"),
        accent=colors.get("accent"),
        foreground=colors.get("foreground"),
        background=colors.get("background"),
        surface=colors.get("surface"),
        panel=colors.get("panel"),
        success=colors.get("success"),
        warning=colors.get("warning"),
        error=colors.get("error"),
        boost=colors.get("boost"),
        dark=spec.dark,
        variables=dict(spec.variables),
    )


def load_themes() -> tuple[list[Theme], list[ThemeLoadFailure]]:
    specs, failures = load_theme_files([shipped_theme_dir(), user_theme_dir()])
    themes: list[Theme] = []
    for spec in specs:
        theme = to_textual_theme(spec)
        problem = undrawable(theme)
        if problem is None:
            themes.append(theme)
        elif spec.source is not None:
            failures.append(ThemeLoadFailure(spec.source, problem))
    return themes, failures


def undrawable(theme: Theme) -> str | None:
    """Why Textual could not draw `theme`, if it could not: a value that is neither a colour it
    reads nor a ``$name`` it defines. Registered, such a theme ended the app at start on an
    "Error in stylesheet"."""
    for key in COLOR_KEYS:
        value = getattr(theme, key)
        if value is not None and not _is_colour(value):
            return f"'{key}' is not a colour: {value!r}"
    names = {*theme.to_color_system().generate(), *APP_VARIABLES, *theme.variables}
    for key, value in theme.variables.items():
        text = value.strip()
        known = text[1:] in names if text.startswith("$") else _is_colour(text)
        if not known:
            return f"'{key}' is not a colour or a known $name: {value!r}"
    return None


def _is_colour(value: str) -> bool:
    try:
        Color.parse(value)
    except ColorParseError:
        return False
    return True

"""Turn theme files into Textual themes."""

from __future__ import annotations

from dataclasses import replace

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
    themes: dict[str, Theme] = {}
    for spec in specs:
        drawable = drawable_theme(to_textual_theme(spec))
        if isinstance(drawable, Theme):
            themes[spec.name] = drawable
        elif spec.source is not None:
            failures.append(ThemeLoadFailure(spec.source, drawable))
    return list(themes.values()), failures


def drawable_theme(theme: Theme) -> Theme | str:
    """`theme` as Textual can draw it, or why it cannot: a value that is neither a colour it
    reads nor a ``$name`` that leads to one. Registered, such a theme ended the app at start on
    an "Error in stylesheet"; so did any ``$name`` in ``[variables]``, which Textual's stylesheet
    does not look up, so each is replaced here by the colour it names."""
    for key in COLOR_KEYS:
        value = getattr(theme, key)
        if value is not None and not _is_colour(value):
            return f"'{key}' is not a colour: {value!r}"
    # What the stylesheet gets: `App.get_css_variables`, then our slots' fallbacks.
    defined = {**theme.to_color_system().generate(), **theme.variables}
    defined |= {
        name: defined[fallback[1:]] for name, fallback in APP_VARIABLES.items() if name not in defined
    }
    flat: dict[str, str] = {}
    for key, value in theme.variables.items():
        text, seen = value.strip(), {key}
        while text.startswith("$") and text[1:] in defined and text[1:] not in seen:
            seen.add(text[1:])
            text = defined[text[1:]].strip()
        if not _is_colour(text):
            return f"'{key}' is not a colour or a $name that leads to one: {value!r}"
        flat[key] = text
    return replace(theme, variables=flat)


def _is_colour(value: str) -> bool:
    try:
        Color.parse(value)
    except ColorParseError:
        return False
    return True

"""Turn theme files into Textual themes."""

from __future__ import annotations

from textual.theme import Theme

from lollma_tui.core.theme_files import (
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
    return [to_textual_theme(spec) for spec in specs], failures

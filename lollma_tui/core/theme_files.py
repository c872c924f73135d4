"""Theme files: TOML documents in `themes/` (shipped) and the user's config folder.

Only parsing and validation live here; turning a spec into a Textual theme is the UI's job.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from lollma_tui.core import paths

COLOR_KEYS = (
    "primary", "secondary", "accent", "foreground", "background", "surface", "panel",
    "success", "warning", "error", "boost",
)  # fmt: skip

APP_VARIABLES: dict[str, str] = {
    "user-label": "$primary",
    "reply-label": "$success",
    "reply-stats": "$foreground-muted",
    "notice": "$warning",
    "metric-ok": "$success",
    "metric-warm": "$warning",
    "metric-hot": "$error",
}
"""lollma-tui's own colour slots and what they fall back to under themes that do not set them."""

_COLOR = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-z]+|rgba?\([\d\s.,%]+\)|hsla?\([\d\s.,%]+\))$")


@dataclass(frozen=True, slots=True)
class ThemeSpec:
    name: str
    dark: bool
    colors: dict[str, str]
    variables: dict[str, str] = field(default_factory=dict)
    source: Path | None = None


@dataclass(frozen=True, slots=True)
class ThemeLoadFailure:
    path: Path
    reason: str


def shipped_theme_dir() -> Path:
    """`themes/` of a checkout, or its copy inside an installed wheel."""
    package = Path(__file__).resolve().parents[1]
    bundled = package / "_themes"
    return bundled if bundled.is_dir() else package.parent / "themes"


def user_theme_dir() -> Path:
    return paths.config_dir() / "themes"


def parse_theme(path: Path) -> ThemeSpec:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a BOM, as config.toml
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"not valid TOML: {error}") from error
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("missing 'name'")
    if not isinstance(document.get("primary"), str):
        raise ValueError("missing 'primary' colour")
    dark = document.get("dark", True)
    if not isinstance(dark, bool):
        raise ValueError("'dark' must be true or false")
    colors: dict[str, str] = {}
    for key in COLOR_KEYS:
        value = document.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not _COLOR.match(value.strip()):
            raise ValueError(f"'{key}' is not a colour: {value!r}")
        colors[key] = value.strip()
    variables = document.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ValueError("[variables] must map names to colour strings")
    return ThemeSpec(name.strip(), dark, colors, {str(k): v for k, v in variables.items()}, path)


def load_theme_files(folders: list[Path]) -> tuple[list[ThemeSpec], list[ThemeLoadFailure]]:
    """Every `*.toml` theme in `folders`, in order: of two with one name the later overrides the
    earlier, if it can be drawn (a user's copy of a shipped theme that cannot keeps the shipped)."""
    themes: list[ThemeSpec] = []
    failures: list[ThemeLoadFailure] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                spec = parse_theme(path)
            except ValueError as error:
                failures.append(ThemeLoadFailure(path, str(error)))
                continue
            themes.append(spec)
    return themes, failures

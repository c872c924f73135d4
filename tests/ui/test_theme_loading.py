"""Theme files from the user's folder: a bad one is reported and left out, the app starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from lollma_tui.core.theme_files import user_theme_dir
from lollma_tui.ui.themes import load_themes


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('[variables]\nmetric-hot = "nonsense(1)"\n', "'metric-hot' is not a colour"),
        ('[variables]\nnotice = "$no such"\n', "'notice' is not a colour"),
        ('accent = "blurple"\n', "'accent' is not a colour"),
    ],
)
def test_a_theme_textual_cannot_draw_is_reported_not_registered(line: str, words: str) -> None:
    # It passed the file check, and the app ended at start on "Error in stylesheet" (exit 0).
    folder = user_theme_dir()
    folder.mkdir(parents=True)
    (folder / "odd.toml").write_text(f'name = "odd"\nprimary = "#336699"\n{line}', encoding="utf-8")
    themes, failures = load_themes()
    assert "odd" not in {theme.name for theme in themes}
    assert [(f.path.name, words in f.reason) for f in failures] == [("odd.toml", True)], failures
    assert "lollma-dark" in {theme.name for theme in themes}


def test_a_theme_with_good_references_and_colours_loads(tmp_path: Path) -> None:
    folder = user_theme_dir()
    folder.mkdir(parents=True)
    (folder / "fine.toml").write_text(
        'name = "fine"\nprimary = "#336699"\naccent = "darkorange"\n[variables]\nnotice = "$accent"\n'
        'metric-hot = "rgb(200, 40, 40)"\n',
        encoding="utf-8",
    )
    themes, failures = load_themes()
    assert failures == [] and "fine" in {theme.name for theme in themes}

from __future__ import annotations

from pathlib import Path

from lollma_tui.core.theme_files import APP_VARIABLES, load_theme_files, shipped_theme_dir


def test_shipped_themes_parse_and_define_every_app_variable() -> None:
    themes, failures = load_theme_files([shipped_theme_dir()])
    assert failures == []
    names = {t.name for t in themes}
    assert {"lollma-dark", "lollma-light"} <= names
    assert any(not t.dark for t in themes)
    for theme in themes:
        assert set(APP_VARIABLES) <= set(theme.variables), theme.name


def test_user_theme_overrides_and_bad_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('name = "lollma-dark"\nprimary = "#112233"\n')
    (tmp_path / "broken.toml").write_text("name = \n")
    (tmp_path / "badcolor.toml").write_text('name = "x"\nprimary = "#112233"\nerror = "not a colour!"\n')
    themes, failures = load_theme_files([shipped_theme_dir(), tmp_path])
    # Both, in order: the later one of a name overrides the earlier where it can be drawn.
    assert [t.colors["primary"] for t in themes if t.name == "lollma-dark"][-1] == "#112233"
    reasons = {f.path.name: f.reason for f in failures}
    assert "TOML" in reasons["broken.toml"]
    assert "error" in reasons["badcolor.toml"]

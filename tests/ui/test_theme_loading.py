"""Theme files from the user's folder: a bad one is reported and left out, the app starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_support import ThemedApp
from textual.color import Color

from lollma_tui.core.theme_files import user_theme_dir
from lollma_tui.ui.monitor_app import MonitorApp
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


async def test_a_theme_with_references_and_colours_loads_and_draws() -> None:
    folder = user_theme_dir()
    folder.mkdir(parents=True)
    (folder / "fine.toml").write_text(
        'name = "fine"\nprimary = "#336699"\naccent = "darkorange"\n[variables]\nnotice = "$accent"\n'
        'metric-hot = "rgb(200, 40, 40)"\nmetric-warm = "$notice"\nuser-label = "$metric-ok"\n',
        encoding="utf-8",
    )
    themes, failures = load_themes()
    assert failures == [] and "fine" in {theme.name for theme in themes}
    # Textual's stylesheet does not look a $name up in a variable's value: before, any of these
    # ended the app at start on "Invalid value ('$accent') for the color property".
    app = MonitorApp(interval_s=0.25, theme="fine", find_llm_processes=False)
    async with app.run_test(size=(90, 30)) as pilot:
        await pilot.pause()
        variables = app.get_css_variables()
        accent = Color.parse(variables["accent"])
        assert [Color.parse(variables[name]) for name in ("notice", "metric-warm")] == [accent, accent]
        assert Color.parse(variables["user-label"]) == Color.parse(variables["success"])
    assert app.return_code in (None, 0)


def test_a_chain_of_names_that_never_reaches_a_colour_is_reported(tmp_path: Path) -> None:
    folder = user_theme_dir()
    folder.mkdir(parents=True)
    (folder / "loop.toml").write_text(
        'name = "loop"\nprimary = "#336699"\n[variables]\n'
        'metric-ok = "$metric-warm"\nmetric-warm = "$metric-ok"\n',
        encoding="utf-8",
    )
    themes, failures = load_themes()
    assert "loop" not in {theme.name for theme in themes}
    assert [f.path.name for f in failures] == ["loop.toml"] and "metric-ok" in failures[0].reason


def test_a_broken_copy_of_a_shipped_theme_keeps_the_shipped_one() -> None:
    # Copied from themes/ as the README says, renamed in the file name only, one colour wrong.
    folder = user_theme_dir()
    folder.mkdir(parents=True)
    (folder / "my-dark.toml").write_bytes(
        '\ufeffname = "lollma-dark"\nprimary = "#336699"\nsecondary = "amberish"\n'.encode()
    )
    themes, failures = load_themes()
    dark = [theme for theme in themes if theme.name == "lollma-dark"]
    assert len(dark) == 1 and dark[0].primary != "#336699"
    assert [(f.path.name, "'secondary' is not a colour" in f.reason) for f in failures] == [
        ("my-dark.toml", True)
    ]


async def test_saved_turns_draw_in_every_theme_the_app_offers() -> None:
    # A resumed chat under /theme nord froze the app, and that theme was kept for every next
    # start: a muted colour has an alpha (#D8DEE999), which Rich's colour parser refuses.
    from textual.app import ComposeResult
    from textual.containers import VerticalScroll

    from lollma_tui.core.chat.conversation import Message, ReplyState
    from lollma_tui.ui.widgets.chat_log import HistoryTurn

    class SavedChat(ThemedApp):
        def compose(self) -> ComposeResult:
            with VerticalScroll():
                yield HistoryTurn(Message("user", "hello"), "you")
                yield HistoryTurn(Message("assistant", "**hi** there"), "tiny Q8_0")
                yield HistoryTurn(Message("assistant", "", state=ReplyState.ERROR, error="gone"), "tiny")

    app = SavedChat()
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        themes = sorted(app.available_themes)
        assert len(themes) > 20 and {"nord", "ansi-dark", "lollma-dark"} <= set(themes)
        for theme in themes:
            app.theme = theme
            await pilot.pause()
            for turn in app.query(HistoryTurn):
                turn.render()  # the colours are parsed as it draws
        await pilot.pause()
    assert app.return_code in (None, 0)

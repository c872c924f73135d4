"""Panel text asks for a layout pass only when its size can change: a layout redoes the whole
screen, and the panel changes every second."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pilot_support import ThemedApp
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.visual import VisualType
from textual.widgets import Static

import lollma_tui.ui
from lollma_tui.core.hardware import Level
from lollma_tui.ui.widgets.hardware_rows import LEVEL_CLASSES, MetricRow, MetricValue, set_level, set_text


class Spy(Static):
    """A Static that notes whether each update asked for a layout."""

    def __init__(self, text: str, *, id: str) -> None:
        super().__init__(text, markup=False, id=id)
        self.layouts: list[bool] = []

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        self.layouts.append(layout)
        super().update(content, layout=layout)


class Host(ThemedApp):
    CSS_PATH: ClassVar[list[str | Path]] = [Path(lollma_tui.ui.__file__).parent / "hardware_panel.tcss"]
    CSS: ClassVar[str] = """
    #column { width: 20; height: auto; }
    #auto { width: auto; }
    #hidden { display: none; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Spy("12%", id="column")
            yield Spy("12%", id="auto")
            yield Spy("12%", id="hidden")
            yield MetricRow("CPU", id="cpu")


async def test_text_of_the_same_size_is_repainted_without_a_layout() -> None:
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        column = app.query_one("#column", Spy)
        set_text(column, "9%")  # shorter, in a column of its own width: same size
        set_text(column, "RSS 412 MiB\n  CPU 3%")  # a line more: taller
        set_text(column, "RSS 413 MiB\n  CPU 12%")  # same lines, all fit: same size
        set_text(column, "a line far too long for twenty columns\n  CPU 12%")  # it wraps
        set_text(column, "a line far too long for twenty columns\n  CPU 12%")  # no change at all
        set_text(column, "a line far too long for twenty column\n  CPU 13%")  # wraps the same way
        assert column.layouts == [False, True, False, True, False]
        await pilot.pause()


async def test_text_whose_width_follows_it_lays_out_when_its_longest_line_changes() -> None:
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        auto = app.query_one("#auto", Spy)
        set_text(auto, "13%")
        set_text(auto, "9%")
        assert auto.layouts == [False, True]
        await pilot.pause()


async def test_hidden_text_never_lays_out() -> None:
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        hidden = app.query_one("#hidden", Spy)
        set_text(hidden, "▁▂▃▄▅▆▇█ a longer strip than before")
        assert hidden.layouts == [False]
        await pilot.pause()


async def test_a_figure_keeps_the_width_of_the_widest_one_shown() -> None:
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        row = app.query_one("#cpu", MetricRow)
        row.show("12%")
        await pilot.pause()
        width = row.value.size.width
        row.show("9%")
        await pilot.pause()
        assert row.value.text == "9%"
        assert str(row.value.content) == " 9%"
        assert row.value.size.width == width  # the strip beside it did not move
        row.show("100%")
        await pilot.pause()
        assert row.value.size.width == width + 1
        row.show("7%")
        assert str(row.value.content) == "  7%"


def test_metric_value_text_starts_as_given() -> None:
    assert MetricValue("—").text == "—"


async def test_a_level_change_restyles_the_row_once_and_the_same_level_never() -> None:
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        row = app.query_one("#cpu", MetricRow)
        restyled: list[str] = []
        original = row.update_node_styles

        def counted(animate: bool = True) -> None:
            restyled.append(" ".join(sorted(name for name in row.classes if name in LEVEL_CLASSES)))
            original(animate)

        row.update_node_styles = counted  # type: ignore[method-assign]
        set_level(row, Level.OK)
        set_level(row, Level.OK)  # the same level, second after second
        set_level(row, Level.HOT)
        set_level(row, None)
        set_level(row, None)
        # One restyle per change, each seeing the row's final classes (never two at once).
        assert restyled == ["-ok", "-hot", ""]
        await pilot.pause()
        assert not row.has_class("-ok") and not row.has_class("-hot")

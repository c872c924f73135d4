"""Building blocks of the hardware panel: a coloured value, a history strip, a labelled row.

They only redraw when what they show has changed, so a tick that moves no rounded figure
costs no layout work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from rich.cells import cell_len
from textual.app import ComposeResult, RenderResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.visual import visualize
from textual.widget import Widget
from textual.widgets import Static

from lollma_tui.core.hardware import Level
from lollma_tui.ui.widgets import hardware_format as fmt

if TYPE_CHECKING:
    from textual.css.styles import RulesMap

LEVEL_CLASSES = tuple(f"-{level.value}" for level in Level)


def set_level(widget: Widget, level: Level | None) -> None:
    """Give `widget` exactly one of -ok/-warm/-hot (none for None); the .tcss maps them to colours.

    Restyling a node costs more than drawing it (a figure crossing a threshold every second
    was a third of the panel's CPU), so a change of level restyles once, and no change never.
    """
    wanted = f"-{level.value}" if level is not None else None
    # One batch: Textual restyles once, and only when the classes change.
    widget.update_classes({name: name == wanted for name in LEVEL_CLASSES})


def set_text(static: Static, text: str) -> None:
    """Update `static` only when the text differs, and lay the screen out again only when its
    size may change: a layout pass redoes the whole screen, chat included (~10 ms here)."""
    old = static.content
    if old == text:
        return
    static.update(text, layout=_size_may_change(static, old, text))


def _size_may_change(static: Static, old: object, new: str) -> bool:
    if any(node.styles.display == "none" for node in static.ancestors_with_self):
        # Hidden (a wide-only row in the sidebar, say): showing it lays it out anyway.
        return False
    if not isinstance(old, str):
        return True
    width_rule, height_rule = static.styles.width, static.styles.height
    auto_width = width_rule is not None and width_rule.is_auto
    if auto_width and _longest(old) != _longest(new):
        return True  # an auto width follows the longest line
    if not auto_width and height_rule is not None and not height_rule.is_auto:
        return False  # a size set by the stylesheet: the text cannot change it
    width = static.content_size.width
    # The height at the width it has (a figure's line that wraps the same way every second).
    return not width or _height(static, old, width) != _height(static, new, width)


def _longest(text: str) -> int:
    return max(cell_len(line) for line in text.split("\n"))


def _height(static: Static, text: str, width: int) -> int:
    # The styles object, as Textual itself passes it (its annotation asks for the rules map).
    rules = cast("RulesMap", static.styles)
    return visualize(static, text, markup=False).get_height(rules, width)


class MetricValue(Static):
    """One figure, coloured by its level. Where its width follows its text, the figure is
    right-aligned to the widest one shown so far: "9%" after "12%" keeps the row's layout
    (and the strip beside it) where it was, so a new sample costs a repaint, not a layout."""

    def __init__(
        self,
        text: str = fmt.MISSING,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(text, markup=False, name=name, id=id, classes=classes)
        self._text = text
        self._widest = 0

    @property
    def text(self) -> str:
        """The figure as last shown, without alignment."""
        return self._text

    def show(self, text: str, level: Level | None = None) -> None:
        self._text = text
        width_rule = self.styles.width
        if width_rule is not None and width_rule.is_auto:
            self._widest = max(self._widest, cell_len(text))
            text = " " * (self._widest - cell_len(text)) + text
        set_text(self, text)
        set_level(self, level)


class SparkStrip(Widget):
    """A one-line history chart, as wide as the layout makes it (see `hardware_format.spark`)."""

    values: reactive[tuple[float | None, ...]] = reactive(())
    """Samples, oldest first."""
    scale: reactive[float | None] = reactive(None)
    """Full scale of the bars; None scales to the largest value shown."""
    window: reactive[int] = reactive(0)
    """How many samples the full width stands for (the history length), so cells keep their span."""

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)

    def show(self, values: Sequence[float | None], scale: float | None, window: int) -> None:
        self.values = tuple(values)
        self.scale = scale
        self.window = window

    @property
    def text(self) -> str:
        return fmt.spark(self.values, self.size.width, self.scale, self.window)

    def render(self) -> RenderResult:
        return self.text


class MetricRow(Horizontal):
    """ "label  value  ▂▃▅▇" on one line; the strip takes whatever width is left."""

    def __init__(
        self,
        label: str,
        *,
        strip: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._label = label
        self._has_strip = strip
        self.level: Level | None = None
        """The level shown by the latest `show`, for the block around the row to colour by."""

    def compose(self) -> ComposeResult:
        yield Static(self._label, classes="metric-label", markup=False)
        yield MetricValue(classes="metric-value")
        if self._has_strip:
            yield SparkStrip(classes="metric-spark")

    @property
    def value(self) -> MetricValue:
        return self.query_one(MetricValue)

    def show(
        self,
        text: str,
        level: Level | None = None,
        history: Sequence[float | None] = (),
        *,
        scale: float | None = None,
        window: int = 0,
    ) -> None:
        self.level = level
        set_level(self, level)
        self.value.show(text, level)
        if self._has_strip:
            self.query_one(SparkStrip).show(history, scale, window)

"""A checkbox and a list of choices whose mark says whether it is ticked.

Textual draws "X" in both states and tells them apart by colour alone: under NO_COLOR, in a
copy of the screen or to a screen reader, every box read as ticked (and an unticked one could
be drawn black on black). Here an unticked box is empty.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList
from textual.widgets.option_list import OptionDoesNotExist

T = TypeVar("T")

TICKED = Checkbox.BUTTON_INNER
UNTICKED = " "


class TickBox(Checkbox):
    def on_mount(self) -> None:
        self._mark()  # nothing is drawn before it is mounted

    def watch_value(self) -> None:
        self._mark()
        super().watch_value()

    def _mark(self) -> None:
        self.BUTTON_INNER = TICKED if self.value else UNTICKED


class TickList(SelectionList[T], Generic[T]):
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        # The mark is the second segment of a line that starts an option (`SelectionList`).
        if len(segments) < 2 or segments[1].text != TICKED:
            return strip
        try:
            option = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        if option.value in self.selected:
            return strip
        segments[1] = Segment(UNTICKED, segments[1].style)
        return Strip(segments, strip.cell_length)

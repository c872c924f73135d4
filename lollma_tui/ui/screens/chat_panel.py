"""The chat screen's side panel: shown or folded away, by the user, by the terminal's width, and
while the settings drawer is open.

A plain object the chat screen owns. Three things fold the panel: Ctrl+B (the user's word lasts
until the next Ctrl+B), a terminal narrower than `NARROW_COLUMNS` (undone when it widens, unless
the user had it hidden), and the drawer (the panel comes back as it was when the drawer closes).
While the panel is folded the hardware is sampled slowly: nobody is looking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lollma_tui.ui.screens.chat import ChatScreen

HIDDEN_PANEL_INTERVAL_S = 5.0
"""Sample slowly while the side panel is folded away."""
NARROW_COLUMNS = 72
"""Narrower than this the panel (30 columns) folds away by itself, so the chat keeps room to
read; Ctrl+B still shows it."""


class SidePanel:
    def __init__(self, screen: ChatScreen) -> None:
        self._screen = screen
        self._narrow = False
        self._folded_for_width = False
        self._hidden_before_drawer = False

    @property
    def hidden(self) -> bool:
        return self._screen.sidebar.has_class("-hidden")

    def toggle(self) -> None:
        """Ctrl+B: the user's word, at any width."""
        self._folded_for_width = False
        self._show(self.hidden)

    def width_changed(self, width: int) -> None:
        narrow = width < NARROW_COLUMNS
        if narrow != self._narrow:
            self._narrow = narrow
            self._fit()

    def drawer_opened(self) -> None:
        # At 80 columns the drawer and the panel together would squeeze the chat away.
        self._hidden_before_drawer = self.hidden
        self._screen.sidebar.add_class("-hidden")

    def drawer_closed(self) -> None:
        if not self._hidden_before_drawer:
            self._screen.sidebar.remove_class("-hidden")
        self._fit()

    def _fit(self) -> None:
        """Fold on a narrow screen; on a wide one bring back what the width folded."""
        if self._narrow and not self.hidden:
            self._folded_for_width = True
            self._show(False)
        elif not self._narrow and self._folded_for_width and not self._screen.drawer.is_open:
            self._folded_for_width = False
            self._show(True)

    def sampling_interval(self) -> float:
        """How often to sample the hardware now (a panel folded at start-up starts slow)."""
        return HIDDEN_PANEL_INTERVAL_S if self.hidden else self._screen.options.hardware_interval_s

    def _show(self, shown: bool) -> None:
        screen = self._screen
        screen.sidebar.set_class(not shown, "-hidden")
        if screen.hardware is not None:
            screen.hardware.set_interval(self.sampling_interval())

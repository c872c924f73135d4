"""The chat screen's side panel: shown or folded away, by the user, by the terminal's width, and
while the settings drawer is open.

A plain object the chat screen owns. Three things fold the panel: Ctrl+B (the user's word lasts
until the next Ctrl+B), a terminal narrower than `NARROW_COLUMNS` (undone when it widens, unless
the user had it hidden), and the drawer (the panel comes back as it was when the drawer closes).
While the panel is folded the hardware is sampled slowly: nobody is looking.

It also shows what the panel is told: each hardware sample, and the live tokens/s while a reply
streams. A sample that comes while the reply writes waits for the reply's next text, so the two
reach the screen in one update.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from textual.css.query import NoMatches

from lollma_tui.ui.paced_stream import SLOWEST_S

if TYPE_CHECKING:
    from lollma_tui.ui.messages import HardwareSampled
    from lollma_tui.ui.screens.chat import ChatScreen

HIDDEN_PANEL_INTERVAL_S = 5.0
"""Sample slowly while the side panel is folded away."""
NARROW_COLUMNS = 72
"""Narrower than this the panel (30 columns) folds away by itself, so the chat keeps room to
read; Ctrl+B still shows it."""
HOLD_SAMPLE_S = SLOWEST_S + 0.1
"""The longest a hardware sample waits for a streaming reply's next text (which comes at least
every `SLOWEST_S` while the model writes) before it is shown on its own."""


class SidePanel:
    def __init__(self, screen: ChatScreen) -> None:
        self._screen = screen
        self._narrow = False
        self._folded_for_width = False
        self._hidden_before_drawer = False
        self._shown_by_user = False
        """Ctrl+B showed it on a narrow screen: closing the drawer does not fold it again."""
        self._held_sample: HardwareSampled | None = None
        """A hardware sample that waits for the streaming reply's next text (`show_live`)."""

    @property
    def hidden(self) -> bool:
        return self._screen.sidebar.has_class("-hidden")

    def toggle(self) -> None:
        """Ctrl+B: the user's word, at any width."""
        self._folded_for_width = False
        self._shown_by_user = self.hidden and self._narrow
        self._show(self.hidden)

    def width_changed(self, width: int) -> None:
        narrow = width < NARROW_COLUMNS
        if narrow != self._narrow:
            self._narrow = narrow
            self._shown_by_user = False
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
        if self._narrow and not self.hidden and not self._shown_by_user:
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
        focused = screen.focused
        if not shown and focused is not None and screen.sidebar in focused.ancestors_with_self:
            screen.prompt.focus()  # a hidden widget keeps the focus, and typing goes nowhere
        screen.sidebar.set_class(not shown, "-hidden")
        if screen.hardware is not None:
            screen.hardware.set_interval(self.sampling_interval())

    # -- what it shows ------------------------------------------------------------------------

    def sampled(self, message: HardwareSampled) -> None:
        screen = self._screen
        if screen.replies.writing:
            # Shown with the reply's next text (within a quarter of a second): one screen update
            # for both rather than one each. A stalled model must not freeze the panel, though:
            # the sample is shown on its own a little later if no text came.
            self._held_sample = message
            screen.set_timer(HOLD_SAMPLE_S, self._show_held_sample, name="held-hardware-sample")
            return
        self._show_sample(message)

    def watching(self, host: str | None) -> None:
        """The panel follows another machine (None: this one, else its name, shown as given):
        the last one's figures go."""
        from lollma_tui.ui.widgets.hardware_panel import WAITING

        self._held_sample = None
        with contextlib.suppress(NoMatches):
            panel = self._screen.hardware_panel
            panel.waiting_text = WAITING if host is None else f"waiting for the first sample of {host}…"
            panel.name_machine(host)
            panel.snapshot = None
            panel.model_footprint = None
            panel.stale = False

    def no_sample_because(self, reason: str) -> None:
        """Why no sample comes; shown while the panel has none to show."""
        with contextlib.suppress(NoMatches):
            panel = self._screen.hardware_panel
            if panel.snapshot is None:
                panel.waiting_text = reason

    def show_live(self, tokens_per_s: float | None, *, ended: bool = False) -> None:
        """What changes beside a streaming reply's text, shown as its text changes, in the same
        screen update: a new live tokens/s figure (None: none new), and the hardware sample held
        back meanwhile. `ended`: the reply is over and the live figure goes."""
        self._show_held_sample()
        if tokens_per_s is not None or ended:
            with contextlib.suppress(NoMatches):
                self._screen.hardware_panel.live_rate = tokens_per_s

    def _show_held_sample(self) -> None:
        held, self._held_sample = self._held_sample, None
        if held is not None:
            self._show_sample(held)

    def _show_sample(self, message: HardwareSampled) -> None:
        from lollma_tui.ui.widgets.hardware_panel import ModelFootprint  # loaded with the panel

        screen = self._screen
        try:
            panel = screen.hardware_panel
        except NoMatches:
            return  # a late sample while the screen closes
        panel.history = message.history
        panel.stale = message.stale
        panel.snapshot = message.snapshot
        loaded = screen.models.backend.status.loaded
        panel.model_footprint = ModelFootprint(
            message.snapshot.processes,
            placement=loaded.placement if loaded is not None else None,
            labels=screen.hosts.footprint_labels(message.snapshot),
        )

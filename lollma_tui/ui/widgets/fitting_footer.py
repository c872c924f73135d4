"""A footer that tightens its spacing on a narrow terminal rather than lose its last keys."""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

SPACED_FROM = 100
"""Columns from which the keys keep Textual's spacing; below, they are set close together."""

PALETTE_HINT_FROM = 90
"""Columns from which ``^p palette`` shows on the right (F1's help names it too)."""


class FittingFooter(Footer):
    """The chat screen's keys need about 100 columns spaced out: at 80, Help and Quit fell off."""

    def on_resize(self, event: events.Resize) -> None:
        self.compact = event.size.width < SPACED_FROM  # the keys are bound to it: they follow
        palette = event.size.width >= PALETTE_HINT_FROM
        if palette != self.show_command_palette:
            self.show_command_palette = palette
            # Footer builds its keys in compose and only rebuilds them when the bindings change.
            self.call_after_refresh(self.recompose)

"""A footer that fits a narrow terminal: its keys close up, then the least needed give way, so
that Help and Quit are the last to go."""

from __future__ import annotations

import itertools

from textual import events
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Footer

SPACED_FROM = 100
"""Columns from which the keys keep Textual's spacing; below, they are set close together."""

PALETTE_HINT_FROM = 90
"""Columns from which ``^p palette`` shows on the right (F1's help names it too)."""

GIVE_WAY = ("regenerate", "new_conversation", "conversations", "toggle_sidebar", "toggle_settings")
"""Actions whose keys are left out, in this order, while the keys do not fit: each is also in
F1's help and the palette. Stop, Help and Quit stay."""


class FittingFooter(Footer):
    """The chat screen's keys need about 100 columns spaced out: at 80, Help and Quit fell off,
    and below 75 they did even set close together."""

    _passes = 0
    """Fitting passes begun (`_fit_keys`): only the last one leaves keys out."""

    def compose(self) -> ComposeResult:
        self._forget_removed_keys()
        yield from super().compose()
        self.call_after_refresh(self._fit_keys)

    def _forget_removed_keys(self) -> None:
        """Footer binds each key it builds to its own `compact` (`data_bind`), and rebuilds them
        whenever a screen or the drawer opens: each rebuild left the old keys held by the
        footer's watchers, some 16 widgets a time, for good (Textual issue #6666). Textual
        keeps them under "__watchers" and prunes closed ones only when `compact` changes."""
        watchers: dict[str, list[tuple[Widget, object]]] = getattr(self, "__watchers", {})
        for bound in watchers.values():
            bound[:] = [(node, watch) for node, watch in bound if node.is_attached and not node._closing]

    def on_resize(self, event: events.Resize) -> None:
        self.compact = event.size.width < SPACED_FROM  # the keys are bound to it: they follow
        palette = event.size.width >= PALETTE_HINT_FROM
        if palette != self.show_command_palette:
            self.show_command_palette = palette
            # Footer builds its keys in compose and only rebuilds them when the bindings change.
            self.call_after_refresh(self.recompose)
        self.call_after_refresh(self._fit_keys)

    def _fit_keys(self) -> None:
        self._passes += 1
        keys = list(self.query("FooterKey"))  # Textual's own, by name: the class is private
        for key in keys:
            key.display = True
        self.call_after_refresh(self._leave_out, keys, self._passes)  # measured as laid out, all of them

    def _leave_out(self, keys: list[Widget], fit_pass: int) -> None:
        if fit_pass != self._passes:
            return  # a later pass shows them all again: it measures them laid out that way
        # The palette's hint is docked on the right: what lies between it and the last key is room
        # left, not a key's width (counted as one, it hid three keys at 100 columns).
        palette = [key for key in keys if key.has_class("-command-palette")]
        keys = [key for key in keys if key not in palette]
        room = self.size.width - sum(key.outer_size.width for key in palette)
        # Each key's width with the space after it (the one before the next key's region).
        widths = {key: key.outer_size.width for key in keys}
        for key, after in itertools.pairwise(keys):
            widths[key] += max(0, after.region.x - key.region.right)
        needed = sum(widths.values())
        for key in palette:  # the first to go: Ctrl+P works without it, and F1 names it
            if needed > room:
                key.display = False
                room += key.outer_size.width
        for action in GIVE_WAY:
            if needed <= room:
                return
            for key in keys:
                if getattr(key, "action", None) == action and key.display:
                    key.display = False
                    needed -= widths[key]

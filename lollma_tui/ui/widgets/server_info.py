"""Under the model card: what an OpenAI-compatible server tells about itself, kept fresh.

The screen sets `extras` (from a load, then from a periodic refresh) and `model`; the lines are
the server's own words, shown literally and without control characters.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from lollma_tui.core.backends.describe import format_server
from lollma_tui.core.backends.openai_extras import ServerExtras
from lollma_tui.ui.literal import plain


class ServerInfo(Vertical):
    """Hidden until a server's extras are set."""

    extras: reactive[ServerExtras | None] = reactive(None, init=False)
    """What the server said at the last load or refresh; None hides the block."""
    model: reactive[str | None] = reactive(None, init=False)
    """The model id in use, for the server's details on it (LM Studio)."""

    def compose(self) -> ComposeResult:
        yield Static("server", classes="card-title", markup=False)
        yield Static("", id="server-lines", markup=False)

    def on_mount(self) -> None:
        self._show()

    def watch_extras(self) -> None:
        self._show()

    def watch_model(self) -> None:
        self._show()

    def _show(self) -> None:
        extras = self.extras
        self.display = extras is not None
        if extras is None or not self.is_mounted:
            return
        self.set_class(extras.loading, "-loading")
        lines = (plain(line, one_line=True) for line in format_server(extras, self.model))
        self.query_one("#server-lines", Static).update("\n".join(lines))

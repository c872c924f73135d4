"""LollmaApp: the composition of the app's feature layers.

    AppBase → ModelFeatures → HardwareFeatures → HistoryFeatures → ChatFeatures
    → SettingsFeatures → ConversationFeatures → BenchFeatures → CommandFeatures → LollmaApp

Each layer owns one area and may call the layers below it; widgets only render what the
app hands them and post messages back.
"""

from __future__ import annotations

import threading

from textual import on
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from lollma_tui.ui.app_commands import CommandFeatures
from lollma_tui.ui.theming import register_themes


class LollmaApp(CommandFeatures):
    CSS_PATH = ["app.tcss", "hardware_panel.tcss"]
    """Dialogs, the drawer and the bench screen bring their own stylesheets when first shown."""
    TITLE = "lollma-tui"

    BINDINGS = [
        Binding("escape", "stop", "Stop", id="stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="regenerate"),
        Binding("ctrl+n", "new_conversation", "New chat", id="new-conversation"),
        Binding("f2,ctrl+t", "toggle_settings", "Settings", id="toggle-settings"),
        Binding("ctrl+o", "conversations", "Chats", id="conversations"),
        Binding("ctrl+f", "search", "Search", id="search", show=False),
        Binding("f3", "copy_last", "Copy", id="copy-last", show=False),
        Binding("ctrl+b", "toggle_sidebar", "Panel", id="toggle-sidebar"),
        Binding("f1", "help", "Help", id="help"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
    ]

    def on_mount(self) -> None:
        failures = register_themes(self)
        self.apply_theme(self.options.theme)
        if failures:
            self.notify("\n".join(failures), title="Some themes did not load", severity="warning")

    async def on_unmount(self) -> None:
        self.stop_hardware()
        # However the app ends, the llama.cpp worker and its spare end with it (after /quit
        # this finds the session closed already).
        if self._session is not None:
            await self._session.close()

    def on_ready(self) -> None:
        self.start_hardware()
        self.main.model_card.status = self.backend.status
        self.load_model(self.load_settings)
        self.open_history()
        self.scan_catalog()
        threading.Thread(target=_preload_reply_widgets, name="preload-markdown", daemon=True).start()

    def action_toggle_sidebar(self) -> None:
        sidebar = self.main.sidebar
        sidebar.toggle_class("-hidden")
        self.fold_hardware(sidebar.has_class("-hidden"))

    @on(Worker.StateChanged)
    def _report_worker_error(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(f"{type(event.worker.error).__name__}: {event.worker.error}", severity="error")


def _preload_reply_widgets() -> None:
    """Import the Markdown widget off the UI thread so the first reply does not pay for it."""
    import textual.widgets._markdown  # noqa: F401

"""The one screen: chat on the left, the side panel on the right, keys at the bottom."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer

from lollma_tui.ui.widgets.chat_log import ChatLog
from lollma_tui.ui.widgets.hardware_panel import HardwarePanel
from lollma_tui.ui.widgets.model_card import ModelCard
from lollma_tui.ui.widgets.prompt_input import PromptInput

if TYPE_CHECKING:
    from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer


class MainScreen(Screen[None]):
    """Layout only; the app owns the conversation and the backend and drives these widgets."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="chat-column"):
                yield ChatLog(id="chat-log")
                yield PromptInput(id="prompt")
            with VerticalScroll(id="sidebar"):
                yield ModelCard(id="model-card")
                yield HardwarePanel(id="hardware-panel")
        yield Footer()

    def on_mount(self) -> None:
        self.prompt.focus()

    @property
    def chat_log(self) -> ChatLog:
        return self.query_one(ChatLog)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def model_card(self) -> ModelCard:
        return self.query_one(ModelCard)

    @property
    def hardware_panel(self) -> HardwarePanel:
        return self.query_one(HardwarePanel)

    @property
    def settings_drawer(self) -> SettingsDrawer | None:
        """The drawer once it has been opened (it is built on first use, off the start-up path)."""
        found = self.query("#settings-drawer")
        return cast("SettingsDrawer", found.first()) if found else None

    async def add_settings_drawer(self, drawer: SettingsDrawer) -> None:
        await self.mount(drawer, before=self.query_one(Footer))

    @property
    def sidebar(self) -> VerticalScroll:
        return self.query_one("#sidebar", VerticalScroll)

"""Helpers for Pilot tests of the apps (a plainly named module: conftest modules collide)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from textual.pilot import Pilot

from lollma_tui.core.backends.ollama import OllamaBackend
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.literal_app import LiteralApp
from lollma_tui.ui.screens.chat import ChatScreen
from lollma_tui.ui.theming import choose_theme, register_themes, with_app_variables
from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer


async def wait_until(
    pilot: Pilot[Any],
    condition: Callable[[], bool],
    within: float = 30.0,
    explain: Callable[[], object] | None = None,
) -> None:
    """Let the app run until `condition` holds; fail after `within` seconds, saying `explain()`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            detail = f": {explain()}" if explain is not None else ""
            raise AssertionError(f"condition not met in time{detail}")
        await pilot.pause(0.02)


async def opened_drawer(pilot: Pilot[Any], screen: ChatScreen) -> SettingsDrawer:
    """F2 on the chat screen: its settings drawer, open."""
    await pilot.press("f2")
    drawer = screen.settings_drawer
    assert drawer is not None and drawer.is_open
    return drawer


class ThemedApp(LiteralApp[None]):
    """A host app for widget and screen tests: lollma-tui's themes, colour slots and literal
    toasts, as the real apps have them (subclasses add CSS_PATH and their own message handlers)."""

    theme_name: ClassVar[str] = "lollma-dark"

    def get_css_variables(self) -> dict[str, str]:
        return with_app_variables(super().get_css_variables())

    def on_mount(self) -> None:
        register_themes(self)
        choose_theme(self, self.theme_name)


def ollama_app(host: str, model: str = "tinyllama:1b-q4_K_M") -> LollmaApp:
    """The app on the Ollama backend at `host` (the test server), replies of 64 tokens at most."""
    options = StartupOptions(
        load=LoadSettings(backend=BackendKind.OLLAMA, model=model, n_ctx=2048),
        sampling=SamplingSettings(max_tokens=64),
        ollama_host=host,
    )
    return LollmaApp(options, backend=OllamaBackend(host, timeout_s=10.0, connect_timeout_s=1.0))

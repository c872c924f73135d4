"""Helpers for Pilot tests of the apps (a plainly named module: conftest modules collide)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from textual.pilot import Pilot

from lollma_tui.ui.literal_app import LiteralApp
from lollma_tui.ui.theming import choose_theme, register_themes, with_app_variables


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], within: float = 30.0) -> None:
    """Let the app run until `condition` holds; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


class ThemedApp(LiteralApp[None]):
    """A host app for widget and screen tests: lollma-tui's themes, colour slots and literal
    toasts, as the real apps have them (subclasses add CSS_PATH and their own message handlers)."""

    theme_name: ClassVar[str] = "lollma-dark"

    def get_css_variables(self) -> dict[str, str]:
        return with_app_variables(super().get_css_variables())

    def on_mount(self) -> None:
        register_themes(self)
        choose_theme(self, self.theme_name)

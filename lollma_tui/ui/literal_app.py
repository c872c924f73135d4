"""The base of every lollma-tui app: the places Textual itself shows or opens text, made safe.

Toasts, links, pastes and the theme picker are the app's, not a widget's, so the rule of
`ui.literal` is kept here once for every screen: a toast is shown literally whoever raised it, a
link opens only when `core.safe_text.safe_link` accepts it (http or https), pasted text arrives
without control characters, and theme names, which come from the user's theme files, are listed
literally in the command palette. And on Linux and macOS it runs in a terminal driver that
survives being stopped and continued from outside (`ui.terminal_driver`), and is repainted whole
when it comes back from a suspend. A `kill` or a closed terminal (an ssh session that drops)
quits as the app's own quit key does, rather than ending it mid-step.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import TypeVar

from textual import events, on
from textual.app import App, AutopilotCallbackType
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.driver import Driver
from textual.fuzzy import Matcher
from textual.notifications import SeverityLevel

from lollma_tui.core.safe_text import safe_link
from lollma_tui.ui.literal import plain

ReturnType = TypeVar("ReturnType")

TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT) if sys.platform != "win32" else ()
"""SIGINT too: Ctrl+C is a key in the app's raw mode, so one comes from another program (kill
-INT), and asyncio's own handling cancelled the app mid-reply instead of quitting it."""


class LiteralApp(App[ReturnType]):
    async def run_async(
        self,
        *,
        headless: bool = False,
        inline: bool = False,
        inline_no_clear: bool = False,
        mouse: bool = True,
        size: tuple[int, int] | None = None,
        auto_pilot: AutopilotCallbackType | None = None,
    ) -> ReturnType | None:
        # Python's default for these signals ends the process at once: the terminal was left in
        # the app's screen with mouse reporting on, and a reply in flight unsaved since its last
        # flush.
        loop = asyncio.get_running_loop()
        caught = TERMINATION_SIGNALS if threading.current_thread() is threading.main_thread() else ()
        # Python-level handlers, not the loop's own (`add_signal_handler`): those run only when
        # the loop gets control, so while it was busy (a huge message being laid out) no signal,
        # not even a second one, could end the app.
        previous = {signum: signal.signal(signum, partial(self._terminated, loop)) for signum in caught}
        try:
            return await super().run_async(
                headless=headless,
                inline=inline,
                inline_no_clear=inline_no_clear,
                mouse=mouse,
                size=size,
                auto_pilot=auto_pilot,
            )
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    ended_by: int | None = None
    """The signal that quit the app, if one did: the command exits 128 + its number."""

    def _terminated(self, loop: asyncio.AbstractEventLoop, signum: int, _frame: object) -> None:
        if self.ended_by is not None:
            # A second one ends the process the default way: quitting hangs.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.ended_by = signum
        loop.call_soon_threadsafe(self.call_later, self.run_action, "quit")

    def get_driver_class(self) -> type[Driver]:
        chosen = super().get_driver_class()
        if sys.platform == "win32":
            return chosen
        from textual.drivers.linux_driver import LinuxDriver

        if chosen is not LinuxDriver:
            return chosen  # one named in TEXTUAL_DRIVER
        from lollma_tui.ui.terminal_driver import ContinuableDriver

        return ContinuableDriver

    @on(Driver.SignalResume)
    def _repaint_on_resume(self) -> None:
        # Back from a suspend (SIGTSTP, then SIGCONT) on a blank screen: Textual repaints after
        # its own `suspend()` but not here, and the screen would show only what changed next.
        self.refresh(layout=True)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Paste) and not event.is_forwarded:
            # Pasted text is the user's like any typed, and often copied from a terminal with its
            # colour codes: the focused field gets it without them.
            event.text = plain(event.text)
        await super().on_event(event)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Show a toast. Its text is always literal (`markup` is ignored): toasts quote file
        names, server errors and model names, and the app never styles one with markup."""
        super().notify(
            plain(message),
            title=plain(title, one_line=True),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def action_help_quit(self) -> None:
        """Ctrl+C: say which key quits (Textual's own toast is markup, shown literally here)."""
        for active in self.active_bindings.values():
            if active.binding.action in ("quit", "app.quit"):
                key = self.get_key_display(active.binding)
                self.notify(f"Press {key} to quit", title="Do you want to quit?")
                return

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """Ctrl+P → Screenshot, saved in the app's state folder (Textual's default, ~/Downloads,
        is missing on a headless box, and its toasts are markup), with where or why not said."""
        from lollma_tui.core.paths import state_dir

        folder = Path(path) if path else state_dir() / "screenshots"
        named = f"{self.title.replace(' ', '_')}_{time.strftime('%Y-%m-%dT%H_%M_%S')}.svg"
        svg = self.export_screenshot()  # reads the screen: here, not in a thread
        self.run_worker(self._save_screenshot(folder / (filename or named), svg), group="screenshot")

    async def _save_screenshot(self, target: Path, svg: str) -> None:
        from lollma_tui.core.safe_files import write_private_file

        try:
            await asyncio.to_thread(write_private_file, target, svg)
        except OSError as error:
            why = error.strerror or error
            self.notify(f"Not saved: {target}: {why}", title="Screenshot", severity="error")
            return
        self.notify(f"Saved to {target}", title="Screenshot")

    def open_url(self, url: str, *, new_tab: bool = True) -> None:
        """Open `url` when it is an http(s) link; say so, and open nothing, otherwise.

        Every link click lands here (a reply's Markdown calls it with the link's target, which a
        model wrote), so ``file:``, ``javascript:`` or an opener's custom scheme never reaches the
        system's URL handler.
        """
        target = safe_link(url)
        if target is None:
            self.notify(f"Not opened: {url} (only http and https links open)", severity="warning")
            return
        super().open_url(target, new_tab=new_tab)

    def search_themes(self) -> None:
        self.push_screen(CommandPalette(providers=[LiteralThemes], placeholder="Search for themes…"))


class LiteralThemes(Provider):
    """Textual's theme picker with each name shown literally (a theme file names its theme)."""

    def _names(self) -> list[str]:
        return sorted(self.app.available_themes)

    def _choose(self, name: str) -> None:
        self.app.theme = name

    async def discover(self) -> Hits:
        for name in self._names():
            shown = plain(name, one_line=True)
            yield DiscoveryHit(Content(shown), partial(self._choose, name), text=shown)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name in self._names():
            shown = plain(name, one_line=True)
            score = matcher.match(shown)
            if score > 0:
                yield Hit(score, highlighted_match(matcher, shown), partial(self._choose, name), text=shown)


def highlighted_match(matcher: Matcher, shown: str) -> Content:
    """`shown` with the letters the query matched marked, as Textual's own providers mark them."""
    content = Content(shown)
    _, offsets = matcher.fuzzy_search.match(matcher.query, shown)
    for offset in offsets:
        if not shown[offset].isspace():
            content = content.stylize(matcher.match_style, offset, offset + 1)
    return content

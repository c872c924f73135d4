"""LollmaApp: themes, the start-up options, and the screens; the chat screen does the rest.

The app builds the `ChatScreen` and starts it once the first frame is up, applies themes, runs
the help and quit keys that work on every screen, and passes on what the screens it opens for
the chat screen report (the bench screen's "apply best", renames and deletions in the list).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from textual import on, work
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from lollma_tui.ui.literal_app import LiteralApp
from lollma_tui.ui.screens.chat import ChatScreen
from lollma_tui.ui.theming import choose_theme, register_themes, with_app_variables

if TYPE_CHECKING:
    from lollma_tui.core.backends.base import Backend
    from lollma_tui.core.hosts import HostEntry
    from lollma_tui.core.settings import StartupOptions
    from lollma_tui.ui.messages import ChoicesRefreshed, HardwareSampled


class LollmaApp(LiteralApp[None]):
    CSS_PATH = ["app.tcss"]
    """Dialogs, the drawer, the hardware panel and the bench screen bring their own stylesheets
    when first shown."""
    TITLE = "lollma-tui"

    BINDINGS = [
        Binding("f1", "help", "Help", id="help"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
    ]

    def __init__(
        self, options: StartupOptions, backend: Backend | None = None, *, hosts: Sequence[HostEntry] = ()
    ) -> None:
        """`hosts` are the config file's ``[[hosts]]``; the defaults are added to them."""
        super().__init__()
        # Chosen before the stylesheet is first parsed: a theme set once the app runs parses
        # and applies all of it a second time, on the way to the first frame.
        self._theme_failures = register_themes(self)
        self._theme_warning = choose_theme(self, options.theme)
        if self._theme_warning is not None and options.theme_from is not None:
            # Said in the chat with the file and the key, as the file's other problems are (a
            # toast for five seconds, naming neither, was easy to miss behind a loading model).
            problem = f"{options.theme_from}: ui.theme: {self._theme_warning}"
            options = replace(options, config_problems=(*options.config_problems, problem))
            self._theme_warning = None
        self.options = options
        self.chat_screen = ChatScreen(options, backend, hosts=hosts)

    def get_default_screen(self) -> ChatScreen:
        return self.chat_screen

    def on_mount(self) -> None:
        # Only a theme picked from now on is kept: the one started with came from the file or a flag.
        self.watch(self, "theme", self._theme_picked, init=False)
        if self._theme_warning is not None:
            self.notify(self._theme_warning, severity="warning")
        if self._theme_failures:
            self.notify("\n".join(self._theme_failures), title="Some themes did not load", severity="warning")

    async def on_ready(self) -> None:
        if not gc.isenabled():
            # Paused by `cli.main` for the start-up. What the start-up made (modules, classes,
            # the screen) lives as long as the app: frozen, later full collections skip it.
            gc.freeze()
            gc.enable()
        await self.chat_screen.start()

    # -- themes -----------------------------------------------------------------------------------

    def get_css_variables(self) -> dict[str, str]:
        variables = with_app_variables(super().get_css_variables())
        self.theme_variables = variables
        return variables

    def _theme_picked(self, name: str) -> None:
        self.keep_theme(name)

    @work(group="keep-theme", exclusive=True)
    async def keep_theme(self, name: str) -> None:
        """A theme picked with /theme or the palette is the one the next start uses."""
        from lollma_tui.core.config_keep import KeepError, keep_theme

        try:
            path = await asyncio.to_thread(keep_theme, name)
        except KeepError as error:
            self.notify(
                f"Theme {name} is in use, but not kept for the next start: {error}", severity="warning"
            )
            return
        self.notify(f"Theme {name}: kept for the next start ([ui] in {path.name})")

    # -- keys every screen has --------------------------------------------------------------------

    def action_help(self) -> None:
        # Imported on demand: the help screen's Markdown is not needed for the first frame.
        from lollma_tui.ui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        from lollma_tui.ui.controllers.history_recorder import QUITTING_UNSAVED

        chat = self.chat_screen
        # A signal (the terminal closed) cannot be answered: only a person quitting is asked.
        if self.ended_by is None and not chat.history.may_leave(chat.conversation, QUITTING_UNSAVED):
            if self.screen is not chat:
                self.notify(QUITTING_UNSAVED, severity="warning")  # the chat log is not in view
            return
        await chat.wind_down()
        self.exit()

    def copy_to_clipboard(self, text: str) -> None:
        super().copy_to_clipboard(text)
        if os.environ.get("TMUX") and self._driver is not None:
            # tmux passes OSC 52 on only with set-clipboard; a DCS-wrapped copy also gets through
            # where allow-passthrough is on.
            encoded = base64.b64encode(text.encode()).decode()
            self._driver.write(f"\x1bPtmux;\x1b\x1b]52;c;{encoded}\a\x1b\\")

    # -- what the screens opened for the chat report ------------------------------------------------

    # By name, as on the chat screen: the messages' module is not needed for the first frame.
    def on_hardware_sampled(self, message: HardwareSampled) -> None:
        bench = sys.modules.get("lollma_tui.ui.screens.bench")
        if bench is None or not self.screen_stack:
            return  # never opened, so it cannot be on screen (and stays unimported)
        screen = self.screen
        if isinstance(screen, bench.BenchScreen):
            screen.history = message.history
            screen.stale = message.stale
            screen.snapshot = message.snapshot
            screen.budget = self.chat_screen.memory_budget()

    def on_choices_refreshed(self, message: ChoicesRefreshed) -> None:
        # A bench screen opened before the first scan of the models folders ended gets its models.
        from lollma_tui.core.settings import BackendKind

        bench = sys.modules.get("lollma_tui.ui.screens.bench")
        found = message.catalogs.get(BackendKind.LLAMA_CPP)
        if bench is not None and self.screen_stack and isinstance(self.screen, bench.BenchScreen) and found:
            self.screen.catalog = found

    # Handlers by name, so the screens' modules are not imported before they are first opened.
    def on_bench_screen_apply_best(self, message: object) -> None:
        from lollma_tui.ui.screens.bench import BenchScreen

        assert isinstance(message, BenchScreen.ApplyBest)
        message.control.dismiss()
        self.chat_screen.dialogs.apply_bench_best(message.load)

    async def on_conversations_screen_deleted(self, message: object) -> None:
        from lollma_tui.ui.screens.conversations import ConversationsScreen

        assert isinstance(message, ConversationsScreen.Deleted)
        await self.chat_screen.conversation_deleted(message.conversation_id)

    def on_conversations_screen_renamed(self, message: object) -> None:
        from lollma_tui.ui.screens.conversations import ConversationsScreen

        assert isinstance(message, ConversationsScreen.Renamed)
        self.chat_screen.conversation_renamed(message.summary.id, message.summary.title)

    @on(Worker.StateChanged)
    def _report_worker_error(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(f"{type(event.worker.error).__name__}: {event.worker.error}", severity="error")

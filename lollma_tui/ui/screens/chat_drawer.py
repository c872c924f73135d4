"""The chat screen's settings drawer: built the first time it opens, then opened and closed.

A plain object the chat screen owns. It builds the drawer on first use (its module and
stylesheet stay off the start-up path), hands it what it shows each time it opens (the
settings in effect, the model catalogs, the fit check), and tells the side panel when it opens
and closes (`SidePanel`). What the drawer asks for reaches the screen as messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lollma_tui.core.settings import BackendKind

if TYPE_CHECKING:
    from lollma_tui.ui.messages import ChoicesRefreshed
    from lollma_tui.ui.screens.chat import ChatScreen


class ChatDrawer:
    def __init__(self, screen: ChatScreen) -> None:
        self._screen = screen
        self._step: str | None = None
        """Where the swap under way is (None: none is), for a drawer opened in the middle of it."""

    @property
    def is_open(self) -> bool:
        drawer = self._screen.settings_drawer
        return drawer is not None and drawer.is_open

    async def toggle(self) -> None:
        screen = self._screen
        drawer = screen.settings_drawer
        if drawer is not None and drawer.is_open:
            drawer.close()
            self.closed()
            return
        if drawer is None:
            from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer

            drawer = SettingsDrawer(screen.models.settings, screen.models.sampling, id="settings-drawer")
            # Inside the body, above the footer: docked to the screen it ran under the footer,
            # and the Apply, Reset and Quantize buttons on its last line were hidden.
            await screen.query_one("#body").mount(drawer)
            drawer.catalogs = screen.catalog.catalogs
            drawer.unlisted = screen.catalog.unlisted
            drawer.reply_running = screen.is_generating
        from lollma_tui.core.session import reload_needed
        from lollma_tui.core.session.reload import read_only_fields, reload_needed_on_a_cpu_only_build

        drawer.applied_load = screen.models.settings
        drawer.applied_sampling = screen.models.sampling
        drawer.last_models = screen.models.session.last_models
        drawer.busy = self._step or ("loading…" if screen.models.loading else None)
        cpu_only = screen.models.session.gpu_offload_supported is False
        drawer.configure(
            fit_checker=screen.catalog.fit_for,
            reload_fields=reload_needed_on_a_cpu_only_build if cpu_only else reload_needed,
            read_only=read_only_fields,
        )
        screen.panel.drawer_opened()
        drawer.open()
        if screen.models.settings.backend is BackendKind.LLAMA_CPP:
            # GGUFs made or downloaded since the last scan (`lollma-tui quantize` in another
            # terminal): the lists follow when the scan ends, the drawer does not wait for it.
            screen.catalog.scan()
        else:
            # A model pulled or removed since (`ollama pull` in another terminal): the server
            # is asked again, as another backend's is when it is chosen in the drawer.
            screen.catalog.refresh()

    def closed(self) -> None:
        screen = self._screen
        screen.panel.drawer_closed()
        screen.prompt.focus()

    def reply_running(self, running: bool) -> None:
        """A reply started or ended: while one runs, Esc in the drawer stops it."""
        drawer = self._screen.settings_drawer
        if drawer is not None:
            drawer.reply_running = running

    def swap_progressed(self, step: str | None) -> None:
        """A swap is at `step` (None: it has ended, and the settings in effect are new)."""
        self._step = step
        drawer = self._screen.settings_drawer
        if drawer is not None:
            drawer.busy = step
            if step is None:
                drawer.last_models = self._screen.models.session.last_models
                drawer.applied_load = self._screen.models.settings
                drawer.applied_sampling = self._screen.models.sampling  # a swap off the demo resets it

    def choices_refreshed(self, message: ChoicesRefreshed) -> None:
        drawer = self._screen.settings_drawer
        if drawer is not None:
            drawer.unlisted = dict(message.unlisted)
            drawer.catalogs = dict(message.catalogs)

    def sampling_applied(self) -> None:
        """The sampling settings changed elsewhere (a command): the drawer shows them."""
        drawer = self._screen.settings_drawer
        if drawer is not None:
            drawer.applied_sampling = self._screen.models.sampling

"""Changing the set-up: the settings drawer, the setting commands, and the model catalog.

The drawer and the setting-command machinery are imported on first use: they are not needed
for the first frame.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work

from lollma_tui.core.chat.commands import Command, CommandError
from lollma_tui.core.settings import BackendKind, LoadSettings, SettingsError
from lollma_tui.ui.app_chat import ChatFeatures
from lollma_tui.ui.messages import SwapFinished, SwapProgressed

if TYPE_CHECKING:
    from lollma_tui.core.models.catalog import Catalog, HeaderCache
    from lollma_tui.core.models.fit import FitVerdict
    from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer

SETTING_COMMANDS = frozenset({"model", "quant", "ngl", "ctx", "threads", "batch", "backend", "set"})


class SettingsFeatures(ChatFeatures):
    gguf_catalog: Catalog | None = None
    _headers: HeaderCache | None = None
    _catalogs: dict[BackendKind, Catalog] | None = None
    _sidebar_was_hidden = False

    # -- the model catalog --------------------------------------------------------------------

    @work(group="catalog-scan", exclusive=True, exit_on_error=False)
    async def scan_catalog(self) -> None:
        """Find GGUF files in the models folders (in a thread: large vocabularies take ms each)."""
        from lollma_tui.core import paths
        from lollma_tui.core.models.catalog import HeaderCache, default_model_dirs, scan_models

        folders = list(default_model_dirs())
        extra: list[Path] = []
        if self.load_settings.backend == BackendKind.LLAMA_CPP and self.load_settings.model:
            # The folder of the model the user started with holds its other quantizations.
            model = Path(self.load_settings.model)
            extra.append(model)
            folders.append(model.parent)
        headers = self._headers

        def scan() -> tuple[Catalog, HeaderCache]:
            # Headers from earlier runs first: only new or changed files are read.
            cache = headers if headers is not None else HeaderCache(paths.header_cache_path())
            catalog = scan_models(folders, extra, cache=cache)
            cache.save()
            return catalog, cache

        self.gguf_catalog, self._headers = await asyncio.to_thread(scan)
        await self.refresh_choices()

    async def refresh_choices(self) -> None:
        """Hand the drawer and the prompt's completion what the app now knows."""
        from lollma_tui.core.chat.setting_commands import command_state, completion_context

        state = await command_state(self.session, self.gguf_catalog)
        self.main.prompt.completion_context = completion_context(state, tuple(self.theme_names()))
        catalogs = dict(self._catalogs or {})
        if self.gguf_catalog is not None:
            catalogs[BackendKind.LLAMA_CPP] = self.gguf_catalog
        if state.catalog is not None:
            catalogs[state.load.backend] = state.catalog
        self._catalogs = catalogs
        drawer = self.main.settings_drawer
        if drawer is not None:
            drawer.catalogs = catalogs

    def fit_for(self, settings: LoadSettings) -> FitVerdict | None:
        """The drawer's live verdict: the estimator against the newest free-memory figures."""
        from lollma_tui.core.models.fit import FitParams, check_fit
        from lollma_tui.core.session import reclaimable_memory

        if settings.backend != BackendKind.LLAMA_CPP or self.gguf_catalog is None:
            return None
        found = self.gguf_catalog.find(settings.model)
        if found is None or found[1].header is None:
            return None
        budget = self.memory_budget()
        loaded = self.session.loaded
        if budget is not None and loaded is not None and loaded.settings.backend == BackendKind.LLAMA_CPP:
            current = self.gguf_catalog.find(loaded.settings.model)
            if current is not None and current[1].header is not None:
                # The current model is unloaded before the new one loads.
                budget = budget.plus(*reclaimable_memory(current[1].header, loaded))
        free_ram = budget.free_ram if budget is not None else None
        free_vram = budget.free_vram if budget is not None else None
        try:
            params = FitParams.from_settings(settings)
        except SettingsError:
            return None
        return check_fit(found[1].header, params, free_vram, free_ram)

    # -- the drawer ---------------------------------------------------------------------------

    async def action_toggle_settings(self) -> None:
        drawer = self.main.settings_drawer
        if drawer is not None and drawer.is_open:
            drawer.close()
            self._drawer_closed()
            return
        if drawer is None:
            from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer

            drawer = SettingsDrawer(self.session.settings, self.sampling, id="settings-drawer")
            await self.main.add_settings_drawer(drawer)
            drawer.catalogs = dict(self._catalogs or {})
        from lollma_tui.core.session import reload_needed

        drawer.applied_load = self.session.settings
        drawer.applied_sampling = self.sampling
        drawer.fit_checker = self.fit_for
        drawer.reload_fields = reload_needed
        # At 80 columns the drawer and the side panel together would squeeze the chat away.
        sidebar = self.main.sidebar
        self._sidebar_was_hidden = sidebar.has_class("-hidden")
        sidebar.add_class("-hidden")
        drawer.open()

    def _drawer_closed(self) -> None:
        if not self._sidebar_was_hidden:
            self.main.sidebar.remove_class("-hidden")
        self.main.prompt.focus()

    # Handlers by name, so the drawer's module is not imported before it is first opened.
    def on_settings_drawer_closed(self, _: SettingsDrawer.Closed) -> None:
        self._drawer_closed()

    def on_settings_drawer_apply_requested(self, message: SettingsDrawer.ApplyRequested) -> None:
        self.swap_to(message.load)

    def on_settings_drawer_sampling_changed(self, message: SettingsDrawer.SamplingChanged) -> None:
        self.sampling = message.sampling

    @on(SwapProgressed)
    def _swap_moved_on(self, message: SwapProgressed) -> None:
        main = self.main_or_none
        drawer = main.settings_drawer if main is not None else None
        if drawer is not None:
            drawer.busy = message.progress.message

    @on(SwapFinished)
    async def _swap_done(self, message: SwapFinished) -> None:
        main = self.main_or_none
        if main is None:
            return  # the app is closing
        drawer = main.settings_drawer
        if drawer is not None:
            drawer.busy = None
            drawer.applied_load = self.session.settings
        await self.refresh_choices()

    # -- setting commands ---------------------------------------------------------------------

    async def run_setting_command(self, command: Command) -> None:
        from lollma_tui.core.chat.setting_commands import apply_setting_command, command_state

        state = await command_state(self.session, self.gguf_catalog)
        try:
            change = apply_setting_command(command, state)
        except CommandError as error:
            await self.notice(str(error), "error")
            return
        if change.sampling != self.sampling:
            self.sampling = change.sampling
        if change.load_changed:
            self.swap_to(change.load)
        await self.notice(change.message)
        drawer = self.main.settings_drawer
        if drawer is not None:
            drawer.applied_sampling = self.sampling

    async def show_settings(self) -> None:
        from lollma_tui.core.chat.setting_commands import describe_settings

        await self.notice(describe_settings(self.session.settings, self.sampling, self.session.loaded))

    async def show_comparison(self) -> None:
        from lollma_tui.core.session import format_comparison, summarise_replies

        stats = [m.stats for m in self.conversation.messages if m.role == "assistant" and m.stats is not None]
        if not stats:
            await self.notice("No replies with measured speed in this conversation yet.")
            return
        await self.notice(format_comparison(summarise_replies(stats)))

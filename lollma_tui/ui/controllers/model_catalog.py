"""What can be loaded: GGUF files in the models folders and the backend's own list, the fit
verdict for a set-up, and what the setting commands work on.

A plain object the chat screen owns. Scans run as the screen's workers and end in a
`ChoicesRefreshed` message carrying the drawer's catalogs and Tab completion's words.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from textual.dom import DOMNode

from lollma_tui.core.settings import BackendKind, LoadSettings, SettingsError
from lollma_tui.ui.controllers.model_session import ModelController
from lollma_tui.ui.literal import plain
from lollma_tui.ui.messages import ChoicesRefreshed

if TYPE_CHECKING:
    from lollma_tui.core.chat.commands import Command
    from lollma_tui.core.chat.setting_commands import CommandState, SettingsChange
    from lollma_tui.core.models.catalog import Catalog, HeaderCache
    from lollma_tui.core.models.fit import FitVerdict
    from lollma_tui.core.session import MemoryBudget


class ModelCatalog:
    """The GGUF catalog (scanned in a thread) and the last catalog each backend offered."""

    def __init__(
        self,
        owner: DOMNode,
        models: ModelController,
        *,
        budget: Callable[[], MemoryBudget | None],
    ) -> None:
        self._owner = owner
        self._models = models
        self._budget = budget
        self.gguf: Catalog | None = None
        """GGUF files found in the models folders; None until the first scan ends."""
        self._headers: HeaderCache | None = None
        self._catalogs: dict[BackendKind, Catalog] = {}
        self._unlisted: dict[BackendKind, str] = {}
        """Backends whose server could not be asked for its models, with the reason."""
        self._model_files: dict[Path, None] = {}
        """Every GGUF loaded in this session: a rescan keeps their folders (their other quants)."""

    @property
    def catalogs(self) -> dict[BackendKind, Catalog]:
        """The last catalog of each backend, as the drawer lists them."""
        return dict(self._catalogs)

    @property
    def unlisted(self) -> dict[BackendKind, str]:
        """Backends whose server could not be asked for its models, with the reason."""
        return dict(self._unlisted)

    def scan(self) -> None:
        """Find GGUF files in the models folders (large vocabularies take ms each: in a thread)."""
        self._owner.run_worker(self._scan(), group="catalog-scan", exclusive=True, exit_on_error=False)

    def refresh(self) -> None:
        """Ask the backend what it offers now and post the choices."""
        self._owner.run_worker(self._refresh(), group="choices", exclusive=True, exit_on_error=False)

    def list_backend(self, kind: BackendKind) -> None:
        """Ask the server of another backend what it offers (the drawer shows that backend)."""
        self._owner.run_worker(self._list_then_refresh(kind), group="catalog-other", exit_on_error=False)

    def list_for_completion(self, text: str) -> BackendKind | None:
        """`/backend KIND …` typed while KIND's server was never asked: ask it now, so that Tab
        completes its models once it answers. The backend asked, or None."""
        from lollma_tui.core.chat.commands import CommandError, parse_command
        from lollma_tui.core.chat.setting_commands import backend_named

        try:
            kind = backend_named(parse_command(text))
        except CommandError:
            return None  # not a command: nothing to ask anyone
        if kind is None or kind in (BackendKind.LLAMA_CPP, self._models.session.kind, *self._catalogs):
            return None  # nothing to ask: llama.cpp's models are files, the folder scan lists them
        self.list_backend(kind)
        return kind

    async def _list_then_refresh(self, kind: BackendKind) -> None:
        await self._list(kind)
        await self._refresh()

    async def _list(self, kind: BackendKind) -> None:
        from lollma_tui.core.backends.base import BackendError

        if kind is BackendKind.LLAMA_CPP:
            return  # its models are files: the folder scan lists them
        try:
            self._catalogs[kind] = await self._models.catalog_of(kind)
        except BackendError as error:
            self._unlisted[kind] = plain(str(error), one_line=True)
            self._catalogs.pop(kind, None)  # what it listed before may be gone
        else:
            self._unlisted.pop(kind, None)

    async def _scan(self) -> None:
        from lollma_tui.core import paths
        from lollma_tui.core.models.catalog import HeaderCache, default_model_dirs, scan_models
        from lollma_tui.core.models.demo import DEMOS, demo_model_path, demo_model_ready

        settings = self._models.settings
        folders = list(default_model_dirs())
        # The bundled demo models are there to be compared with, under Ollama too (only those
        # ready to load: assembling one is not a scan's job).
        extra = [demo_model_path(demo) for demo in DEMOS.values() if demo_model_ready(demo)]
        if settings.backend == BackendKind.LLAMA_CPP and settings.model:
            self._model_files[Path(settings.model)] = None
        # The folders of the models loaded in this session hold their other quantizations.
        extra += self._model_files
        folders += dict.fromkeys(model.parent for model in self._model_files)
        headers = self._headers

        def scan() -> tuple[Catalog, HeaderCache]:
            # Headers from earlier runs first: only new or changed files are read.
            cache = headers if headers is not None else HeaderCache(paths.header_cache_path())
            catalog = scan_models(folders, extra, cache=cache)
            cache.save()
            return catalog, cache

        self.gguf, self._headers = await asyncio.to_thread(scan)
        await self._refresh()

    async def _refresh(self) -> None:
        from lollma_tui.core.chat.setting_commands import completion_context

        state = await self.command_state()
        if self.gguf is not None:
            self._catalogs[BackendKind.LLAMA_CPP] = self.gguf
        if state.catalog is not None:
            self._catalogs[state.load.backend] = state.catalog
            self._unlisted.pop(state.load.backend, None)
        completion = replace(
            completion_context(state, tuple(sorted(self._owner.app.available_themes))),
            hosts=tuple(plain(h.name, one_line=True) for h in self._models.hosts),
        )
        self._owner.post_message(ChoicesRefreshed(self.catalogs, completion, dict(self._unlisted)))

    async def command_state(self) -> CommandState:
        """What a setting command works on: the session's settings and the current catalog."""
        from lollma_tui.core.chat.setting_commands import command_state

        return await command_state(self._models.session, self.gguf, self._catalogs, self._unlisted)

    async def apply(self, command: Command) -> SettingsChange:
        """The settings after a setting command (/ngl, /set …); raises `CommandError`."""
        from lollma_tui.core.chat.commands import CommandError
        from lollma_tui.core.chat.setting_commands import CATALOG_WAIT_S, apply_setting_command, backend_named

        kind = backend_named(command)
        if kind is not None and kind is not self._models.session.kind:
            # `/backend ollama` lists what the server has, and takes part of a name from it; a
            # command runs on the screen's turn, which waited the whole list timeout, frozen,
            # for a server that never answers.
            try:
                await asyncio.wait_for(self._list(kind), CATALOG_WAIT_S)
            except TimeoutError:
                self._unlisted[kind] = f"{kind} did not list its models within {CATALOG_WAIT_S:g} s"
        files = (kind or self._models.session.kind) is BackendKind.LLAMA_CPP
        if files and command.name in ("model", "quant") and not command.argument.strip():
            # A bare /quant lists the variants: with a GGUF made since the last scan among them.
            await self._scan()
        try:
            return apply_setting_command(command, await self.command_state())
        except CommandError:
            if not (files and command.name in ("model", "quant", "backend")):
                raise
        # A GGUF made since the last scan (`lollma-tui quantize`, a download): scan, then once more.
        await self._scan()
        return apply_setting_command(command, await self.command_state())

    def fit_for(self, settings: LoadSettings) -> FitVerdict | None:
        """The drawer's live verdict: the estimator against the newest free-memory figures."""
        from lollma_tui.core.models.fit import FitParams, check_fit
        from lollma_tui.core.session import reclaimable_memory

        # What the drawer lists: the folder scan, or the session's (which adds the folders of
        # models loaded since), not only the scan.
        files = self._catalogs.get(BackendKind.LLAMA_CPP, self.gguf)
        if settings.backend != BackendKind.LLAMA_CPP or files is None:
            return None
        found = files.find(settings.model)
        if found is None or found[1].header is None:
            return None
        budget = self._budget()
        loaded = self._models.session.loaded
        if budget is not None and loaded is not None and loaded.settings.backend == BackendKind.LLAMA_CPP:
            current = files.find(loaded.settings.model)
            if current is not None and current[1].header is not None:
                # The current model is unloaded before the new one loads.
                budget = budget.plus(*reclaimable_memory(current[1].header, loaded))
        free_ram = budget.free_ram if budget is not None else None
        free_vram = budget.free_vram if budget is not None else None
        if self._models.session.gpu_offload_supported is False:
            # As the load is planned: this build puts nothing on the GPU, whatever is free there
            # (the drawer said "fits · VRAM 130 GiB", the load then refused the RAM it needs).
            free_vram = None
        try:
            params = FitParams.from_settings(settings)
        except SettingsError:
            return None
        return check_fit(found[1].header, params, free_vram, free_ram)

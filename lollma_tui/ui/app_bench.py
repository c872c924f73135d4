"""Benchmarking and quantizing from the app: the bench screen, "apply best", the quantize dialog."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on

from lollma_tui.core import paths
from lollma_tui.core.settings import BackendKind
from lollma_tui.ui.app_conversations import ConversationFeatures
from lollma_tui.ui.messages import HardwareSampled

if TYPE_CHECKING:
    # The screens load when first opened, not on the way to the first frame.
    from lollma_tui.ui.screens.bench import BenchScreen
    from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer


class BenchFeatures(ConversationFeatures):
    def action_bench(self) -> None:
        from lollma_tui.core.models.catalog import Catalog
        from lollma_tui.ui.screens.bench import BenchScreen

        catalog = self.gguf_catalog or Catalog()
        settings = self.session.settings
        model = settings.model if settings.backend == BackendKind.LLAMA_CPP else None
        screen = BenchScreen(
            catalog,
            model=model,
            budget=self.memory_budget(),
            base_settings=settings,
            log_path=paths.log_dir() / "bench.log",
        )
        self.push_screen(screen)

    def on_bench_screen_apply_best(self, message: BenchScreen.ApplyBest) -> None:
        message.control.dismiss()
        self.swap_to(message.load)

    @on(HardwareSampled)
    def _hardware_to_bench(self, message: HardwareSampled) -> None:
        if not self.screen_stack:
            return  # a late sample while the app shuts down
        bench = sys.modules.get("lollma_tui.ui.screens.bench")
        if bench is None:
            return  # never opened, so it cannot be on screen (and stays unimported)
        screen = self.screen
        if isinstance(screen, bench.BenchScreen):
            screen.history = message.history
            screen.stale = message.stale
            screen.snapshot = message.snapshot
            screen.budget = self.memory_budget()

    async def action_quantize(self, model: str | None = None) -> None:
        settings = self.session.settings
        source = model or (settings.model if settings.backend == BackendKind.LLAMA_CPP else "")
        if not source:
            await self.notice("Quantizing works on GGUF files: load one with the llama.cpp backend.", "error")
            return
        from lollma_tui.ui.screens.quantize import QuantizeScreen

        self.push_screen(
            QuantizeScreen(Path(source), log_path=paths.log_dir() / "quantize.log"), self._quantized
        )

    async def _quantized(self, created: list[Path] | None) -> None:
        if not created:
            return
        names = ", ".join(path.name for path in created)
        await self.notice(f"Created {names}; pick it in the drawer (F2) or with /quant.")
        self.scan_catalog()

    async def on_settings_drawer_quantize_requested(self, message: SettingsDrawer.QuantizeRequested) -> None:
        await self.action_quantize(message.model)

"""The hardware panel beside the chat: the sampler feed, our processes, the live token rate."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from textual import on
from textual.css.query import NoMatches

from lollma_tui.core.backends.base import Backend
from lollma_tui.core.settings import BackendKind
from lollma_tui.ui.app_models import ModelFeatures
from lollma_tui.ui.messages import HardwareSampled

if TYPE_CHECKING:
    from lollma_tui.core.session import MemoryBudget
    from lollma_tui.ui.hardware_feed import HardwareFeed
from lollma_tui.ui.widgets.hardware_panel import ModelFootprint

LIVE_RATE_EVERY_S = 0.25
"""How often the live tokens/s figure may change while a reply streams."""

FIRST_SAMPLE_WAIT_S = 2.0
"""The first load waits this long at most for free-memory figures to check the fit against."""

HIDDEN_PANEL_INTERVAL_S = 5.0
"""Sample slowly while the side panel is folded away: nobody is looking."""


class HardwareFeatures(ModelFeatures):
    hardware: HardwareFeed
    _rate_started: tuple[float, int] | None = None
    _rate_shown_at = 0.0

    def start_hardware(self) -> None:
        from lollma_tui.ui.hardware_feed import HardwareFeed

        # The provider runs on the sampler thread; it reads whichever backend is current.
        self.hardware = HardwareFeed(
            self, interval_s=self.options.hardware_interval_s, process_ids=self._our_pids
        )
        self.hardware.start()

    def _our_pids(self) -> tuple[int, ...]:
        backend: Backend = self.backend
        return backend.process_ids()

    def memory_budget(self) -> MemoryBudget | None:
        from lollma_tui.core.session.budget import budget_from_snapshot

        latest = self.hardware.latest if getattr(self, "hardware", None) is not None else None
        return budget_from_snapshot(latest) if latest is not None else None

    async def first_memory_budget(self) -> MemoryBudget | None:
        feed = getattr(self, "hardware", None)
        snapshot = await feed.first_snapshot(FIRST_SAMPLE_WAIT_S) if feed is not None else None
        from lollma_tui.core.session.budget import budget_from_snapshot

        return budget_from_snapshot(snapshot) if snapshot is not None else None

    def stop_hardware(self) -> None:
        feed = getattr(self, "hardware", None)
        if feed is not None:
            feed.stop(timeout=2.0)

    def fold_hardware(self, hidden: bool) -> None:
        feed = getattr(self, "hardware", None)
        if feed is not None:
            feed.set_interval(HIDDEN_PANEL_INTERVAL_S if hidden else self.options.hardware_interval_s)

    @on(HardwareSampled)
    def _show_hardware(self, message: HardwareSampled) -> None:
        main = self.main_or_none
        if main is None:
            return  # a late sample while the app shuts down
        try:
            panel = main.hardware_panel
        except NoMatches:
            return
        panel.history = message.history
        panel.stale = message.stale
        panel.snapshot = message.snapshot
        loaded = self.backend.status.loaded
        labels = {}
        if self.backend.kind == BackendKind.LLAMA_CPP:
            labels = {pid: "llama.cpp worker" for pid in self.backend.process_ids()}
        panel.model_footprint = ModelFootprint(
            message.snapshot.processes,
            placement=loaded.placement if loaded is not None else None,
            labels=labels,
        )

    # -- live token rate ----------------------------------------------------------------------

    def rate_begin(self) -> None:
        self._rate_started = None
        self._rate_shown_at = 0.0

    def rate_tokens(self, tokens: int | None) -> None:
        """Called per streamed piece with the reply's token count so far."""
        if tokens is None:
            return
        now = time.perf_counter()
        if self._rate_started is None:
            self._rate_started = (now, tokens)
            return
        if now - self._rate_shown_at < LIVE_RATE_EVERY_S:
            return
        started_at, started_tokens = self._rate_started
        if now > started_at and tokens > started_tokens:
            self._rate_shown_at = now
            self.main.hardware_panel.live_rate = (tokens - started_tokens) / (now - started_at)

    def rate_end(self) -> None:
        self._rate_started = None
        with contextlib.suppress(NoMatches, RuntimeError):
            self.main.hardware_panel.live_rate = None

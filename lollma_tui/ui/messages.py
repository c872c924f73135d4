"""Messages that travel from backends and workers to the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from lollma_tui.core.backends.base import BackendStatus

if TYPE_CHECKING:
    from lollma_tui.core.hardware import HardwareHistory, SystemSnapshot
    from lollma_tui.core.session import SwapProgress, SwapResult


@dataclass
class BackendStatusChanged(Message):
    status: BackendStatus

    def can_replace(self, message: Message) -> bool:
        # Only the newest status matters; a burst of changes collapses to the last one.
        return isinstance(message, BackendStatusChanged)


@dataclass
class SwapProgressed(Message):
    """A model swap moved to its next phase (estimating, unloading, loading, …)."""

    progress: SwapProgress


@dataclass
class SwapFinished(Message):
    result: SwapResult


@dataclass
class HardwareSampled(Message):
    """The newest hardware state, for the app to hand to its `HardwarePanel`.

    Posted for every snapshot, and once more with ``stale=True`` when no new one has come for
    3 intervals (a source stalled, or the sampler stopped).
    """

    snapshot: SystemSnapshot
    history: HardwareHistory
    """Grows in place on the UI thread; read it only there."""
    stale: bool = False

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HardwareSampled)

"""Messages that travel from backends and workers to the app."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from lollma_tui.core.backends.base import BackendStatus
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

"""Messages that travel up from the chat screen's controllers (and their workers) to the screen.

Each names what happened (Harlequin-style worker results): the screen that receives one sets
the reactives of its widgets from it; the controllers never touch a widget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.message import Message

from lollma_tui.core.backends.base import BackendStatus

if TYPE_CHECKING:
    from lollma_tui.core.backends.openai_extras import ServerExtras
    from lollma_tui.core.chat.commands import CompletionContext
    from lollma_tui.core.chat.context_budget import ContextCheck
    from lollma_tui.core.hardware import HardwareHistory, SystemSnapshot
    from lollma_tui.core.hardware.remote import LinkStatus
    from lollma_tui.core.host_reports import HostReport
    from lollma_tui.core.models.catalog import Catalog
    from lollma_tui.core.session import SwapProgress, SwapResult
    from lollma_tui.core.settings import BackendKind


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
    """A load or swap ended, loaded or not; `first` for the load at start-up."""

    result: SwapResult
    first: bool = False


@dataclass
class NoticePosted(Message):
    """A line for the chat log: something the user should read (kind: info, warning, error)."""

    text: str
    kind: str = "info"


@dataclass
class ChoicesRefreshed(Message):
    """What the models folders and the backend offer now: the drawer's menus, Tab's words."""

    catalogs: Mapping[BackendKind, Catalog]
    completion: CompletionContext
    unlisted: Mapping[BackendKind, str] = field(default_factory=dict)
    """Backends whose server could not be asked for its models, with the reason."""


@dataclass
class ContextMeasured(Message):
    """Tokens the conversation takes of the loaded context (None: no model loaded)."""

    check: ContextCheck | None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ContextMeasured)


@dataclass
class HardwareSampled(Message):
    """The newest hardware state, for the screen to hand to its `HardwarePanel`.

    Posted for every snapshot, and once more with ``stale=True`` when no new one has come for
    3 intervals (a source stalled, or the sampler stopped).
    """

    snapshot: SystemSnapshot
    history: HardwareHistory
    """Grows in place on the UI thread; read it only there."""
    stale: bool = False

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HardwareSampled)


@dataclass
class HardwareLinkChanged(Message):
    """The ssh link to another machine's hardware changed state (live, stale with why…)."""

    host: str
    status: LinkStatus


@dataclass
class ServerExtrasRead(Message):
    """What an OpenAI-compatible server told about itself, at a load or a periodic refresh."""

    extras: ServerExtras | None
    """None: the backend now in use is not such a server."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ServerExtrasRead)


@dataclass
class HostsReported(Message):
    """One look at every host (reachable, models, loaded, GPUs), for the hosts view."""

    reports: tuple[HostReport, ...]

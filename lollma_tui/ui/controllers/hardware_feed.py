"""Runs the hardware sampler for a screen or app and turns its snapshots into Textual messages.

The sampler thread only posts: each snapshot crosses to the UI thread as a Textual callback
event (`post_message` is thread-safe), is added to the history there, and goes to the owner as
a `HardwareSampled` message. Those collapse to the newest when the owner falls behind, so a
busy UI renders one snapshot, not a backlog, while the history still gets every sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from textual import events
from textual.message_pump import MessagePump
from textual.timer import Timer

from lollma_tui.core.hardware import (
    DEFAULT_INTERVAL_S,
    HardwareHistory,
    HardwareSampler,
    HardwareSource,
    SystemSnapshot,
    is_stale,
)
from lollma_tui.core.hardware.sampler import PidsProvider
from lollma_tui.ui.messages import HardwareSampled

if TYPE_CHECKING:
    from lollma_tui.core.session import MemoryBudget

STALE_CHECK_MAX_S = 1.0
"""The stale check runs every interval, but at least this often."""


class HardwareFeed:
    """Owns a `HardwareSampler` on behalf of `owner` (the chat screen, or the monitor app).

    Call `start()` once the owner runs and `stop()` when it ends; the owner then receives
    `HardwareSampled` messages.
    """

    def __init__(
        self,
        owner: MessagePump,
        sources: Sequence[HardwareSource] | None = None,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        process_ids: PidsProvider | None = None,
    ) -> None:
        self._owner = owner
        self._sampler = HardwareSampler(
            self._on_snapshot, sources, interval_s=interval_s, process_ids=process_ids
        )
        self._history = HardwareHistory(self._sampler.interval_s)
        self._latest: SystemSnapshot | None = None
        self._first = asyncio.Event()
        self._stale = False
        self._timer: Timer | None = None

    @property
    def interval_s(self) -> float:
        return self._sampler.interval_s

    @property
    def running(self) -> bool:
        return self._sampler.running

    @property
    def history(self) -> HardwareHistory:
        return self._history

    @property
    def latest(self) -> SystemSnapshot | None:
        return self._latest

    @property
    def stale(self) -> bool:
        return self._stale

    def start(self) -> None:
        """Start sampling; call on the UI thread once the owner is running."""
        self._sampler.start()
        self._arm_stale_check()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop sampling and join the thread; True when it has ended within `timeout`."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        return self._sampler.stop(timeout)

    def set_interval(self, seconds: float) -> float:
        """Sample every `seconds` (0.25–5, else `IntervalError`); returns the value in force."""
        self._sampler.set_interval(seconds)
        if self._timer is not None:
            self._arm_stale_check()
        return self._sampler.interval_s

    def set_process_ids_provider(self, provider: PidsProvider | None) -> None:
        """Where our pids come from; called on the sampler thread each tick, so keep it quick."""
        self._sampler.set_process_ids_provider(provider)

    def refresh_now(self) -> None:
        self._sampler.refresh_now()

    def budget(self) -> MemoryBudget | None:
        """Free memory from the newest snapshot, to check a load against (None before the first)."""
        from lollma_tui.core.session.budget import budget_from_snapshot

        return budget_from_snapshot(self._latest) if self._latest is not None else None

    # -- sampler thread ---------------------------------------------------------------------------

    def _on_snapshot(self, snapshot: SystemSnapshot) -> None:
        self._owner.post_message(events.Callback(callback=partial(self._receive, snapshot)))

    # -- UI thread --------------------------------------------------------------------------------

    async def first_snapshot(self, within_s: float) -> SystemSnapshot | None:
        """The newest snapshot, waiting up to `within_s` for the first one after start-up."""
        if self._latest is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first.wait(), within_s)
        return self._latest

    def _receive(self, snapshot: SystemSnapshot) -> None:
        self._history.add(snapshot)
        self._latest = snapshot
        self._first.set()
        self._stale = is_stale(snapshot, time.monotonic())
        self._owner.post_message(HardwareSampled(snapshot, self._history, self._stale))

    def _check_stale(self) -> None:
        latest = self._latest
        if latest is None or self._stale or not is_stale(latest, time.monotonic()):
            return
        self._stale = True
        self._owner.post_message(HardwareSampled(latest, self._history, stale=True))

    def _arm_stale_check(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        period = min(self._sampler.interval_s, STALE_CHECK_MAX_S)
        self._timer = self._owner.set_interval(period, self._check_stale, name="hardware-stale-check")

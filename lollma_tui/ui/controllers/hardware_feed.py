"""Runs the hardware sampler for a screen or app and turns its snapshots into Textual messages.

The sampler thread only posts: each snapshot crosses to the UI thread as a Textual callback
event (`post_message` is thread-safe), is added to the history there, and goes to the owner as
a `HardwareSampled` message. Those collapse to the newest when the owner falls behind, so a
busy UI renders one snapshot, not a backlog, while the history still gets every sample.

The sampler reads this machine, or another one over ssh (`RemoteLink`); `watch` moves from one
to the other. A remote link's state changes arrive as `HardwareLinkChanged`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Protocol

from textual import events
from textual.dom import DOMNode
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
from lollma_tui.ui.messages import HardwareLinkChanged, HardwareSampled

if TYPE_CHECKING:
    from lollma_tui.core.hardware.remote import LinkStatus
    from lollma_tui.core.hardware.ssh_target import SshTarget
    from lollma_tui.core.session import MemoryBudget

STALE_CHECK_MAX_S = 1.0
"""The stale check runs every interval, but at least this often."""


@dataclass(frozen=True, slots=True)
class RemoteLink:
    """Another machine's hardware, read over ssh."""

    target: SshTarget
    command: str | None = None
    """Run there instead of `lollma-tui monitor --jsonl` (the host's hw_command)."""
    server_port: int | None = None
    """The model server's port there: the remote monitor follows that process."""
    ssh_options: tuple[str, ...] = ()


class _Sampler(Protocol):
    """What `HardwareSampler` and `RemoteHardwareSampler` both offer."""

    @property
    def interval_s(self) -> float: ...
    @property
    def running(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self, timeout: float = ...) -> bool: ...
    def set_interval(self, seconds: float) -> None: ...
    def refresh_now(self) -> None: ...
    def set_process_ids_provider(self, provider: PidsProvider | None) -> None: ...


class HardwareFeed:
    """Owns a hardware sampler on behalf of `owner` (the chat screen, or the monitor app).

    Call `start()` once the owner runs and `stop()` when it ends; the owner then receives
    `HardwareSampled` messages (and `HardwareLinkChanged` for a remote link).
    """

    def __init__(
        self,
        owner: DOMNode,
        sources: Sequence[HardwareSource] | None = None,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        process_ids: PidsProvider | None = None,
        remote: RemoteLink | None = None,
    ) -> None:
        self._owner = owner
        self._sources = sources
        self._process_ids = process_ids
        self._remote = remote
        self._generation = 0
        """Counts samplers: a snapshot from one that was replaced is dropped."""
        self._sampler = self._make_sampler(interval_s)
        self._history = HardwareHistory(self._sampler.interval_s)
        self._latest: SystemSnapshot | None = None
        self._first = asyncio.Event()
        self._stale = False
        self._timer: Timer | None = None

    def _make_sampler(self, interval_s: float) -> _Sampler:
        generation = self._generation
        on_snapshot = partial(self._on_snapshot, generation)
        remote = self._remote
        if remote is None:
            return HardwareSampler(
                on_snapshot, self._sources, interval_s=interval_s, process_ids=self._process_ids
            )
        from lollma_tui.core.hardware.remote import RemoteHardwareSampler

        return RemoteHardwareSampler(
            on_snapshot,
            remote.target,
            interval_s=interval_s,
            command=remote.command,
            server_port=remote.server_port,
            ssh_options=remote.ssh_options,
            on_status=partial(self._on_link_status, generation),
        )

    @property
    def remote(self) -> RemoteLink | None:
        """The machine watched over ssh; None for this one."""
        return self._remote

    def watch(self, remote: RemoteLink | None) -> bool:
        """Watch another machine (or this one, with None) from now on; the history starts afresh.
        False when that is the machine watched already.

        The old sampler is stopped in a thread: ending an ssh session can take a moment.
        """
        if remote == self._remote:
            return False
        old, running = self._sampler, self._sampler.running
        self._remote = remote
        self._generation += 1
        self._sampler = self._make_sampler(old.interval_s)
        self._history = HardwareHistory(self._sampler.interval_s)
        self._latest = None
        self._stale = False
        if running:
            self._sampler.start()
            self._owner.run_worker(
                partial(old.stop, 5.0), thread=True, group="hardware-retire", exit_on_error=False
            )
        return True

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

    def _on_snapshot(self, generation: int, snapshot: SystemSnapshot) -> None:
        self._owner.post_message(events.Callback(callback=partial(self._receive, generation, snapshot)))

    def _on_link_status(self, generation: int, status: LinkStatus) -> None:
        self._owner.post_message(events.Callback(callback=partial(self._link_changed, generation, status)))

    # -- UI thread --------------------------------------------------------------------------------

    async def first_snapshot(self, within_s: float) -> SystemSnapshot | None:
        """The newest snapshot, waiting up to `within_s` for the first one after start-up."""
        if self._latest is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first.wait(), within_s)
        return self._latest

    async def local_budget(self, within_s: float) -> MemoryBudget | None:
        """This machine's free memory, where llama.cpp loads: from the newest snapshot (waiting
        up to `within_s` for the first), or from one sample of its own while the panel watches
        another machine (moving back from it skipped the fit check: "free memory unknown")."""
        from lollma_tui.core.session.budget import budget_from_snapshot

        if self._remote is None:
            latest = await self.first_snapshot(within_s)
            return budget_from_snapshot(latest) if latest is not None else None

        def sample_here() -> MemoryBudget:
            from lollma_tui.core.hardware import HardwareSampler

            sampler = HardwareSampler(lambda _: None)
            try:
                return budget_from_snapshot(sampler.sample_now())
            finally:
                sampler.close()

        return await asyncio.to_thread(sample_here)

    def _receive(self, generation: int, snapshot: SystemSnapshot) -> None:
        if generation != self._generation:
            return  # from the sampler `watch` replaced
        self._history.add(snapshot)
        self._latest = snapshot
        self._first.set()
        self._stale = is_stale(snapshot, time.monotonic())
        self._owner.post_message(HardwareSampled(snapshot, self._history, self._stale))

    def _link_changed(self, generation: int, status: LinkStatus) -> None:
        from lollma_tui.core.hardware.remote import LinkState

        if generation != self._generation or self._remote is None:
            return
        latest = self._latest
        if status.state is LinkState.STALE and latest is not None and not self._stale:
            # The link is gone: say so now, not three intervals later.
            self._stale = True
            self._owner.post_message(HardwareSampled(latest, self._history, stale=True))
        self._owner.post_message(HardwareLinkChanged(self._remote.target.label, status))

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

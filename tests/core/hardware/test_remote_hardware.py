"""The hardware of another machine over a real ssh session: two fake GPUs, labelled, and a link
that goes stale when the far side dies and comes back on its own."""

from __future__ import annotations

import queue
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sshd_server import ALIAS, SshServer, monitor_command

from lollma_tui.core.hardware.remote import LinkState, LinkStatus, RemoteHardwareSampler
from lollma_tui.core.hardware.snapshots import SystemSnapshot, is_stale
from lollma_tui.core.hardware.ssh_target import SshTarget

INTERVAL_S = 0.25


class Feed:
    """What a sampler delivered, for a test to wait on."""

    def __init__(self) -> None:
        self.snapshots: queue.Queue[SystemSnapshot] = queue.Queue()
        self.statuses: list[LinkStatus] = []
        self.latest: SystemSnapshot | None = None

    def on_snapshot(self, snapshot: SystemSnapshot) -> None:
        self.snapshots.put(snapshot)

    def next(self, within_s: float = 20.0) -> SystemSnapshot:
        self.latest = self.snapshots.get(timeout=within_s)
        return self.latest

    def drain(self) -> None:
        while not self.snapshots.empty():
            self.latest = self.snapshots.get_nowait()


def wait_until(predicate: Callable[[], object], within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def remote(
    sshd: SshServer, fake_nvml_site: Path
) -> Iterator[Callable[..., tuple[RemoteHardwareSampler, Feed]]]:
    made: list[RemoteHardwareSampler] = []

    def start(**kwargs: object) -> tuple[RemoteHardwareSampler, Feed]:
        feed = Feed()
        kwargs.setdefault("command", monitor_command(fake_nvml_site, INTERVAL_S))
        kwargs.setdefault("ssh_options", sshd.options)
        sampler = RemoteHardwareSampler(
            feed.on_snapshot,
            SshTarget(ALIAS),
            interval_s=INTERVAL_S,
            on_status=feed.statuses.append,
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(sampler)
        sampler.start()
        return sampler, feed

    yield start
    for sampler in made:
        sampler.stop()


def test_the_remote_gpus_arrive_labelled_with_the_host(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]],
) -> None:
    sampler, feed = remote()
    snapshot = feed.next()
    assert snapshot.host == ALIAS
    assert [g.name for g in snapshot.gpus] == ["NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3090"]
    assert snapshot.gpus[1].utilization_percent == 12.0
    assert snapshot.memory is not None and snapshot.memory.total_bytes > 0
    assert snapshot.gpu_summary.startswith("2 GPUs")
    assert sampler.status.state is LinkState.LIVE
    # Stamped with our clock on arrival: fresh by the panel's measure.
    assert not is_stale(snapshot, time.monotonic())
    assert feed.next().tick > snapshot.tick


def test_a_killed_remote_side_goes_stale_and_recovers(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]], sshd: SshServer
) -> None:
    sampler, feed = remote(backoff_initial_s=1.0)
    first = feed.next()
    monitors = [p for p in sshd.sessions() if "monitor" in " ".join(p.cmdline())]
    assert monitors, "the remote monitor should run under sshd"
    for process in monitors:
        process.kill()
    wait_until(lambda: sampler.status.state is LinkState.STALE)
    assert "retrying in 1 s" in sampler.status.message
    feed.drain()
    last = feed.latest or first
    wait_until(lambda: is_stale(last, time.monotonic()), within_s=5)
    # The retry starts a new session, and snapshots flow again.
    wait_until(lambda: sampler.status.state is LinkState.LIVE, within_s=20)
    fresh = feed.next()
    assert fresh.monotonic > last.monotonic and not is_stale(fresh, time.monotonic())
    assert sampler.status.attempts == 2
    assert [s.state for s in feed.statuses].count(LinkState.STALE) >= 1


def test_a_refused_key_says_how_to_set_one_up(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]], sshd: SshServer
) -> None:
    sampler, feed = remote(ssh_options=("-F", str(sshd.wrong_key_config())), backoff_initial_s=5.0)
    wait_until(lambda: sampler.status.state is LinkState.STALE)
    message = sampler.status.message
    assert f"ssh could not log in to {ALIAS} without a password" in message
    assert f"ssh-copy-id {ALIAS}" in message
    assert feed.snapshots.empty()


def test_a_missing_monitor_command_is_explained(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]],
) -> None:
    sampler, _ = remote(command="lollma-tui-not-installed monitor --jsonl", backoff_initial_s=5.0)
    wait_until(lambda: sampler.status.state is LinkState.STALE)
    assert "`lollma-tui-not-installed` is not on gpu-box" in sampler.status.message
    assert "--hw-command" in sampler.status.message


def test_a_new_interval_restarts_the_remote_monitor_without_a_false_alarm(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]],
    fake_nvml_site: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ctrl+B changes the interval: the session ended for that said "ssh session ended (exit
    # 255)" in the chat, and "live again" after it, at every toggle.
    import lollma_tui.core.hardware.remote as remote_module

    # The default command, as this checkout runs it (the far side here has no lollma-tui on PATH).
    monkeypatch.setattr(
        remote_module,
        "default_remote_command",
        lambda interval_s, _port=None: monitor_command(fake_nvml_site, interval_s),
    )
    sampler, feed = remote(command=None)
    feed.next()
    sampler.set_interval(0.5)
    wait_until(lambda: sampler.status.attempts == 2 and sampler.status.state is LinkState.LIVE)
    assert LinkState.STALE not in [s.state for s in feed.statuses]


def test_lines_the_monitor_cannot_read_say_why_at_once(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]],
) -> None:
    # A lollma-tui of another version on the far side: "waiting for the first sample…" for ever,
    # the reason kept where nothing showed it.
    newer = 'while true; do echo \'{"schema":"lollma-hw","v":2}\'; sleep 0.2; done'
    sampler, feed = remote(command=f"sh -c {shlex.quote(newer)}")
    wait_until(lambda: sampler.status.state is LinkState.STALE)
    assert "version 2" in sampler.status.message and "same lollma-tui version" in sampler.status.message
    assert feed.snapshots.empty()

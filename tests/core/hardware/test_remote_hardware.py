"""The hardware of another machine over a real ssh session: two fake GPUs, labelled, and a link
that goes stale when the far side dies and comes back on its own."""

from __future__ import annotations

import contextlib
import queue
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hw_fakes
import psutil
import pytest
from sshd_server import ALIAS, SshServer, monitor_command

from lollma_tui.core.hardware.remote import (
    NOT_HARDWARE_LINES,
    LinkState,
    LinkStatus,
    RemoteHardwareSampler,
)
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

    def start(target: SshTarget | None = None, **kwargs: object) -> tuple[RemoteHardwareSampler, Feed]:
        feed = Feed()
        kwargs.setdefault("command", monitor_command(fake_nvml_site, INTERVAL_S))
        kwargs.setdefault("ssh_options", sshd.options)
        sampler = RemoteHardwareSampler(
            feed.on_snapshot,
            target or SshTarget(ALIAS),
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


def test_a_users_monitor_command_without_an_interval_follows_the_panel_s(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]], fake_nvml_site: Path
) -> None:
    # hw_command = "uvx lollma-tui monitor --jsonl": given our interval at start, but Ctrl+B and
    # + / - never restarted it with another.
    user_command = monitor_command(fake_nvml_site, INTERVAL_S).replace(f" --interval {INTERVAL_S:g}", "")
    sampler, feed = remote(command=user_command)
    assert feed.next().interval_s == INTERVAL_S
    sampler.set_interval(0.5)
    assert sampler.command.endswith("--interval 0.5")
    wait_until(lambda: sampler.status.attempts == 2 and sampler.status.state is LinkState.LIVE)
    assert any(feed.next().interval_s == 0.5 for _ in range(20))


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


TWELVE_GPUS_SITE = """\
import importlib.util, sys
spec = importlib.util.spec_from_file_location("hw_fakes", {hw_fakes!r})
hw_fakes = importlib.util.module_from_spec(spec)
sys.modules["hw_fakes"] = hw_fakes
spec.loader.exec_module(hw_fakes)
fake = hw_fakes.FakeNvml([
    hw_fakes.FakeGpu(name=f"NVIDIA GeForce RTX 3090 Ti rev {{i}}", bus_id=f"00000000:{{i + 1:02x}}:00.0")
    for i in range(12)
])
module = fake.module()
module.nvmlInitWithFlags = lambda flags: fake.nvmlInit()
sys.modules["pynvml"] = module
"""


def test_a_rig_whose_gpu_line_is_too_long_still_arrives(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]], tmp_path: Path
) -> None:
    # Twelve GPUs wrote a summary longer than the reader took: the reader thread died on the
    # first line and the panel waited for ever.
    site = tmp_path / "twelve-gpus"
    site.mkdir()
    (site / "sitecustomize.py").write_text(TWELVE_GPUS_SITE.format(hw_fakes=hw_fakes.__file__))
    sampler, feed = remote(command=monitor_command(site, INTERVAL_S))
    snapshot = feed.next()
    assert len(snapshot.gpus) == 12
    assert snapshot.gpu_summary.startswith("12 GPUs: NVIDIA GeForce RTX 3090 Ti rev 0, ")
    assert snapshot.gpu_summary.endswith("…") and len(snapshot.gpu_summary) <= 300
    assert sampler.status.state is LinkState.LIVE


def test_a_line_with_a_bad_field_is_skipped_and_the_next_ones_arrive(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]], fake_nvml_site: Path
) -> None:
    # A lollma-hw line without wall_time raised an error the reader did not catch: dead thread.
    bad = shlex.quote('{"schema":"lollma-hw","v":1,"interval_s":1}')
    command = f"echo {bad}; exec {monitor_command(fake_nvml_site, INTERVAL_S)}"
    sampler, feed = remote(command=command)
    assert feed.next().gpus
    assert any("wall_time" in problem for problem in sampler.problems)
    assert sampler.status.state is LinkState.LIVE


def test_an_unexpected_failure_goes_stale_and_is_retried_rather_than_ending_the_reader(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]],
) -> None:
    # A NUL in the command (from a config file) makes starting ssh raise ValueError.
    sampler, feed = remote(command="lollma-tui\0monitor", backoff_initial_s=0.1)
    wait_until(lambda: sampler.status.attempts >= 2, within_s=10)
    assert sampler.running
    stale = [s for s in feed.statuses if s.state is LinkState.STALE]
    assert stale and "null byte" in stale[0].message
    assert any("retrying in" in s.message for s in stale)


def junk_then_monitor(site: Path) -> str:
    """Forty lines a JSON parser refuses each its own way, then the real monitor."""
    junk = "i=0; while [ $i -lt 40 ]; do i=$((i+1)); printf '%*s{\\n' $i ''; done"
    return f"{junk}; exec {monitor_command(site, INTERVAL_S)}"


def test_unreadable_output_is_reported_once_by_its_kind(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]], fake_nvml_site: Path
) -> None:
    # Each junk line set a new status with the parser's detail: a chat notice per line.
    sampler, feed = remote(command=junk_then_monitor(fake_nvml_site))
    feed.next()  # the junk came first on the same stream: all of it has been read
    stale = [s for s in feed.statuses if s.state is LinkState.STALE]
    assert [s.message for s in stale] == [NOT_HARDWARE_LINES]
    assert stale[0].session_up and not stale[0].message.startswith(ALIAS)
    assert sum("not JSON" in problem for problem in sampler.problems) == 20  # the details are kept


def plain_ssh_config(tmp_path: Path, key: Path, known_hosts: Path) -> tuple[str, ...]:
    """Options for ssh to reach the test sshd by address and port, as a user would write it."""
    config = tmp_path / "ssh_config_by_address"
    config.write_text(
        f"Host *\n    IdentityFile {key}\n    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {known_hosts}\n    GlobalKnownHostsFile /dev/null\n"
        "    StrictHostKeyChecking yes\n    LogLevel ERROR\n"
    )
    return ("-F", str(config))


def test_key_advice_for_a_target_with_a_port_gives_commands_that_run(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]], sshd: SshServer, tmp_path: Path
) -> None:
    # "ssh-copy-id user@127.0.0.1:60829" takes the port for part of the host name.
    sshd.wrong_key_config()  # writes the key the server does not know
    options = plain_ssh_config(tmp_path, sshd.folder / "other_key", sshd.folder / "known_hosts")
    user = psutil.Process().username()
    target = SshTarget.parse(f"{user}@127.0.0.1:{sshd.port}")
    sampler, _ = remote(target=target, ssh_options=options, backoff_initial_s=5.0)
    wait_until(lambda: sampler.status.state is LinkState.STALE)
    message = sampler.status.message
    assert "without a password" in message, message
    assert f"`ssh-copy-id -p {sshd.port} {user}@127.0.0.1`" in message
    assert f"`ssh -p {sshd.port} {user}@127.0.0.1 true`" in message


def test_host_key_advice_for_a_target_with_a_port_gives_a_command_that_runs(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]], sshd: SshServer, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts_empty"
    empty.touch()
    options = plain_ssh_config(tmp_path, sshd.folder / "client_key", empty)
    target = SshTarget.parse(f"127.0.0.1:{sshd.port}")
    sampler, _ = remote(target=target, ssh_options=options, backoff_initial_s=5.0)
    wait_until(lambda: sampler.status.state is LinkState.STALE)
    message = sampler.status.message
    assert "host key is not known" in message, message
    assert f"run `ssh -p {sshd.port} 127.0.0.1` once" in message


def test_a_changed_host_key_is_not_called_unknown(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]], sshd: SshServer, tmp_path: Path
) -> None:
    # "host key is not known yet: run ssh once to accept it": ssh refuses exactly that, and a
    # changed key may be someone in between.
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    key_type, key = other.with_suffix(".pub").read_text().split()[:2]
    changed = tmp_path / "known_hosts_changed"
    changed.write_text(f"[127.0.0.1]:{sshd.port} {key_type} {key}\n")
    options = plain_ssh_config(tmp_path, sshd.folder / "client_key", changed)
    sampler, _ = remote(
        target=SshTarget.parse(f"127.0.0.1:{sshd.port}"), ssh_options=options, backoff_initial_s=5.0
    )
    wait_until(lambda: sampler.status.state is LinkState.STALE)
    message = sampler.status.message
    assert "host key has CHANGED" in message and "not known yet" not in message, message
    assert "ssh-keygen" in message and " -R " in message


@pytest.mark.parametrize(
    ("written", "command"),
    [
        ("gpu-box", "ssh gpu-box"),
        ("ann@gpu-box:2222", "ssh -p 2222 ann@gpu-box"),
        ("[fe80::1]:2222", "ssh -p 2222 fe80::1"),
        ("ann@[::1]", "ssh ann@::1"),
    ],
)
def test_a_target_is_written_for_a_terminal_as_ssh_takes_it(written: str, command: str) -> None:
    assert SshTarget.parse(written).ssh_command() == command


def test_a_monitor_that_stops_writing_is_restarted_with_the_reason(
    remote: Callable[..., tuple[RemoteHardwareSampler, Feed]], sshd: SshServer
) -> None:
    # A stopped monitor (or one hung in a driver call) keeps the link up and says nothing: the
    # reader waited on it for ever, the panel frozen on its last figures.
    sampler, feed = remote(silence_floor_s=2.0, backoff_initial_s=0.2)
    feed.next()
    monitors = [p for p in sshd.sessions() if "monitor" in " ".join(p.cmdline())]
    assert monitors, "the remote monitor should run under sshd"
    try:
        for process in monitors:
            process.suspend()
        wait_until(lambda: sampler.status.attempts == 2, within_s=15)
        stale = [s.message for s in feed.statuses if s.state is LinkState.STALE]
        assert stale[0] == "no sample from gpu-box for 2 s", stale
        wait_until(lambda: sampler.status.state is LinkState.LIVE)
        feed.drain()
        assert feed.next().host == ALIAS
    finally:
        for process in monitors:
            with contextlib.suppress(psutil.Error):
                process.kill()


@pytest.mark.parametrize(
    ("given", "runs"),
    [
        # The README's example: the interval and the server's port are added, as by default.
        ("uvx lollma-tui monitor --jsonl", "uvx lollma-tui monitor --jsonl --interval 2 --port 8080"),
        ("lollma-tui monitor --jsonl --port 9000", "lollma-tui monitor --jsonl --port 9000 --interval 2"),
        ("lollma-tui monitor --jsonl --interval=5", "lollma-tui monitor --jsonl --interval=5 --port 8080"),
        # Another program keeps its own options.
        ("/opt/hw-report --json", "/opt/hw-report --json"),
        ("lollma-tui monitor", "lollma-tui monitor"),
    ],
)
def test_a_user_s_monitor_command_gets_the_interval_and_port_it_leaves_out(given: str, runs: str) -> None:
    # Used as written, `uvx lollma-tui monitor --jsonl` lost the model server's process row and
    # kept sampling every second when the panel was hidden.
    sampler = RemoteHardwareSampler(
        lambda _: None, SshTarget("box"), interval_s=2.0, command=given, server_port=8080
    )
    assert sampler.command == runs

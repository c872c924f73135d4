"""The hardware of another machine, read over the user's own ssh, as ordinary snapshots.

`RemoteHardwareSampler` runs ``ssh -T -o BatchMode=yes HOST 'lollma-tui monitor --jsonl …'``
and turns each line back into a `SystemSnapshot` labelled with the host; it offers the same
controls as `HardwareSampler`, so the hardware feed can run either. No port is opened on either
machine: the data rides the ssh session's stdout.

When the session ends (network gone, machine rebooted, monitor killed) the link turns STALE,
its status says why, and ssh is started again with exponential backoff (1 s → 30 s); the
snapshots already delivered age and read as stale by `is_stale`. A far side that stops writing
while the link stays up (a stopped monitor, a driver call that hangs) is a session ended by a
watchdog, and retried the same way. A password or host-key prompt is never answered
(BatchMode): the status says how to set up a key instead.
"""

from __future__ import annotations

import collections
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from lollma_tui.core.checked import WireError
from lollma_tui.core.hardware.sampler import (
    DEFAULT_INTERVAL_S,
    PidsProvider,
    SnapshotCallback,
    validate_interval,
)
from lollma_tui.core.hardware.snapshot_lines import MAX_LINE, OtherVersionError, SnapshotLineError, decode
from lollma_tui.core.hardware.ssh_target import (
    SshTarget,
    completed_remote_command,
    default_remote_command,
    key_setup_hint,
)

log = logging.getLogger(__name__)

STDERR_KEPT = 4096
"""Bytes of ssh's error output kept to explain a failure."""
SILENCE_FLOOR_S = 10.0
"""A session ends after max(this, 5 × the far side's interval) without a line."""
FIRST_LINE_WITHIN_S = 60.0
"""Silence allowed before the first line: the far side may be starting slowly (`uvx` installing)."""
NOT_HARDWARE_LINES = (
    "its output is not lollma-tui hardware lines (is the remote command `lollma-tui monitor --jsonl`?)"
)
BAD_HARDWARE_LINES = (
    "its hardware lines lack fields this lollma-tui needs — run the same lollma-tui version on both machines"
)


class LinkState(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    STALE = "stale"
    """The session ended; the last snapshot is old, and a retry is scheduled."""
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class LinkStatus:
    state: LinkState
    message: str
    since: float
    """Monotonic time of the change."""
    attempts: int = 0
    """ssh sessions started so far."""
    session_up: bool = False
    """The ssh session still runs: a STALE status then means its output cannot be read, and
    nothing is retried while it runs."""


StatusCallback = Callable[[LinkStatus], None]


def explain_exit(code: int | None, stderr: str, target: SshTarget, command: str) -> str:
    """One line on why an ssh session ended, with what to do about it."""
    tail = " ".join(stderr.split())[-300:]
    lowered = stderr.lower()
    if "permission denied" in lowered or "too many authentication failures" in lowered:
        return f"ssh could not log in to {target} without a password — " + key_setup_hint(target)
    if "identification has changed" in lowered or ("host key for" in lowered and "has changed" in lowered):
        # Not "not known yet": accepting it again is what ssh refuses here, and it may be an attack.
        removal = next(
            (line.strip() for line in stderr.splitlines() if "ssh-keygen" in line and " -R " in line),
            f"ssh-keygen -R {target.host}",
        )
        return (
            f"{target}'s host key has CHANGED since ssh last saw it (a reinstalled machine, or someone "
            f"in between): check why before trusting it; then remove the old key with `{removal}`"
        )
    if "host key verification failed" in lowered:
        return (
            f"{target}'s host key is not known yet: run `{target.ssh_command()}` once in a terminal "
            "to accept it"
        )
    if "could not resolve hostname" in lowered:
        return f"ssh cannot find the host {target.host}"
    if "connection refused" in lowered or "timed out" in lowered or "no route to host" in lowered:
        return f"ssh cannot reach {target}: {tail}"
    if code == 127 or "command not found" in lowered or "no such file" in lowered:
        return (
            f"`{command.split()[0]}` is not on {target}: install lollma-tui there, "
            "or give the command with --hw-command (e.g. `uvx lollma-tui monitor --jsonl`)"
        )
    if code is None or code < 0:
        return f"the ssh session to {target} was cut"
    return f"the ssh session to {target} ended (exit {code})" + (f": {tail}" if tail else "")


class RemoteHardwareSampler:
    """Snapshots of `target`'s hardware, delivered to `on_snapshot` on a reader thread."""

    def __init__(
        self,
        on_snapshot: SnapshotCallback,
        target: SshTarget,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        command: str | None = None,
        server_port: int | None = None,
        ssh: str = "ssh",
        ssh_options: Sequence[str] = (),
        on_status: StatusCallback | None = None,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        silence_floor_s: float = SILENCE_FLOOR_S,
        first_line_within_s: float = FIRST_LINE_WITHIN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_snapshot = on_snapshot
        self.target = target
        self._interval_s = validate_interval(interval_s)
        self._command = command
        self._server_port = server_port
        self._ssh = ssh
        self._ssh_options = tuple(ssh_options)
        self._on_status = on_status
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._silence_floor_s = silence_floor_s
        self._first_line_within_s = first_line_within_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._attempts = 0
        self._restart = False
        self._status = LinkStatus(LinkState.STOPPED, "not started", clock())
        self._problems: collections.deque[str] = collections.deque(maxlen=20)

    # -- the HardwareSampler controls ---------------------------------------------------------

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def status(self) -> LinkStatus:
        with self._lock:
            return self._status

    @property
    def problems(self) -> tuple[str, ...]:
        """Recent lines or entries that could not be read, with reasons (newest last)."""
        with self._lock:
            return tuple(self._problems)

    @property
    def command(self) -> str:
        """What runs on the other machine."""
        if self._command:
            return completed_remote_command(self._command, self._interval_s, self._server_port)
        return default_remote_command(self._interval_s, self._server_port)

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lollma-remote-hardware", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> bool:
        self._stop.set()
        self._end_session()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        self._thread = None
        self._set_status(LinkState.STOPPED, "stopped")
        return True

    def close(self) -> None:
        self.stop()

    def set_interval(self, seconds: float) -> None:
        """A new interval restarts the remote monitor with it (unless the command is the user's)."""
        value = validate_interval(seconds)
        if value == self._interval_s:
            return
        before = self.command
        self._interval_s = value
        # Also a user's command that runs our monitor without --interval (the host's hw_command):
        # it is given ours, and Ctrl+B left it at the old one, 5 s after a reconnect while hidden.
        if self.command != before:
            self._restart = True
            self._end_session()  # the reader loop starts the next one at once

    def refresh_now(self) -> None:
        """The remote side samples on its own schedule; nothing to hurry."""

    def set_process_ids_provider(self, provider: PidsProvider | None) -> None:
        """Local pids mean nothing over there: the remote command follows the server's port."""
        del provider

    # -- reader thread ------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self._backoff_initial_s
        while not self._stop.is_set():
            delivered = self._guarded_session()
            if self._stop.is_set():
                break
            if self._restart:
                self._restart = False
                continue
            if delivered:
                backoff = self._backoff_initial_s
            reason = self.status.message
            self._set_status(LinkState.STALE, f"{reason} — retrying in {backoff:g} s")
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self._backoff_max_s)

    def _guarded_session(self) -> bool:
        # A fault of ours must not end the reader for good (the panel would wait for ever):
        # it is one more reason for a stale link, retried like the others.
        try:
            return self._session()
        except Exception as error:
            log.exception("reading the hardware of %s failed", self.target)
            self._set_status(LinkState.STALE, f"reading the hardware of {self.target} failed: {error}")
            return False

    def _session(self) -> bool:
        """Run one ssh session to its end; True when it delivered at least one snapshot."""
        command = self.command
        argv = self.target.argv(command, ssh=self._ssh, options=self._ssh_options)
        with self._lock:
            self._attempts += 1
        self._set_status(LinkState.CONNECTING, f"connecting to {self.target}…")
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as error:
            self._set_status(LinkState.STALE, f"cannot run {self._ssh}: {error.strerror or error}")
            return False
        with self._lock:
            self._proc = proc
        if self._stop.is_set():
            self._end_session()
        stderr = _Drain(proc)
        watchdog = _Watchdog(
            self.target.label,
            self._interval_s,
            first_line_s=self._first_line_within_s,
            floor_s=self._silence_floor_s,
            end=self._end_session,
        )
        try:
            delivered = self._read(proc, watchdog)
        finally:
            watchdog.cancel()
            self._end_session()
            code = proc.wait()
            stderr.join()
            with self._lock:
                self._proc = None
        if not self._stop.is_set() and not self._restart:  # a restart for a new interval is no fault
            reason = watchdog.reason or explain_exit(code, stderr.text(), self.target, command)
            self._set_status(LinkState.STALE, reason)
        return delivered

    def _read(self, proc: subprocess.Popen[bytes], watchdog: _Watchdog) -> bool:
        assert proc.stdout is not None
        delivered = False
        told = False
        label = self.target.label
        while not self._stop.is_set():
            line = proc.stdout.readline(MAX_LINE + 1)
            if not line:
                return delivered
            watchdog.heard()
            if not line.endswith(b"\n"):
                self._note(f"a line longer than {MAX_LINE} bytes was skipped")
                _skip_rest_of_line(proc)
                continue
            try:
                decoded = decode(line, received_at=self._clock(), host=label)
            except WireError as error:
                self._note(str(error))
                if not delivered and not told:
                    # Nothing readable yet (another version on the far side, a wrapper that
                    # prints text): say why, once, rather than wait for a sample that never comes.
                    told = True
                    self._set_status(LinkState.STALE, _unreadable(error), session_up=True)
                continue
            watchdog.heard(decoded.snapshot.interval_s)
            for problem in decoded.problems:
                self._note(problem)
            if not delivered:
                delivered = True
                self._set_status(LinkState.LIVE, f"{label}: live over ssh", session_up=True)
            try:
                self._on_snapshot(decoded.snapshot)
            except Exception:
                log.exception("on_snapshot callback failed")
        return delivered

    def _end_session(self) -> None:
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()

    def _note(self, problem: str) -> None:
        with self._lock:
            self._problems.append(problem)

    def _set_status(self, state: LinkState, message: str, *, session_up: bool = False) -> None:
        with self._lock:
            self._status = LinkStatus(state, message, self._clock(), self._attempts, session_up)
            status = self._status
        if self._on_status is not None:
            try:
                self._on_status(status)
            except Exception:
                log.exception("on_status callback failed")


def _unreadable(error: WireError) -> str:
    """The kind of trouble with the far side's output, in words that do not change per line (the
    parser's detail for each line is in `problems`)."""
    if isinstance(error, OtherVersionError):
        return str(error)
    if isinstance(error, SnapshotLineError):
        return NOT_HARDWARE_LINES
    return BAD_HARDWARE_LINES


class _Watchdog(threading.Thread):
    """Ends a session whose far side went quiet while the link stays up (a stopped monitor, a
    hung NVML call there): the read would wait for ever, and ssh's keep-alives see nothing wrong.

    It sleeps until the deadline the last line set, so it wakes about once per silence limit,
    and never polls; a line that brings the deadline nearer (the first one, a shorter interval)
    wakes it to sleep less.
    """

    def __init__(
        self, host: str, interval_s: float, *, first_line_s: float, floor_s: float, end: Callable[[], None]
    ) -> None:
        super().__init__(name="lollma-remote-watchdog", daemon=True)
        self._host = host
        self._floor_s = floor_s
        self._end = end
        self._limit_s = max(floor_s, 5 * interval_s)
        # (deadline, limit) in one attribute: the reader replaces it whole, so the watchdog never
        # reads a new limit with an old deadline.
        self._due = (time.monotonic() + first_line_s, first_line_s)
        self._cancelled = False
        self._wake = threading.Event()
        self.reason: str | None = None
        """Why it ended the session; None while it has not."""
        self.start()

    def heard(self, interval_s: float | None = None) -> None:
        """A line came. `interval_s`: the far side's own interval, which sets the limit from now
        on (a user's --hw-command may sample slower than we asked)."""
        if interval_s is not None:
            self._limit_s = max(self._floor_s, 5 * interval_s)
        deadline = time.monotonic() + self._limit_s
        sooner = deadline < self._due[0]
        self._due = (deadline, self._limit_s)
        if sooner:
            self._wake.set()

    def cancel(self) -> None:
        self._cancelled = True
        self._wake.set()
        self.join()

    def run(self) -> None:
        while True:
            deadline, limit = self._due
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wake.wait(left)
            self._wake.clear()
            if self._cancelled:
                return
        if self._cancelled:  # the session ended on its own just as the time ran out
            return
        self.reason = f"no sample from {self._host} for {limit:g} s"
        self._end()


class _Drain(threading.Thread):
    """Reads ssh's error output as it comes (a full pipe would stall ssh), keeping the tail."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        super().__init__(name="lollma-remote-stderr", daemon=True)
        self._pipe = proc.stderr
        self._tail = bytearray()
        self.start()

    def run(self) -> None:
        if self._pipe is None:
            return
        with self._pipe:
            while chunk := self._pipe.readline(STDERR_KEPT):
                self._tail = (self._tail + chunk)[-STDERR_KEPT:]

    def text(self) -> str:
        return self._tail.decode("utf-8", "replace")


def _skip_rest_of_line(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    while True:
        part = proc.stdout.readline(MAX_LINE)
        if not part or part.endswith(b"\n"):
            return

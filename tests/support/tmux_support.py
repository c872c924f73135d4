"""Driving the installed `lollma-tui` command in tmux and reading the screen, as a person would."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import psutil
import pytest


class Tmux:
    """One private tmux server (its own socket), so tests never touch the user's sessions."""

    def __init__(self, socket: Path) -> None:
        tmux = shutil.which("tmux")
        assert tmux is not None, "tmux is required for this test (CI installs it)"
        self.base = [tmux, "-S", str(socket)]

    def run(self, *args: str) -> str:
        return subprocess.run(
            [*self.base, *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout

    def has_session(self, target: str) -> bool:
        found = subprocess.run([*self.base, "has-session", "-t", target], capture_output=True, timeout=30)
        return found.returncode == 0

    def screen(self, target: str) -> str:
        return self.run("capture-pane", "-p", "-t", target)

    def pane_dead(self, target: str) -> bool:
        return self.run("display", "-p", "-t", target, "#{pane_dead}").strip() == "1"

    def exit_status(self, target: str, timeout: float, pid: int | None = None) -> str:
        """How the dead pane's process ended: its exit status ("0"), or "signal N".

        tmux marks a pane dead when its terminal closes, which can come before it has collected
        the process's status: until then both read empty. On a loaded machine tmux 3.3 has been
        seen to leave the process a zombie for good; given its `pid`, the status is then read
        where the kernel keeps it for the parent (the last field of /proc/PID/stat)."""
        deadline = time.monotonic() + timeout
        while True:
            status, signal = (
                self.run("display", "-p", "-t", target, "#{pane_dead_status}:#{pane_dead_signal}")
                .strip()
                .split(":")
            )
            if status:
                return status
            if signal:
                return f"signal {signal}"
            if pid is not None and (code := zombie_exit_code(pid)) is not None:
                return str(code >> 8) if code & 0x7F == 0 else f"signal {code & 0x7F}"
            if time.monotonic() > deadline:
                return ""
            time.sleep(0.05)

    def wait_for(self, target: str, condition: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen(target)
            if condition(text):
                return text
            if time.monotonic() > deadline:
                size = self.run("display", "-p", "-t", target, "#{window_width}x#{window_height}").strip()
                raise AssertionError(f"screen ({size}) never matched; last screen:\n{text}")
            time.sleep(0.1)

    def app_process(self, target: str) -> psutil.Process:
        """The `lollma-tui` process running in the pane (the pane's shell or `env` may start it,
        and name it in their own command lines)."""
        pane = psutil.Process(int(self.run("display", "-p", "-t", target, "#{pane_pid}")))
        family = [pane, *pane.children(recursive=True)]
        return next(p for p in family if any(Path(arg).name == "lollma-tui" for arg in p.cmdline()[:2]))

    def kill_server(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(tmp_path / "tmux.sock")
    yield session
    session.kill_server()


def app_folders(tmp_path: Path, session_cache: Path) -> dict[str, Path]:
    """The app's folders under the test's own, with the cache where the demo model was built."""
    return {
        "LOLLMA_DATA_DIR": tmp_path / "data",
        "LOLLMA_STATE_DIR": tmp_path / "state",
        "LOLLMA_CONFIG_DIR": tmp_path / "config",
        "LOLLMA_CACHE_DIR": session_cache,
    }


def command_line(env: Mapping[str, object], *args: str) -> str:
    """The shell line that starts the installed command with `env` and `args` in a pane."""
    command = shutil.which("lollma-tui", path=str(Path(sys.executable).parent))
    assert command is not None, "lollma-tui is not installed in this environment"
    # pytest imports readline, and GNU readline exports COLUMNS=80 and LINES=24 into the process
    # environment (not os.environ): tmux would pass them on and the app would ignore the pane size.
    line = "env -u COLUMNS -u LINES " + " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items())
    return f"{line} {shlex.quote(command)} " + " ".join(shlex.quote(a) for a in args)


def zombie_exit_code(pid: int) -> int | None:
    """The wait status of `pid` if it has ended and its parent has not collected it yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is the state; the exit code is the stat line's 52nd field (Linux 3.5+).
    return int(fields[-1]) if fields[0] == "Z" else None

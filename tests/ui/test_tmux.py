"""Run the installed `lollma-tui` command in tmux and read the screen, as a person would."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


class Tmux:
    def __init__(self, socket: Path) -> None:
        tmux = shutil.which("tmux")
        assert tmux is not None, "tmux is required for this test (CI installs it)"
        self.base = [tmux, "-S", str(socket)]

    def run(self, *args: str) -> str:
        return subprocess.run(
            [*self.base, *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "chat")

    def wait_for(self, condition: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                size = self.run("display", "-p", "-t", "chat", "#{window_width}x#{window_height}").strip()
                raise AssertionError(f"screen ({size}) never matched; last screen:\n{text}")
            time.sleep(0.1)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(tmp_path / "tmux.sock")
    yield session
    subprocess.run([*session.base, "kill-server"], capture_output=True, timeout=30)


def test_installed_command_streams_a_reply_with_stats(
    tmux: Tmux, tmp_path: Path, demo_gguf: Path, session_cache: Path
) -> None:
    command = shutil.which("lollma-tui", path=str(Path(sys.executable).parent))
    assert command is not None
    env = {
        "LOLLMA_DATA_DIR": tmp_path / "data",
        "LOLLMA_STATE_DIR": tmp_path / "state",
        "LOLLMA_CONFIG_DIR": tmp_path / "config",
        "LOLLMA_CACHE_DIR": session_cache,  # where demo_gguf assembled the demo model
    }
    # GNU readline (imported by pytest) puts COLUMNS/LINES for 80x24 into the C environment,
    # where tmux would hand them to the app: drop them so the app sizes itself by the pane.
    line = "env -u COLUMNS -u LINES " + " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items())
    line += f" {shlex.quote(command)} --max-tokens 60 --ctx 2048"
    tmux.run("new-session", "-d", "-s", "chat", "-x", "110", "-y", "32", line)

    tmux.wait_for(lambda s: "loaded in" in s and "ready" in s, timeout=90)
    tmux.run("send-keys", "-t", "chat", "explain quantum entanglement", "Enter")

    # While the reply streams the screen says so, and the text grows between looks.
    streaming = tmux.wait_for(lambda s: "writing…" in s, timeout=60)
    later = tmux.wait_for(lambda s: "to first" in s, timeout=90)
    assert "you" in later and "explain quantum entanglement" in later
    assert "tok/s" in later
    reply_lines = later.split("explain quantum entanglement", 1)[1]
    assert len(reply_lines.split()) > len(streaming.split("explain quantum entanglement", 1)[1].split())

    tmux.run("send-keys", "-t", "chat", "C-q")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        result = subprocess.run([*tmux.base, "has-session", "-t", "chat"], capture_output=True, timeout=30)
        if result.returncode != 0:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("lollma-tui did not quit on Ctrl+Q")

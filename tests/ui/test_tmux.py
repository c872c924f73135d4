"""Run the installed `lollma-tui` command in tmux and read the screen, as a person would."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tmux_support import Tmux, app_folders, command_line

pytestmark = pytest.mark.slow


def test_installed_command_streams_a_reply_with_stats(tmux: Tmux, tmp_path: Path) -> None:
    # A new user's first run: no arguments (the bundled SmolLM2 demo), every folder fresh — on
    # whatever CPU this is (where llama.cpp's repacked weights crash, the app falls back).
    folders = app_folders(tmp_path, tmp_path / "cache")
    line = command_line(folders, "--max-tokens", "60", "--ctx", "2048")
    tmux.run("new-session", "-d", "-s", "chat", "-x", "110", "-y", "32", line)

    tmux.wait_for("chat", lambda s: "loaded in" in s and "ready" in s, timeout=90)
    tmux.run("send-keys", "-t", "chat", "explain quantum entanglement", "Enter")

    # While the reply streams the screen says so, and the text grows between looks.
    streaming = tmux.wait_for("chat", lambda s: "writing…" in s, timeout=60)
    later = tmux.wait_for("chat", lambda s: "to first" in s, timeout=90)
    assert "you" in later and "explain quantum entanglement" in later
    assert "tok/s" in later
    reply_lines = later.split("explain quantum entanglement", 1)[1]
    assert len(reply_lines.split()) > len(streaming.split("explain quantum entanglement", 1)[1].split())

    tmux.run("send-keys", "-t", "chat", "C-q")
    deadline = time.monotonic() + 15
    while tmux.has_session("chat"):
        assert time.monotonic() < deadline, "lollma-tui did not quit on Ctrl+Q"
        time.sleep(0.2)

"""In a real terminal (tmux), a reply's escape sequences neither retitle the pane nor set the
clipboard: the installed command chats with the Ollama test server, which sends them as a real
server would (JSON's ``\\u001b``)."""

from __future__ import annotations

import time
from pathlib import Path

from ollama_server import OllamaTestServer
from ollama_server.engines import Script
from tmux_support import Tmux, app_folders, command_line

HOSTILE_REPLY = "Look \x1b]2;PWNED\x1b\\here, \x1b]52;c;cHduZWQ=\x1b\\copied \x1b[2Jand done."


def test_a_reply_cannot_retitle_the_pane_or_set_the_clipboard(
    tmux: Tmux, tmp_path: Path, session_cache: Path, ollama_server: OllamaTestServer
) -> None:
    ollama_server.queue_reply(Script(text=HOSTILE_REPLY))
    folders = app_folders(tmp_path, session_cache)
    line = command_line(
        folders, "--backend", "ollama", "--ollama-host", ollama_server.host, "--model", "tinyllama:1b-q4_K_M"
    )
    tmux.run("new-session", "-d", "-s", "chat", "-x", "110", "-y", "32", line)
    # Applications may set the clipboard through OSC 52 (tmux then fills a paste buffer).
    tmux.run("set-option", "-s", "set-clipboard", "on")
    title_before = tmux.run("display", "-p", "-t", "chat", "#{pane_title}").strip()

    tmux.wait_for("chat", lambda s: "ready" in s, timeout=60)
    tmux.run("send-keys", "-t", "chat", "hello", "Enter")
    shown = tmux.wait_for("chat", lambda s: "and done." in s and "to first" in s, timeout=60)

    assert "Look here, copied and done." in shown  # each sequence goes whole
    assert tmux.run("display", "-p", "-t", "chat", "#{pane_title}").strip() == title_before
    assert "pwned" not in tmux.run("list-buffers", "-F", "#{buffer_sample}")

    tmux.run("send-keys", "-t", "chat", "C-q")
    deadline = time.monotonic() + 15
    while tmux.has_session("chat"):
        assert time.monotonic() < deadline, "lollma-tui did not quit on Ctrl+Q"
        time.sleep(0.2)

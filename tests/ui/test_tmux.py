"""Run the installed `lollma-tui` command in tmux and read the screen, as a person would."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from openai_server import Flavour, OpenAITestServer, Script
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


def test_installed_command_on_an_openai_server_streams_a_reply_with_stats(tmux: Tmux, tmp_path: Path) -> None:
    # An OpenAI-compatible server with llama-server's dialect, streaming at 40 tokens/s so the
    # reply is seen growing.
    words = " ".join(f"word{i}" for i in range(120))
    with OpenAITestServer(Flavour.LLAMA_SERVER, tokens_per_second=40) as server:
        server.default = Script(text=f"Entanglement links particles. {words}")
        folders = app_folders(tmp_path, tmp_path / "cache")
        config = folders["LOLLMA_CONFIG_DIR"] / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(
            '[[hosts]]\nname = "den"\nkind = "ollama"\nurl = "den.invalid:11434"\n\n'
            '[[hosts]]\nname = "broken"\nkind = "tgi"\n'
        )
        line = command_line(folders, "--backend", "openai", "--base-url", server.base_url)
        tmux.run("new-session", "-d", "-s", "oai", "-x", "110", "-y", "32", line)

        tmux.wait_for("oai", lambda s: "ready on the server" in s and "llama-server" in s, timeout=60)
        # The config file's host entries: the bad one is reported, the good one is listed.
        tmux.wait_for("oai", lambda s: "'tgi' is not one of" in s, timeout=10)
        tmux.run("send-keys", "-t", "oai", "F4")
        tmux.wait_for("oai", lambda s: "den.invalid" in s and f"127.0.0.1:{server.port}" in s, timeout=20)
        tmux.run("send-keys", "-t", "oai", "Escape")
        # Keys typed straight after Escape would read as Alt+key: wait until the view has gone.
        tmux.wait_for("oai", lambda s: "Enter moves the chat there" not in s, timeout=10)
        tmux.run("send-keys", "-t", "oai", "explain quantum entanglement", "Enter")
        streaming = tmux.wait_for("oai", lambda s: "writing…" in s and "Entanglement" in s, timeout=30)
        done = tmux.wait_for("oai", lambda s: "to first token" in s, timeout=30)
        assert "explain quantum entanglement" in done and "tok/s" in done
        assert "word119" in done or len(done.split()) > len(streaming.split())
        # The figures are the server's own: llama-server's timings give the prompt speed too.
        assert "prompt" in done.split("to first token", 1)[1].splitlines()[0]
        assert server.chat_requests()[-1].body["messages"][-1]["content"] == "explain quantum entanglement"

        tmux.run("send-keys", "-t", "oai", "C-q")
        deadline = time.monotonic() + 15
        while tmux.has_session("oai"):
            assert time.monotonic() < deadline, "lollma-tui did not quit on Ctrl+Q"
            time.sleep(0.2)

"""--backend openai, --base-url, --api-key-env, --hw-host and --hw-command on the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lollma_tui.cli import build_parser, startup_options
from lollma_tui.core.settings import BackendKind


def run(*args: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("lollma-tui", path=str(Path(sys.executable).parent))
    assert command is not None
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=60, env=dict(os.environ))


def options(*args: str):  # type: ignore[no-untyped-def]
    return startup_options(build_parser().parse_args(list(args)))


def test_openai_flags_reach_the_start_up_options() -> None:
    chosen = options(
        "--backend", "openai", "--base-url", "gpu-box:8000", "--api-key-env", "VLLM_KEY", "--model", "qwen3",
        "--hw-host", "me@gpu-box:2222", "--hw-command", "uvx lollma-tui monitor --jsonl",
    )  # fmt: skip
    assert chosen.load.backend is BackendKind.OPENAI and chosen.load.model == "qwen3"
    assert chosen.openai_base_url == "http://gpu-box:8000/v1"
    assert chosen.openai_api_key_env == "VLLM_KEY"
    assert chosen.hw_host == "me@gpu-box:2222"
    assert chosen.hw_command == "uvx lollma-tui monitor --jsonl"
    assert not chosen.demo


def test_without_a_base_url_the_environment_decides_later() -> None:
    chosen = options("--backend", "openai")
    assert chosen.openai_base_url is None and chosen.load.model == ""


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--backend", "openai", "--base-url", "ftp://box/v1"), "must start with http:// or https://"),
        (("--backend", "openai", "--base-url", "http://box:99999/v1"), "port is not a number"),
        (("--hw-host", "-oProxyCommand=touch /tmp/x"), "expected [user@]host[:port]"),
        (("--hw-host", "box:0"), "port must be a number from 1 to 65535"),
        (("--hw-command", "monitor"), "--hw-command needs --hw-host"),
    ],
)
def test_bad_remote_flags_end_with_one_line(args: tuple[str, ...], words: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lollma-tui: error:"), result.stderr
    assert words in lines[0]


@pytest.mark.parametrize(
    ("host", "words"), [("http://[::1", "not a server address"), (":99999", "not a number from 1 to 65535")]
)
def test_a_bad_ollama_host_is_refused_at_start_whatever_the_backend(host: str, words: str) -> None:
    # On llama.cpp the flag is for a later /backend ollama: it was only checked then.
    from lollma_tui.cli import CliError

    with pytest.raises(CliError, match=words):
        options("--demo", "smollm2", "--ollama-host", host)
    with pytest.raises(CliError, match=words):
        options("--backend", "ollama", "--ollama-host", host)

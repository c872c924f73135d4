"""The monitor finds LLM servers by reading /proc where there is one, and through psutil where
there is not; both find the same server, and not its runner."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lollma_tui.ui import monitor_app
from lollma_tui.ui.monitor_app import LlmProcessFinder


@pytest.fixture
def server_and_runner(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A process named "koboldcpp" (a python under that name) with a child of the same name."""
    exe = tmp_path / "koboldcpp"
    exe.symlink_to(sys.executable)
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.argv[1], '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)\n"
    )
    server = subprocess.Popen([str(exe), "-c", code, str(exe)])
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(server.pid).children() and time.monotonic() < deadline:
            time.sleep(0.02)
        (runner,) = psutil.Process(server.pid).children()
        yield server.pid, runner.pid
    finally:
        for process in psutil.Process(server.pid).children(recursive=True):
            process.kill()
        server.kill()
        server.wait()


@pytest.mark.parametrize("source", ["proc", "psutil"])
def test_the_server_is_found_and_not_its_runner(
    server_and_runner: tuple[int, int], source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if source == "psutil":
        monkeypatch.setattr(monitor_app, "_PROC", tmp_path / "no-proc")
    elif not Path("/proc").is_dir():
        pytest.fail("this platform has no /proc; the test runs on Linux")
    server, runner = server_and_runner
    found = LlmProcessFinder()()
    assert server in found
    assert runner not in found


@pytest.mark.parametrize("source", ["proc", "psutil"])
def test_a_server_that_died_unreaped_is_not_listed(
    source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Its launcher never reaped it: "llama-server (pid N): RSS 0 B" stayed on screen for ever.
    if source == "psutil":
        monkeypatch.setattr(monitor_app, "_PROC", tmp_path / "no-proc")
    exe = tmp_path / "llama-server"
    exe.symlink_to(sys.executable)
    dead = subprocess.Popen([str(exe), "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(dead.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child never ended"
            time.sleep(0.02)
        assert dead.pid not in LlmProcessFinder()()
    finally:
        dead.wait()


@pytest.mark.parametrize("source", ["proc", "psutil"])
def test_a_server_run_as_a_python_module_is_found(
    source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # `python -m llama_cpp.server` is a process named python: "no LLM server running".
    if source == "psutil":
        monkeypatch.setattr(monitor_app, "_PROC", tmp_path / "no-proc")
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "llama_cpp.server"])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "llama_cpp"])
    try:
        found = LlmProcessFinder()()
        assert server.pid in found and other.pid not in found
    finally:
        for process in (server, other):
            process.kill()
            process.wait()


def test_with_no_server_running_the_process_table_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/proc").is_dir():
        pytest.fail("this platform has no /proc; the test runs on Linux")
    walks: list[object] = []
    real_process_iter = psutil.process_iter

    def counted_process_iter(*args: object, **kwargs: object) -> object:
        walks.append(args)
        return real_process_iter(*args, **kwargs)  # type: ignore[arg-type]

    # psutil is the slower second way; where /proc answered "none here", it must not run too.
    monkeypatch.setattr(psutil, "process_iter", counted_process_iter)
    assert LlmProcessFinder(["no-such-llm-server"])() == ()
    assert walks == []

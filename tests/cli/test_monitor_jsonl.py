"""`lollma-tui monitor --jsonl`: snapshots as lines, no screen, gone when its reader goes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd_server import fake_nvml_env, monitor_command

from lollma_tui.core.hardware.snapshot_lines import decode


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = monitor_command(fake_nvml_env(tmp_path / "site"), 0.25).split()
    env = {**os.environ, **dict([command[1].split("=", 1)])}
    proc = subprocess.Popen(command[2:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_prints_one_snapshot_per_line_with_the_gpus(monitor: subprocess.Popen[bytes]) -> None:
    assert monitor.stdout is not None
    lines = [monitor.stdout.readline() for _ in range(3)]
    snapshots = [decode(line, received_at=0.0).snapshot for line in lines]
    assert [s.tick for s in snapshots] == [0, 1, 2]
    assert all(len(s.gpus) == 2 for s in snapshots)
    assert snapshots[1].cpu is not None and snapshots[1].cpu.percent is not None
    assert snapshots[2].wall_time - snapshots[1].wall_time == pytest.approx(0.25, abs=0.15)


def test_ends_quietly_when_its_reader_goes_away(monitor: subprocess.Popen[bytes]) -> None:
    assert monitor.stdout is not None and monitor.stderr is not None
    monitor.stdout.readline()
    monitor.stdout.close()
    assert monitor.wait(timeout=5) == 0
    assert b"Traceback" not in monitor.stderr.read()


def test_ends_quietly_when_started_with_stdout_closed() -> None:
    # `lollma-tui monitor --jsonl >&-`: a traceback ('NoneType' object has no attribute 'buffer').
    command = f"'{sys.executable}' -m lollma_tui monitor --jsonl --interval 0.25 >&-"
    result = subprocess.run(["sh", "-c", command], capture_output=True, timeout=30)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_follows_the_process_listening_on_a_port(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        script = Path(sys.executable).with_name("lollma-tui")
        proc = subprocess.Popen(
            [str(script), "monitor", "--jsonl", "--interval", "0.25", "--port", str(port)],
            stdout=subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            found: list[int] = []
            for _ in range(8):
                found = [p.pid for p in decode(proc.stdout.readline(), received_at=0.0).snapshot.processes]
                if found:
                    break
            assert found == [server.pid]
        finally:
            proc.kill()
            proc.wait()
    finally:
        server.kill()
        server.wait()

"""`lollma-tui history` and files it did not create: existing exports, symlinks, FIFOs, devices."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from history_support import lighthouse_chat

from lollma_tui.core.chat.opening import default_store_path
from lollma_tui.core.chat.store import ChatStore


def run_cli(
    *args: str, stdin: int | None = subprocess.DEVNULL, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "lollma_tui.cli_history", *args],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`history {' '.join(args)}` was still running after {timeout:.0f} s")


@pytest.fixture
def conversation_id() -> str:
    with ChatStore.open(default_store_path()) as store:
        return lighthouse_chat(store, "Lighthouses").id


def test_an_existing_file_is_kept_unless_forced(conversation_id: str, tmp_path: Path) -> None:
    target = tmp_path / "chat.md"
    target.write_text("my notes")
    refused = run_cli("export", conversation_id, "-o", str(target))
    assert refused.returncode == 1
    assert "already exists (--force replaces it)" in refused.stderr
    assert target.read_text() == "my notes"
    forced = run_cli("export", conversation_id, "-o", str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "a lamp and a lens" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_an_export_never_writes_through_a_symlink(conversation_id: str, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "chat.json"
    link.symlink_to(victim)
    refused = run_cli("export", conversation_id, "-o", str(link))
    assert refused.returncode == 1 and "already exists" in refused.stderr
    assert victim.read_text() == "precious" and link.is_symlink()
    forced = run_cli("export", conversation_id, "-o", str(link), "--force")
    assert forced.returncode == 0, forced.stderr
    assert victim.read_text() == "precious", "the link's target is untouched"
    assert not link.is_symlink() and '"Lighthouses"' in link.read_text()
    dangling = tmp_path / "dangling.md"
    dangling.symlink_to(tmp_path / "elsewhere.md")
    assert run_cli("export", conversation_id, "-o", str(dangling)).returncode == 1
    assert not (tmp_path / "elsewhere.md").exists()


def test_importing_a_fifo_fails_at_once(conversation_id: str, tmp_path: Path) -> None:
    fifo = tmp_path / "chat.json"
    os.mkfifo(fifo)
    result = run_cli("import", str(fifo))
    assert result.returncode == 2
    assert "FIFO" in result.stderr


def test_importing_dev_zero_fails_without_filling_memory() -> None:
    result = run_cli("import", "/dev/zero")
    assert result.returncode == 2 and "not a regular file" in result.stderr
    with open("/dev/zero", "rb") as zeros:
        piped = run_cli("import", "-", stdin=zeros.fileno())
    assert piped.returncode == 2 and "larger than 64 MiB" in piped.stderr

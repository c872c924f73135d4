"""Private files are private from their first byte and replaced whole; foreign files are checked."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from lollma_tui.core import safe_files
from lollma_tui.core.safe_files import (
    FileTooLargeError,
    NotRegularFileError,
    TargetExistsError,
    read_regular_file,
    write_private_file,
)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that hides nothing: a file only ends up 0600 if it was made so on purpose."""
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The file system calls of a write in order, with the mode of the file at its first write."""
    seen: list[str] = []
    real_write, real_fsync, real_replace, real_link = os.write, os.fsync, os.replace, os.link

    def write(fd: int, data: bytes) -> int:
        seen.append(f"write {stat.S_IMODE(os.fstat(fd).st_mode):o}")
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        seen.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync")
        real_fsync(fd)

    def replace(src: str, dst: str | Path) -> None:
        seen.append("replace")
        real_replace(src, dst)

    def link(src: str, dst: str | Path) -> None:
        seen.append("link")
        real_link(src, dst)

    monkeypatch.setattr(safe_files.os, "write", write)
    monkeypatch.setattr(safe_files.os, "fsync", fsync)
    monkeypatch.setattr(safe_files.os, "replace", replace)
    monkeypatch.setattr(safe_files.os, "link", link)
    return seen


def test_created_0600_synced_then_renamed(tmp_path: Path, open_umask: None, calls: list[str]) -> None:
    target = tmp_path / "sub" / "last-copy.txt"
    write_private_file(target, "secret")
    assert calls == ["write 600", "fsync", "replace", "fsync dir"]
    assert target.read_text() == "secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(target.parent) == ["last-copy.txt"]


def test_replacing_an_existing_file_keeps_no_old_mode(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o644)
    write_private_file(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_no_overwrite_keeps_what_is_there(tmp_path: Path, calls: list[str]) -> None:
    target = tmp_path / "out.txt"
    target.write_text("mine")
    with pytest.raises(TargetExistsError) as caught:
        write_private_file(target, "theirs", overwrite=False)
    assert str(caught.value) == f"{target} already exists"
    assert target.read_text() == "mine"
    assert os.listdir(tmp_path) == ["out.txt"]
    fresh = tmp_path / "fresh.txt"
    write_private_file(fresh, "new", overwrite=False)
    assert calls[-3:] == ["fsync", "link", "fsync dir"]
    assert fresh.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["fresh.txt", "out.txt"]


def test_a_file_appearing_during_the_write_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.txt"
    real_fsync = os.fsync

    def racing_fsync(fd: int) -> None:
        real_fsync(fd)
        if not target.exists():
            target.write_text("someone else's")

    monkeypatch.setattr(safe_files.os, "fsync", racing_fsync)
    with pytest.raises(TargetExistsError):
        write_private_file(target, "mine", overwrite=False)
    assert target.read_text() == "someone else's"
    assert os.listdir(tmp_path) == ["out.txt"], "the temporary file is gone"


def test_a_symlink_is_replaced_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "out.txt"
    link.symlink_to(victim)
    with pytest.raises(TargetExistsError):
        write_private_file(link, "x", overwrite=False)
    write_private_file(link, "x")
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "x"


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(safe_files.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output error"):
        write_private_file(tmp_path / "out.txt", "x")
    assert os.listdir(tmp_path) == []


def test_reading_takes_regular_files_up_to_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_regular_file(path, 100) == b"x" * 100
    with pytest.raises(FileTooLargeError):
        read_regular_file(path, 99)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFileError, match="FIFO"):
        read_regular_file(fifo, 100)
    with pytest.raises(NotRegularFileError, match="directory"):
        read_regular_file(tmp_path, 100)
    with pytest.raises(NotRegularFileError, match="character device"):
        read_regular_file("/dev/zero", 100)
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing", 100)


def test_a_file_growing_past_the_cap_while_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing"
    path.write_bytes(b"x" * 10)
    real_fstat = os.fstat

    def fstat_then_grow(fd: int) -> os.stat_result:
        info = real_fstat(fd)
        with open(path, "ab") as more:
            more.write(b"y" * 100)
        return info

    monkeypatch.setattr(safe_files.os, "fstat", fstat_then_grow)
    with pytest.raises(FileTooLargeError):
        read_regular_file(path, 50)


@pytest.mark.parametrize("asked", ["notes.md/x.json", "notes.md/deeper/x.json"])
def test_a_file_in_the_way_of_the_folder_is_named_as_such(tmp_path: Path, asked: str) -> None:
    # mkdir said "File exists" of the path asked for, where nothing was.
    (tmp_path / "notes.md").write_text("a file")
    with pytest.raises(NotADirectoryError) as caught:
        write_private_file(tmp_path / asked, "{}")
    assert caught.value.strerror == f"{tmp_path / 'notes.md'} is a file, not a folder"
    assert caught.value.filename == str(tmp_path / asked)
    assert (tmp_path / "notes.md").read_text() == "a file"

"""Opening files we did not write, and writing files only the user may read.

Reading: a path the user or a folder scan hands us may be a FIFO (opening it blocks until a
writer comes), a device (``/dev/zero`` never ends), a directory, or a file that shrinks while
we read it (an mmap of it then dies with SIGBUS). So files are opened ``O_NONBLOCK``, checked
with ``fstat`` to be regular, and read with ``pread`` up to a size cap.

Writing: exports, the last copied text and caches hold private conversations and model paths.
They are created 0600 from the first byte under a temporary name in the target folder, synced,
and renamed over the target, so a crash leaves the old file or the new one, never half of one.
A rename replaces a symlink instead of writing through it, and without ``overwrite`` an
existing target is never replaced (`TargetExistsError`, for the UI to ask about).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class NotRegularFileError(OSError):
    """The path names a directory, FIFO, device or socket; `str()` says which."""


class FileTooLargeError(OSError):
    """The file is larger than the caller accepts."""


class TargetExistsError(FileExistsError):
    """Writing would replace an existing file (or symlink) and the caller did not allow it."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.EEXIST, "already exists", str(path))
        self.path = path

    def __str__(self) -> str:
        return f"{self.path} already exists"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular_file(path: str | os.PathLike[str]) -> tuple[int, os.stat_result]:
    """A read-only descriptor on the regular file at `path` and its `fstat`; the caller closes it.

    Raises `NotRegularFileError` for anything else (checked on the opened descriptor, so a
    path swapped between a check and the open cannot slip through) and OSError as `os.open`
    does.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _kind(info.st_mode)
            raise NotRegularFileError(errno.EINVAL, f"is {kind}, not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def pread_exactly(fd: int, length: int, offset: int) -> bytes:
    """`length` bytes at `offset`, or fewer only when the file ends first (it shrank)."""
    chunks: list[bytes] = []
    while length > 0:
        # os.pread allocates the whole length up front: bounded chunks for a file that grew.
        chunk = os.pread(fd, min(length, 1 << 24), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Fill `view` from the file at `offset`; returns the bytes read (fewer when the file ends)."""
    done = 0
    total = len(view)
    while done < total:
        if _HAVE_PREADV:
            got = os.preadv(fd, [view[done:]], offset + done)
        else:
            chunk = os.pread(fd, min(total - done, 1 << 24), offset + done)
            got = len(chunk)
            view[done : done + got] = chunk
        if got == 0:
            break
        done += got
    return done


_HAVE_PREADV = hasattr(os, "preadv")


def read_regular_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The whole content of a regular file of at most `max_bytes` bytes.

    Raises `NotRegularFileError`, `FileTooLargeError` (also when the file grows past the cap
    while being read) or OSError.
    """
    fd, info = open_regular_file(path)
    try:
        if info.st_size > max_bytes:
            raise FileTooLargeError(errno.EFBIG, f"larger than {_size(max_bytes)}", str(path))
        # One byte more than fstat said, to notice a file that grew since.
        data = pread_exactly(fd, info.st_size + 1, 0)
        if info.st_size < len(data) <= max_bytes:
            data += pread_exactly(fd, max_bytes + 1 - len(data), len(data))
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise FileTooLargeError(errno.EFBIG, f"larger than {_size(max_bytes)}", str(path))
    return data


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"


def make_folder(folder: Path, wanted: Path | None = None) -> None:
    """Create `folder` and the folders above it. One of them being a file is said so, naming it
    and `wanted` (the path asked for): mkdir's "File exists" named a path where nothing was."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        above = (*reversed(folder.parents), folder)
        blocker = next((path for path in above if path.exists() and not path.is_dir()), None)
        if blocker is None:
            raise
        reason = f"{blocker} is a file, not a folder"
        raise NotADirectoryError(errno.ENOTDIR, reason, str(wanted or folder)) from exc


def write_private_file(path: str | os.PathLike[str], data: bytes | str, *, overwrite: bool = True) -> Path:
    """Write `data` to `path` atomically, readable by the user only; returns the path written.

    Created 0600 under a temporary name in the same folder, synced, then renamed into place (the
    folder is created when missing). A symlink at `path` is replaced, never followed. Without
    `overwrite`, an existing file or symlink at `path` raises `TargetExistsError` and nothing
    changes.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    make_folder(target.parent, target)
    if not overwrite and os.path.lexists(target):
        raise TargetExistsError(target)
    # mkstemp creates the file O_EXCL with mode 0600: private from the first byte.
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(temporary, target)
        else:
            _rename_no_replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(target.parent)
    return target


def _rename_no_replace(temporary: str, target: Path) -> None:
    # A hard link fails with EEXIST when the target appeared since the check: no window in which
    # a file created by someone else is replaced. Filesystems without hard links get a rename.
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise TargetExistsError(target) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(target):
            raise TargetExistsError(target) from None
        os.rename(temporary, target)
        return
    os.unlink(temporary)


def _sync_folder(folder: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse to sync a directory.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

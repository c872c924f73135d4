"""Start a bench worker process and read its events (the parent side of `bench.protocol`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lollma_tui.core.backends.llamacpp import describe_exit
from lollma_tui.core.bench import protocol as proto

WORKER_MODULE = "lollma_tui.core.bench.bench_worker"
_LOG_ROTATE_BYTES = 5 * 1024 * 1024
_STREAM_LIMIT = 1 << 20
"""A sample list of a long run can make a long line."""


class WorkerFailed(Exception):
    """The worker could not start, could not load the model, or died; one readable line."""


def open_log(log_path: Path, title: str) -> int:
    """An fd on the log (rotated when large), headed with `title`; the caller closes it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if log_path.stat().st_size > _LOG_ROTATE_BYTES:
            log_path.replace(log_path.with_name(log_path.name + ".1"))
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.write(fd, f"\n=== {title} {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
    return fd


def log_tail_line(log_path: Path, since: int = 0) -> str:
    """The last line worth showing (an error if there is one) written after offset `since`."""
    try:
        with open(log_path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            start = since if since <= size else 0  # rotated meanwhile: read the new file's end
            log.seek(max(start, size - 16384))
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("===")]
    for line in reversed(lines):
        if any(word in line.lower() for word in ("error", "failed", "exception", "abort", "unable")):
            return line
    return lines[-1] if lines else ""


def log_size(log_path: Path) -> int:
    try:
        return log_path.stat().st_size
    except OSError:
        return 0


class _Exited:
    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode


class BenchWorker:
    """One bench worker process; `events()` yields its messages until it exits."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path, log_offset: int) -> None:
        self.process = process
        self.log_path = log_path
        self.log_offset = log_offset
        self.hello: dict[str, Any] = {}
        self._queue: asyncio.Queue[dict[str, Any] | _Exited] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read(), name="bench-worker-reader")

    @classmethod
    async def start(cls, log_path: Path, *, python: str | None = None) -> BenchWorker:
        offset = log_size(log_path)
        fd = await asyncio.to_thread(open_log, log_path, "bench worker started")
        try:
            process = await asyncio.create_subprocess_exec(
                python or sys.executable,
                "-m",
                WORKER_MODULE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=fd,
                # Its own session: Ctrl+C in the terminal reaches us, and we stop it cleanly.
                start_new_session=True,
                limit=_STREAM_LIMIT,
            )
        except OSError as error:
            raise WorkerFailed(f"could not start the bench worker: {error}") from error
        finally:
            os.close(fd)
        worker = cls(process, log_path, offset)
        try:
            event = await worker.next_event()
        except WorkerFailed:
            await worker.kill()
            raise
        except BaseException:
            # Cancelled while it starts: it would otherwise wait for a request forever.
            worker.kill_now()
            raise
        if event.get("ev") != proto.EV_HELLO:
            await worker.kill()
            raise WorkerFailed(f"the bench worker said {event.get('ev')!r} instead of hello")
        worker.hello = event
        return worker

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            try:
                line = await stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                break
            with contextlib.suppress(ValueError):
                self._queue.put_nowait(proto.decode(line))
        self._queue.put_nowait(_Exited(await self.process.wait()))

    async def send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            return
        try:
            stdin.write(proto.encode(message))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass

    async def next_event(self) -> dict[str, Any]:
        """The next event; WorkerFailed when the worker exits or reports an error."""
        item = await self._queue.get()
        if isinstance(item, _Exited):
            self._queue.put_nowait(item)  # later calls see the exit too
            detail = log_tail_line(self.log_path, self.log_offset)
            message = f"the bench worker {describe_exit(item.returncode)}"
            raise WorkerFailed(message + (f": {detail}" if detail else ""))
        if item.get("ev") == proto.EV_ERROR:
            message = str(item.get("message") or "unknown error")
            detail = log_tail_line(self.log_path, self.log_offset)
            if detail and detail not in message:
                message += f" — llama.cpp: {detail}"
            raise WorkerFailed(message)
        return item

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Events up to and including ``done``."""
        while True:
            event = await self.next_event()
            yield event
            if event.get("ev") == proto.EV_DONE:
                return

    def kill_now(self) -> None:
        """Kill without waiting (for a cancelled task, which should not await again)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self._reader.cancel()

    async def kill(self) -> None:
        """Stop it now; its memory is freed when it exits."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def close(self, grace_s: float = 2.0) -> None:
        if self.alive:
            await self.send({"op": proto.OP_SHUTDOWN})
            if self.process.stdin is not None:
                self.process.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), grace_s)
        await self.kill()

"""The parent side of a worker process: start it, read its events, stop it.

Every llama.cpp child (chat model, spare, bench configuration, quantize run) is one of these.
The child runs with ``python -P`` in a neutral folder, so a stray ``argparse.py`` or
``llama_cpp.py`` in the user's current folder never runs inside it; its stderr is the log file;
its stdout carries the `wire` protocol. It dies with the app (see `channel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lollma_tui.core.workers import wire
from lollma_tui.core.workers.logs import failure_detail, log_size, open_log, read_since
from lollma_tui.core.workers.wire import EV_HELLO, OP_SHUTDOWN, PARENT_PID_ENV

HELLO_TIMEOUT_S = 60.0
"""Python and llama_cpp's import on a cold disk; a worker that says nothing by then is stuck."""

CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE})
OUTSIDE_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
"""Deaths the worker did not cause: its log ends wherever it was, and explains nothing."""


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "stopped responding"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        reasons = {
            "SIGKILL": "was killed (out of memory, or by another program)",
            "SIGSEGV": "crashed (segmentation fault)",
            "SIGBUS": "crashed (bus error)",
            "SIGILL": "crashed (illegal instruction)",
            "SIGABRT": "was aborted by llama.cpp",
            "SIGTERM": "was terminated",
        }
        return f"{reasons.get(name, 'died')} [{name}]"
    return f"exited with code {returncode}"


def crashed(returncode: int | None) -> bool:
    """True for a death by a signal the engine raised itself (not a kill from outside)."""
    return returncode is not None and returncode < 0 and -returncode in {int(s) for s in CRASH_SIGNALS}


class WorkerExited(Exception):
    """The worker is gone; `str()` is one line naming how, with the log's explanation."""

    def __init__(self, name: str, returncode: int | None, problem: str, detail: str) -> None:
        self.returncode = returncode
        self.problem = problem
        self.detail = detail
        how = problem or describe_exit(returncode)
        super().__init__(f"the {name} {how}" + (f": {detail}" if detail else ""))

    @property
    def crashed(self) -> bool:
        return crashed(self.returncode)


class _Exit:
    """Queued by the reader once the worker's stdout closes."""

    def __init__(self, returncode: int | None, problem: str) -> None:
        self.returncode = returncode
        self.problem = problem


class WorkerProcess:
    """One running worker: its process, the events from its stdout, and its log."""

    def __init__(
        self, process: asyncio.subprocess.Process, *, name: str, log_path: Path, log_offset: int
    ) -> None:
        self.process = process
        self.name = name
        self.log_path = log_path
        self.log_offset = log_offset
        self.hello: dict[str, Any] = {}
        self.on_exit: Callable[[], None] | None = None
        """Called once its process has ended, whoever reads its events (or nobody)."""
        self.log_problem = ""
        """Why its log is not written ("" when it is): it runs without one."""
        self._events: asyncio.Queue[dict[str, Any] | _Exit] = asyncio.Queue()
        self._problem = ""
        self._reader = asyncio.create_task(self._read(), name=f"{name}-reader")

    @classmethod
    async def start(
        cls,
        module: str,
        *args: str,
        name: str,
        log_path: Path,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        hello_timeout_s: float = HELLO_TIMEOUT_S,
    ) -> WorkerProcess:
        """Start ``python -P -m module args`` and wait for its hello.

        Raises WorkerExited when it dies or stays silent before saying hello.
        """
        offset = await asyncio.to_thread(log_size, log_path)
        fd, log_problem = await asyncio.to_thread(open_log, log_path, f"{name} started")
        in_folder = await asyncio.to_thread(os.path.isdir, log_path.parent)
        child_env = {**os.environ, **(env or {}), PARENT_PID_ENV: str(os.getpid())}
        try:
            process = await asyncio.create_subprocess_exec(
                python or sys.executable,
                "-P",
                "-m",
                module,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=fd,
                cwd=log_path.parent if in_folder else None,
                env=child_env,
                # Its own session: Ctrl+C in the terminal reaches the app, which stops it cleanly.
                start_new_session=True,
                limit=wire.MAX_LINE_BYTES,
            )
        except OSError as error:
            raise WorkerExited(name, None, f"could not start: {error}", "") from error
        finally:
            os.close(fd)
        worker = cls(process, name=name, log_path=log_path, log_offset=offset)
        worker.log_problem = log_problem
        try:
            event = await worker.next_event(timeout_s=hello_timeout_s)
        except WorkerExited:
            await worker.kill()
            raise
        except BaseException:
            # Cancelled while starting (a spare nobody waits for): end it and reap it while the
            # loop still runs, so its pipes close cleanly.
            worker.kill_now(keep_reader=True)
            if process.stdin is not None:
                process.stdin.close()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(worker._reader), 2.0)
            raise
        if event.get("ev") != EV_HELLO:
            await worker.kill()
            raise WorkerExited(name, None, f"said {event.get('ev')!r} instead of hello", "")
        worker.hello = event
        return worker

    # -- reading ------------------------------------------------------------------------------

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            try:
                line = await stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                self._protocol_error(f"sent a line longer than {wire.MAX_LINE_BYTES} bytes")
                break
            if not line:
                break
            try:
                self._events.put_nowait(wire.decode(line))
            except wire.ProtocolError as error:
                self._protocol_error(f"broke the protocol ({error})")
                break
        self._events.put_nowait(_Exit(await self.process.wait(), self._problem))
        if self.on_exit is not None:
            self.on_exit()

    def _protocol_error(self, problem: str) -> None:
        # The two sides no longer agree on what was said: nothing it sends can be trusted.
        self._problem = problem
        self.kill_now(keep_reader=True)

    async def next_event(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The next event. WorkerExited once it is gone (for this and every later call).

        On timeout the worker is killed: a worker that stops answering is stuck.
        """
        try:
            item = await asyncio.wait_for(self._events.get(), timeout_s)
        except TimeoutError:
            self._problem = f"did not answer within {timeout_s:.0f} s"
            self.kill_now(keep_reader=True)
            item = await self._events.get()
        if isinstance(item, _Exit):
            self._events.put_nowait(item)
            killed = item.returncode is not None and -item.returncode in {int(s) for s in OUTSIDE_SIGNALS}
            # A stuck worker we killed ourselves (a problem is set) may have logged why it hung.
            detail = "" if killed and not item.problem else await asyncio.to_thread(self.log_detail)
            raise WorkerExited(self.name, item.returncode, item.problem, detail)
        return item

    def log_detail(self, *, errors_only: bool = False) -> str:
        """What this worker's part of the log says about a failure (see `failure_detail`)."""
        return failure_detail(read_since(self.log_path, self.log_offset), errors_only=errors_only)

    # -- writing and stopping -----------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            return
        try:
            stdin.write(wire.encode(message))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def kill_now(self, *, keep_reader: bool = False) -> None:
        """Kill without waiting (for cancelled tasks, which should not await again)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        if not keep_reader:
            self._reader.cancel()

    async def kill(self) -> None:
        """Stop it now; its memory (and GPU memory) is freed as it exits."""
        self.kill_now(keep_reader=True)
        await self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()  # else the pipe's transport outlives the process
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def stop(self, grace_s: float = 2.0) -> None:
        """Ask it to exit, then kill it if it does not."""
        if self.alive:
            await self.send({"op": OP_SHUTDOWN})
            if self.process.stdin is not None:
                self.process.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), grace_s)
        await self.kill()

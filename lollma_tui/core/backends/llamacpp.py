"""llama.cpp backend: the app-side proxy for one worker process per loaded model.

The worker runs llama-cpp-python in its own interpreter, because llama.cpp writes to fd 2
(where Textual draws), prompt evaluation cannot be interrupted in-process, a freed model
segfaults on reuse, and GPU memory reliably returns only when the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from lollma_tui.core import paths
from lollma_tui.core.backends import llamacpp_protocol as proto
from lollma_tui.core.backends.base import (
    BackendCrashedError,
    BackendState,
    BackendStatus,
    BackendUnavailableError,
    ChatEvent,
    ChatMessage,
    ContextOverflowError,
    LoadedModel,
    ModelLoadError,
    ReplyDone,
    ReplyStats,
    StatusListener,
    TextDelta,
)
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings

CANCEL_GRACE_S = 1.0
"""How long a stop may take before the worker is killed (it is stuck in prompt evaluation)."""

_LOG_ROTATE_BYTES = 5 * 1024 * 1024


class _Exited:
    """Queued by the reader when the worker's stdout closes."""

    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode


class _WorkerProcess:
    """One running worker: its process, the event queue fed by its stdout, and its log."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.events: asyncio.Queue[dict[str, Any] | _Exited] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read(), name="llama-worker-reader")
        self.hello: dict[str, Any] | None = None

    async def _read(self) -> None:
        assert self.process.stdout is not None
        stdout = self.process.stdout
        while True:
            try:
                line = await stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                break
            try:
                self.events.put_nowait(proto.decode(line))
            except ValueError:
                continue
        returncode = await self.process.wait()
        self.events.put_nowait(_Exited(returncode))

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    @property
    def pid(self) -> int:
        return self.process.pid

    async def send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            return
        try:
            stdin.write(proto.encode(message))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def stop(self, grace_s: float = 2.0) -> None:
        """Ask the worker to exit, then kill it if it does not; its memory is freed either way."""
        if self.alive:
            await self.send({"op": proto.OP_SHUTDOWN})
            if self.process.stdin is not None:
                self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), grace_s)
            except TimeoutError:
                self.kill()
                await self.process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "stopped responding"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        reasons = {
            "SIGKILL": "killed (out of memory, or by another program)",
            "SIGSEGV": "crashed (segmentation fault)",
            "SIGABRT": "aborted by llama.cpp",
            "SIGTERM": "terminated",
        }
        return f"{reasons.get(name, 'died')} [{name}]"
    return f"exited with code {returncode}"


class LlamaCppBackend:
    """`Backend` for GGUF files through llama-cpp-python in a child process."""

    kind = BackendKind.LLAMA_CPP

    def __init__(
        self,
        *,
        log_path: Path | None = None,
        on_status: StatusListener | None = None,
        python: str | None = None,
        cancel_grace_s: float = CANCEL_GRACE_S,
        keep_spare: bool = True,
    ) -> None:
        self._log_path = log_path or paths.llama_log_path()
        self._on_status = on_status
        self._python = python or sys.executable
        self._cancel_grace_s = cancel_grace_s
        self._worker: _WorkerProcess | None = None
        self._loaded: LoadedModel | None = None
        self._wanted: LoadSettings | None = None
        self._status = BackendStatus(BackendState.UNLOADED, "No model loaded")
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._active: int | None = None
        self._cancelling = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._counting: asyncio.Future[None] | None = None
        self._restart: asyncio.Task[LoadedModel] | None = None
        self._spare: asyncio.Task[_WorkerProcess] | None = None
        self._keep_spare = keep_spare

    # -- status -------------------------------------------------------------------------------

    @property
    def status(self) -> BackendStatus:
        return self._status

    @property
    def log_path(self) -> Path:
        return self._log_path

    def set_status_listener(self, listener: StatusListener | None) -> None:
        self._on_status = listener

    def _set_status(self, state: BackendState, message: str = "") -> None:
        self._status = BackendStatus(state, message, self._loaded)
        if self._on_status is not None:
            self._on_status(self._status)

    def process_ids(self) -> tuple[int, ...]:
        worker = self._worker
        return (worker.pid,) if worker is not None and worker.alive else ()

    # -- lifecycle ----------------------------------------------------------------------------

    def _open_log(self) -> BinaryIO:
        log_path = self._log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        _rotate(log_path)
        log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed by _spawn
        os.chmod(log_path, 0o600)
        log_file.write(f"\n=== llama.cpp worker started {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
        log_file.flush()
        return log_file

    async def _spawn(self) -> _WorkerProcess:
        log_path = self._log_path
        log_file = await asyncio.to_thread(self._open_log)
        try:
            process = await asyncio.create_subprocess_exec(
                self._python,
                "-m",
                "lollma_tui.core.backends.llamacpp_worker",
                "--log",
                str(log_path),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                start_new_session=True,
            )
        except OSError as error:
            raise BackendUnavailableError(f"Could not start the llama.cpp worker: {error}") from error
        finally:
            log_file.close()
        worker = _WorkerProcess(process, log_path)
        try:
            event = await worker.events.get()
        except asyncio.CancelledError:
            # A start nobody waits for any more (the spare, at shutdown): end it, and reap it
            # while the event loop still runs, so its pipes close cleanly.
            worker.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(worker.reader), 2.0)
            raise
        if isinstance(event, _Exited) or event.get("ev") != proto.EV_HELLO:
            await worker.stop()
            detail = _last_log_line(log_path)
            raise BackendUnavailableError(
                "The llama.cpp worker failed to start"
                + (f": {detail}" if detail else "")
                + f" (log: {log_path})"
            )
        worker.hello = event
        return worker

    async def load(self, settings: LoadSettings) -> LoadedModel:
        async with self._lock:
            return await self._load_locked(settings)

    async def _load_locked(self, settings: LoadSettings, restarting: bool = False) -> LoadedModel:
        # The next process starts (Python, llama_cpp's import) while the old one exits; it may
        # only load once the old one is gone, so that its memory, VRAM above all, is free.
        spare = self._take_spare()
        try:
            await self._stop_worker()
        except BaseException:
            self._spare = spare  # unload() and close() stop it
            raise
        self._loaded = None
        self._wanted = settings
        name = Path(settings.model).name
        self._set_status(BackendState.LOADING, f"{'Restarting' if restarting else 'Loading'} {name}…")
        try:
            worker = await spare
            if not worker.alive:
                worker = await self._spawn()
        except BackendUnavailableError as error:
            self._set_status(BackendState.FAILED, str(error))
            raise
        self._worker = worker
        request_id = next(self._ids)
        await worker.send(
            {"op": proto.OP_LOAD, "id": request_id, "settings": proto.load_settings_to_wire(settings)}
        )
        while True:
            event = await worker.events.get()
            if isinstance(event, _Exited):
                self._worker = None
                message = f"llama.cpp {describe_exit(event.returncode)} while loading {name}"
                detail = _last_log_line(self._log_path)
                if detail:
                    message += f": {detail}"
                self._set_status(BackendState.FAILED, message)
                raise ModelLoadError(message)
            if event.get("id") != request_id:
                continue
            if event.get("ev") == proto.EV_ERROR:
                await self._stop_worker()
                message = f"Could not load {name}: {event.get('message', 'unknown error')}"
                self._set_status(BackendState.FAILED, message)
                raise ModelLoadError(message)
            if event.get("ev") == proto.EV_LOADED:
                self._loaded = _loaded_from_wire(settings, event["model"])
                self._set_status(BackendState.READY, f"{self._loaded.name} ready")
                self._prepare_spare()
                return self._loaded

    async def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            await worker.stop()

    # A spare process, started and idle, makes the next swap cost what loading the file costs:
    # a fresh process per model (its memory all returned on exit) without paying for Python and
    # llama_cpp's import (about 0.3 s here) on every change of settings. It holds no model, so
    # unload() (the first half of a swap) keeps it; close() ends it.

    def _prepare_spare(self) -> None:
        if self._keep_spare and self._spare is None:
            self._spare = asyncio.create_task(self._spawn(), name="llama-worker-spare")

    def _take_spare(self) -> asyncio.Task[_WorkerProcess]:
        spare, self._spare = self._spare, None
        return spare if spare is not None else asyncio.create_task(self._spawn(), name="llama-worker-start")

    async def _stop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is None:
            return
        if not spare.done():
            spare.cancel()  # still starting: _spawn kills its process
            await asyncio.wait({spare})
        if spare.cancelled() or spare.exception() is not None:
            return
        await spare.result().stop()

    def spare_process_ids(self) -> tuple[int, ...]:
        """The idle spare's pid, when one has started (it holds no model)."""
        spare = self._spare
        if spare is None or not spare.done() or spare.cancelled() or spare.exception() is not None:
            return ()
        worker = spare.result()
        return (worker.pid,) if worker.alive else ()

    async def unload(self) -> None:
        async with self._lock:
            self._wanted = None
            await self._stop_worker()
            self._loaded = None
            self._set_status(BackendState.UNLOADED, "No model loaded")

    async def close(self) -> None:
        if self._restart is not None:
            self._restart.cancel()
        await self.unload()
        await self._stop_spare()

    async def _ensure_running(self) -> _WorkerProcess:
        """Restart a worker that died or was killed, with the settings it had."""
        if self._restart is not None:
            restart, self._restart = self._restart, None
            with contextlib.suppress(Exception):
                await restart
        # Taking the lock also waits for a load that is already under way.
        async with self._lock:
            worker = self._worker
            if worker is not None and worker.alive and self._loaded is not None:
                return worker
            if self._wanted is None:
                raise ModelLoadError("No model is loaded")
            await self._load_locked(self._wanted, restarting=True)
            assert self._worker is not None
            return self._worker

    # -- chat ---------------------------------------------------------------------------------

    async def stream_chat(
        self, messages: Sequence[ChatMessage], sampling: SamplingSettings
    ) -> AsyncIterator[ChatEvent]:
        worker = await self._ensure_running()
        loaded = self._loaded
        assert loaded is not None
        # A token count reads the same event queue; it takes milliseconds, so wait it out.
        while self._counting is not None:
            await asyncio.shield(self._counting)
        request_id = next(self._ids)
        self._active = request_id
        self._cancelling = False
        self._idle.clear()
        self._set_status(BackendState.GENERATING, f"{loaded.name} generating")
        started = time.perf_counter()
        first_at: float | None = None
        finished = False
        try:
            await worker.send(
                {
                    "op": proto.OP_CHAT,
                    "id": request_id,
                    "messages": proto.messages_to_wire(list(messages)),
                    "sampling": proto.sampling_to_wire(sampling),
                }
            )
            while True:
                event = await worker.events.get()
                if isinstance(event, _Exited):
                    self._worker = None
                    if self._cancelling:
                        finished = True
                        self._schedule_restart()
                        yield ReplyDone("cancelled", _stats(loaded, started, first_at, None))
                        return
                    self._loaded = None
                    message = (
                        f"The llama.cpp worker {describe_exit(event.returncode)}. "
                        "The conversation is kept; your next message restarts the model."
                    )
                    self._set_status(BackendState.FAILED, message)
                    raise BackendCrashedError(message)
                if event.get("id") != request_id:
                    continue
                kind = event.get("ev")
                if kind == proto.EV_DELTA:
                    if first_at is None:
                        first_at = time.perf_counter()
                    yield TextDelta(str(event["text"]), event.get("n"))
                elif kind == proto.EV_DONE:
                    finished = True
                    figures = proto.WorkerReplyFigures.from_wire(event["figures"])
                    reason = figures.finish_reason
                    finish = reason if reason in ("stop", "length", "cancelled") else "stop"
                    yield ReplyDone(finish, _stats(loaded, started, first_at, figures))  # type: ignore[arg-type]
                    return
                elif kind == proto.EV_ERROR:
                    finished = True
                    text = str(event.get("message", "generation failed"))
                    if event.get("kind") == proto.ERR_CONTEXT:
                        raise ContextOverflowError(
                            f"{text}. Start a new conversation (/clear) or load the model "
                            "with a larger context."
                        )
                    raise BackendCrashedError(f"llama.cpp failed while generating: {text}")
        finally:
            if not finished and self._worker is worker and worker.alive:
                # The consumer went away mid-reply: make the worker stop generating too.
                await worker.send({"op": proto.OP_CANCEL, "id": request_id})
            self._active = None
            self._idle.set()
            if self._status.state == BackendState.GENERATING:
                self._set_status(BackendState.READY, f"{loaded.name} ready")

    async def count_tokens(self, text: str) -> int | None:
        """Tokens in `text` with the loaded model's own tokenizer (None while no model is up)."""
        worker = self._worker
        busy = self._active is not None or self._counting is not None
        if worker is None or not worker.alive or self._loaded is None or busy:
            return None  # a reply owns the worker's events now; the caller estimates instead
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._counting = done
        try:
            request_id = next(self._ids)
            await worker.send({"op": proto.OP_TOKENIZE, "id": request_id, "text": text})
            while True:
                event = await worker.events.get()
                if isinstance(event, _Exited):
                    worker.events.put_nowait(event)  # leave it for whoever streams next
                    return None
                if event.get("id") == request_id and event.get("ev") == proto.EV_TOKENS:
                    count = event.get("count")
                    return int(count) if count is not None else None
        finally:
            self._counting = None
            done.set_result(None)

    async def cancel(self) -> None:
        request_id = self._active
        worker = self._worker
        if request_id is None or worker is None:
            return
        self._cancelling = True
        await worker.send({"op": proto.OP_CANCEL, "id": request_id})
        try:
            await asyncio.wait_for(self._idle.wait(), self._cancel_grace_s)
        except TimeoutError:
            # Stuck inside one long llama_decode call: only killing the process stops it.
            worker.kill()
            await self._idle.wait()

    def _schedule_restart(self) -> None:
        if self._wanted is None:
            return
        wanted = self._wanted

        async def restart() -> LoadedModel:
            async with self._lock:
                return await self._load_locked(wanted, restarting=True)

        self._restart = asyncio.create_task(restart(), name="llama-worker-restart")


def _stats(
    loaded: LoadedModel, started: float, first_at: float | None, figures: proto.WorkerReplyFigures | None
) -> ReplyStats:
    now = time.perf_counter()
    return ReplyStats(
        setup=loaded.setup(),
        ttft_s=(first_at - started) if first_at is not None else None,
        prompt_tokens=figures.prompt_tokens if figures else None,
        prompt_tokens_evaluated=figures.prompt_tokens_evaluated if figures else None,
        prompt_tps=figures.prompt_tps if figures else None,
        gen_tokens=figures.gen_tokens if figures else 0,
        gen_tps=figures.gen_tps if figures else None,
        total_s=now - started,
    )


def _loaded_from_wire(settings: LoadSettings, model: dict[str, Any]) -> LoadedModel:
    return LoadedModel(
        settings=settings,
        name=str(model["name"]),
        architecture=str(model["architecture"]),
        quant=str(model["quant"]),
        n_layers=model.get("n_layers"),
        n_ctx=int(model["n_ctx"]),
        n_ctx_train=model.get("n_ctx_train"),
        n_gpu_layers=int(model["n_gpu_layers"]),
        gpu_offload_supported=bool(model["gpu_offload_supported"]),
        chat_format=str(model["chat_format"]),
        chat_format_source=model["chat_format_source"],
        size_bytes=model.get("size_bytes"),
        n_params=model.get("n_params"),
        load_s=float(model["load_s"]),
        n_threads=model.get("n_threads"),
        notes=tuple(model.get("notes") or ()),
    )


def _rotate(log_path: Path) -> None:
    try:
        if log_path.stat().st_size > _LOG_ROTATE_BYTES:
            log_path.replace(log_path.with_name(log_path.name + ".1"))
    except OSError:
        pass


def _last_log_line(log_path: Path) -> str:
    try:
        with open(log_path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
            tail = log.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip() and not ln.startswith("===")]
    for line in reversed(lines):
        if any(w in line.lower() for w in ("error", "failed", "exception", "abort")):
            return line
    return lines[-1] if lines else ""

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
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from lollma_tui.core import paths
from lollma_tui.core.backends import llamacpp_protocol as proto, repack
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
    NoModelError,
    ReplyDone,
    StatusListener,
    TextDelta,
    ThinkingDelta,
)
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings
from lollma_tui.core.workers.logs import log_size
from lollma_tui.core.workers.process import WorkerExited, WorkerProcess, describe_exit

__all__ = ["CANCEL_GRACE_S", "LlamaCppBackend", "describe_exit"]

WORKER_MODULE = "lollma_tui.core.backends.llamacpp_worker"

CANCEL_GRACE_S = 1.0
"""How long a stop may take before the worker is killed (it is stuck in prompt evaluation)."""

LOAD_TIMEOUT_BASE_S = 120.0
LOAD_BYTES_PER_S = 50 * 1024 * 1024
"""A load that takes longer than the base plus reading the file at this rate is stuck."""


def load_timeout_s(model: str) -> float:
    """How long a load may take: a slow disk's pace over every part of the model's file."""
    from lollma_tui.core.models.gguf_header import split_parts

    size = 0
    for part in split_parts(Path(model)):
        with contextlib.suppress(OSError):
            size += part.stat().st_size
    return LOAD_TIMEOUT_BASE_S + size / LOAD_BYTES_PER_S


class _RepackCrash(Exception):
    """The worker crashed while loading with repacked weights on (auto mode): try without."""


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
        repack_memory: repack.RepackMemory | None = None,
        load_timeout_s: float | None = None,
    ) -> None:
        self._log_path = log_path or paths.llama_log_path()
        self._on_status = on_status
        self._python = python
        self._cancel_grace_s = cancel_grace_s
        self._repack_memory = repack_memory or repack.RepackMemory()
        self._load_timeout_s = load_timeout_s
        self._worker: WorkerProcess | None = None
        self._loaded: LoadedModel | None = None
        self._wanted: LoadSettings | None = None
        self._repack_key: repack.RepackKey | None = None
        self._pending_notes: tuple[str, ...] = ()
        """Said with the next successful load (a fallback decided after a crash mid-reply)."""
        self._ended: asyncio.Task[None] | None = None
        self._status = BackendStatus(BackendState.UNLOADED, "No model loaded")
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._active: int | None = None
        self._cancelling = False
        self._preparing = False
        """A reply waits for the worker (a restart after a crash) before its request is sent."""
        self._cancel_before_start = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._counting: asyncio.Future[None] | None = None
        self._restart: asyncio.Task[LoadedModel] | None = None
        self._spare: asyncio.Task[WorkerProcess] | None = None
        self._keep_spare = keep_spare
        self._closing = False

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

    async def _spawn(self) -> WorkerProcess:
        try:
            return await WorkerProcess.start(
                WORKER_MODULE, name="llama.cpp worker", log_path=self._log_path, python=self._python
            )
        except WorkerExited as error:
            why = (error.problem or describe_exit(error.returncode)) + (
                f": {error.detail}" if error.detail else ""
            )
            where = "" if str(self._log_path) in why else f" (log: {self._log_path})"
            raise BackendUnavailableError(f"Could not start the llama.cpp worker: {why}{where}") from error

    async def load(self, settings: LoadSettings) -> LoadedModel:
        self._drop_restart()
        async with self._lock:
            return await self._load_locked(_with_absolute_model(settings))

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
        try:
            use_repack = await self._repack_for(settings, worker)
        except BaseException:
            worker.kill_now()  # cancelled (a restart dropped): not ours to stop yet, so stop it here
            raise
        notes, self._pending_notes = self._pending_notes, ()
        if worker.log_problem:
            notes = (
                *notes,
                f"The llama.cpp worker {worker.log_problem}: it runs without, so a crash is not explained.",
            )
        try:
            loaded = await self._load_in(worker, settings, use_repack, notes)
        except _RepackCrash:
            # Known to happen in llama.cpp's AMX path on some Xeons: the same file loads and
            # runs with repacking off, so do that. Only when it does was repacking the cause,
            # and worth remembering for this file and CPU.
            self._set_status(BackendState.LOADING, f"Loading {name} again with repacking off…")
            try:
                worker = await self._spawn()
            except BackendUnavailableError as error:
                self._set_status(BackendState.FAILED, str(error))
                raise
            loaded = await self._load_in(worker, settings, False, (*notes, repack.fallback_note()))
            await asyncio.to_thread(self._remember_repack_crash, name)
            return loaded
        if settings.repack == "on" and loaded.repack and self._repack_key is not None:
            # Asked for and working: a crash remembered for this file no longer holds ("auto"
            # tries the fast path again, and falls back again should it crash).
            await asyncio.to_thread(self._repack_memory.forget, self._repack_key)
        return loaded

    async def _repack_for(self, settings: LoadSettings, worker: WorkerProcess) -> bool:
        """Whether this load uses repacked weights; "auto" avoids them where they crashed before."""
        version = str(worker.hello.get("llama_cpp_version", "?"))
        self._repack_key = await asyncio.to_thread(repack.key_for, settings.model, version)
        if settings.repack != "auto":
            return settings.repack == "on"
        key = self._repack_key
        return key is None or not await asyncio.to_thread(self._repack_memory.crashes_with_repack, key)

    def _remember_repack_crash(self, model_name: str) -> None:
        if self._repack_key is not None:
            self._repack_memory.remember_crash(self._repack_key, model_name)

    def _load_timeout(self, settings: LoadSettings) -> float:
        return self._load_timeout_s if self._load_timeout_s is not None else load_timeout_s(settings.model)

    async def _load_in(
        self, worker: WorkerProcess, settings: LoadSettings, use_repack: bool, notes: tuple[str, ...]
    ) -> LoadedModel:
        self._worker = worker
        # A spare waits while other workers write to the same log (a crash, say): what explains
        # a failure of this load is written from now on.
        worker.log_offset = await asyncio.to_thread(log_size, worker.log_path)
        name = Path(settings.model).name
        if self._closing:
            # Its process was still starting when close() came: unload() ends it.
            raise ModelLoadError(f"Not loading {name}: lollma-tui is closing")
        request_id = next(self._ids)
        await worker.send(
            {
                "op": proto.OP_LOAD,
                "id": request_id,
                "settings": proto.load_settings_to_wire(settings),
                "repack": use_repack,
            }
        )
        timeout = self._load_timeout(settings)
        while True:
            try:
                event = await worker.next_event(timeout_s=timeout)
            except WorkerExited as exited:
                self._worker = None
                if exited.crashed and use_repack and settings.repack == "auto":
                    raise _RepackCrash from exited
                how = exited.problem or describe_exit(exited.returncode)
                message = f"llama.cpp {how} while loading {name}"
                if exited.detail:
                    message += f": {exited.detail}"
                if exited.crashed and use_repack and settings.repack == "on":
                    # Asked for, so not undone here; but the likely cause is worth saying.
                    message += (
                        f". Repacked weights were forced on, and they crash on some CPUs "
                        f"({repack.UPSTREAM_ISSUE}): repack auto runs the model without them"
                    )
                self._set_status(BackendState.FAILED, message)
                raise ModelLoadError(message) from exited
            if event.get("id") != request_id:
                continue
            if event.get("ev") == proto.EV_ERROR:
                detail = await asyncio.to_thread(worker.log_detail, errors_only=True)
                await self._stop_worker()
                text = str(event.get("message", "unknown error"))
                message = f"Could not load {name}: {text}"
                if detail and detail not in text:
                    message += f" — llama.cpp: {detail}"
                self._set_status(BackendState.FAILED, message)
                raise ModelLoadError(message)
            if event.get("ev") == proto.EV_LOADED:
                self._loaded = proto.loaded_from_wire(settings, event["model"], notes)
                self._set_status(BackendState.READY, f"{self._loaded.name} ready")
                worker.on_exit = lambda: self._ended_idle(worker)
                self._prepare_spare()
                return self._loaded

    def _ended_idle(self, worker: WorkerProcess) -> None:
        # Killed between replies (the OOM killer, a `kill`): the card said "ready" until the next
        # message. A reply, a load or a stop in progress reads the exit itself.
        busy = self._active is not None or self._lock.locked() or self._closing
        if self._worker is worker and self._loaded is not None and not busy:
            self._worker = self._loaded = None
            self._ended = asyncio.create_task(self._say_ended(worker), name="llama-worker-ended")

    async def _say_ended(self, worker: WorkerProcess) -> None:
        try:
            await worker.next_event()
        except WorkerExited as exited:
            how = exited.problem or describe_exit(exited.returncode)
            detail = f" llama.cpp's log: {exited.detail}." if exited.detail else ""
            if self._worker is None and self._status.state is BackendState.READY:
                message = (
                    f"The llama.cpp worker {how} while idle.{detail} Your next message restarts the model."
                )
                self._set_status(BackendState.FAILED, message)

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

    def _take_spare(self) -> asyncio.Task[WorkerProcess]:
        spare, self._spare = self._spare, None
        return spare if spare is not None else asyncio.create_task(self._spawn(), name="llama-worker-start")

    async def _stop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is None:
            return
        if not spare.done():
            spare.cancel()  # still starting: WorkerProcess.start kills its process
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
        self._drop_restart()
        async with self._lock:
            self._wanted = None
            await self._stop_worker()
            self._loaded = None
            self._set_status(BackendState.UNLOADED, "No model loaded")

    async def close(self) -> None:
        self._closing = True
        try:
            worker = self._worker
            if self._lock.locked() and worker is not None and self._loaded is None:
                # A load holds the lock until it ends, minutes for a big file: quitting would
                # wait that long. Ending its process ends it now.
                worker.kill_now(keep_reader=True)
            await self.unload()
            await self._stop_spare()
        finally:
            self._closing = False

    async def _ensure_running(self) -> WorkerProcess:
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
                raise NoModelError("No model is loaded")
            await self._load_locked(self._wanted, restarting=True)
            assert self._worker is not None
            return self._worker

    # -- chat ---------------------------------------------------------------------------------

    async def stream_chat(
        self, messages: Sequence[ChatMessage], sampling: SamplingSettings
    ) -> AsyncIterator[ChatEvent]:
        asked = time.perf_counter()
        self._preparing, self._cancel_before_start = True, False
        try:
            worker = await self._ensure_running()
            # A token count reads the same event queue; it takes milliseconds, so wait it out.
            while self._counting is not None:
                await asyncio.shield(self._counting)
        finally:
            self._preparing = False
        loaded = self._loaded
        assert loaded is not None
        if self._cancel_before_start:
            # Stopped while the worker restarted: the reply ends before it began.
            self._cancel_before_start = False
            yield ReplyDone("cancelled", proto.reply_stats(loaded, asked, None, None))
            return
        request_id = next(self._ids)
        self._active = request_id
        self._cancelling = False
        self._idle.clear()
        self._set_status(BackendState.GENERATING, f"{loaded.name} generating")
        started = time.perf_counter()
        first_at: float | None = None
        made = proto.TokensMade()
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
                try:
                    event = await worker.next_event()
                except WorkerExited as exited:
                    self._worker = None
                    if self._cancelling:
                        finished = True
                        self._schedule_restart()
                        yield ReplyDone("cancelled", proto.reply_stats(loaded, started, first_at, None, made))
                        return
                    self._loaded = None
                    message = await self._crashed_while_generating(exited, loaded)
                    self._set_status(BackendState.FAILED, message)
                    raise BackendCrashedError(message) from exited
                if event.get("id") != request_id:
                    continue
                kind = event.get("ev")
                if kind == proto.EV_DELTA:
                    if first_at is None:
                        first_at = time.perf_counter()
                    at = event.get("t")
                    made_at = at if isinstance(at, float) else None
                    made.saw(event.get("n"), made_at)
                    if event.get("thinking"):
                        yield ThinkingDelta(str(event["thinking"]), event.get("n"), made_at)
                    if event.get("text"):
                        yield TextDelta(str(event["text"]), event.get("n"), made_at)
                elif kind == proto.EV_DONE:
                    finished = True
                    figures = proto.WorkerReplyFigures.from_wire(event["figures"])
                    reason = figures.finish_reason
                    finish = reason if reason in ("stop", "length", "cancelled") else "stop"
                    yield ReplyDone(finish, proto.reply_stats(loaded, started, first_at, figures))  # type: ignore[arg-type]
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

    async def _crashed_while_generating(self, exited: WorkerExited, loaded: LoadedModel) -> str:
        how = exited.problem or describe_exit(exited.returncode)
        settings = loaded.settings
        # What llama.cpp did, not what was asked: with nothing repacked (BF16, F32), repacking
        # cannot be the cause, and blaming it would turn it off for this file for good.
        if exited.crashed and loaded.repack and settings.repack == "auto":
            # A larger prompt batch can take another kernel path than the load's warm-up did:
            # the restart that follows runs without repacked weights.
            await asyncio.to_thread(self._remember_repack_crash, Path(settings.model).name)
            self._pending_notes = (repack.fallback_note(),)
            return (
                f"The llama.cpp worker {how} with repacked weights on. The conversation is kept; "
                "your next message restarts the model with repacking off."
            )
        detail = f" llama.cpp's log: {exited.detail}." if exited.detail else ""
        return (
            f"The llama.cpp worker {how}.{detail} The conversation is kept; your next message "
            "restarts the model."
        )

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
                try:
                    event = await worker.next_event()
                except WorkerExited:
                    return None  # the exit stays queued for whoever streams next
                if event.get("id") == request_id and event.get("ev") == proto.EV_TOKENS:
                    count = event.get("count")
                    return int(count) if count is not None else None
        finally:
            self._counting = None
            done.set_result(None)

    async def cancel(self) -> None:
        request_id = self._active
        worker = self._worker
        if request_id is None and self._preparing:
            self._cancel_before_start = True
            return
        if request_id is None or worker is None:
            return
        self._cancelling = True
        await worker.send({"op": proto.OP_CANCEL, "id": request_id})
        try:
            await asyncio.wait_for(self._idle.wait(), self._cancel_grace_s)
        except TimeoutError:
            # Stuck inside one long llama_decode call: only killing the process stops it.
            worker.kill_now(keep_reader=True)
            await self._idle.wait()

    def _drop_restart(self) -> None:
        # The worker restarting after a kill (a stop stuck in a prompt batch) would load the old
        # model in full, under the lock, before the unload or the new load that replaces it.
        restart, self._restart = self._restart, None
        if restart is not None:
            restart.cancel()

    def _schedule_restart(self) -> None:
        if self._wanted is None:
            return
        wanted = self._wanted

        async def restart() -> LoadedModel:
            async with self._lock:
                return await self._load_locked(wanted, restarting=True)

        self._restart = asyncio.create_task(restart(), name="llama-worker-restart")


def _with_absolute_model(settings: LoadSettings) -> LoadSettings:
    """The worker runs in a folder of its own: a path relative to where the user started the app
    would name nothing there."""
    model = os.path.expanduser(settings.model)
    return settings if os.path.isabs(model) else settings.with_changes(model=os.path.abspath(model))

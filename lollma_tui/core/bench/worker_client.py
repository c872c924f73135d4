"""Start a bench worker and read its events: `bench.protocol` over the one `WorkerProcess`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lollma_tui.core.bench import protocol as proto
from lollma_tui.core.workers.process import WorkerExited, WorkerProcess

WORKER_MODULE = "lollma_tui.core.bench.bench_worker"


class WorkerFailed(Exception):
    """The worker could not start, could not load the model, or died; one readable line."""

    def __init__(self, message: str, *, crashed: bool = False) -> None:
        super().__init__(message)
        self.crashed = crashed
        """It died of a crash signal (SIGSEGV and the like), not of an error it reported."""


async def start_bench_worker(log_path: Path, *, python: str | None = None) -> WorkerProcess:
    try:
        return await WorkerProcess.start(WORKER_MODULE, name="bench worker", log_path=log_path, python=python)
    except WorkerExited as error:
        raise WorkerFailed(str(error), crashed=error.crashed) from error


async def next_bench_event(worker: WorkerProcess) -> dict[str, Any]:
    """The next event; WorkerFailed when the worker exits or reports an error."""
    try:
        event = await worker.next_event()
    except WorkerExited as exited:
        raise WorkerFailed(str(exited), crashed=exited.crashed) from exited
    if event.get("ev") == proto.EV_ERROR:
        message = str(event.get("message") or "unknown error")
        detail = await asyncio.to_thread(worker.log_detail, errors_only=True)
        if detail and detail not in message:
            message += f" — llama.cpp: {detail}"
        raise WorkerFailed(message)
    return event


async def bench_events(worker: WorkerProcess) -> AsyncIterator[dict[str, Any]]:
    """Events up to and including ``done``."""
    while True:
        event = await next_bench_event(worker)
        yield event
        if event.get("ev") == proto.EV_DONE:
            return

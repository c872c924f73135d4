"""One look at each host: reachable or not, its models, what is loaded now. The hosts view shows it.

Each host is asked on its own and briefly; one that does not answer is reported with the reason
and never holds the others up (`report_hosts` asks them all at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from lollma_tui.core.backends.base import BackendError
from lollma_tui.core.hosts import HostEntry
from lollma_tui.core.settings import BackendKind

REPORT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class HostReport:
    entry: HostEntry
    reachable: bool
    message: str
    """"llama-server b4500", "Ollama 0.33.0", or why it could not be asked."""
    models: tuple[str, ...] = ()
    loaded: tuple[str, ...] = ()
    """What the server has in memory now, where it says (Ollama /api/ps, LM Studio, llama-server)."""
    gpu_summary: str | None = None
    """The host's GPU line from its remote hardware, filled in by whoever watches it."""


async def report_host(entry: HostEntry, *, timeout_s: float = REPORT_TIMEOUT_S) -> HostReport:
    try:
        return await asyncio.wait_for(_ask(entry, timeout_s), timeout_s)
    except TimeoutError:
        return HostReport(entry, False, f"no answer within {timeout_s:g} s")
    except BackendError as error:
        return HostReport(entry, False, str(error))


async def report_hosts(
    entries: Sequence[HostEntry], *, timeout_s: float = REPORT_TIMEOUT_S
) -> list[HostReport]:
    return list(await asyncio.gather(*(report_host(e, timeout_s=timeout_s) for e in entries)))


async def _ask(entry: HostEntry, timeout_s: float) -> HostReport:
    if entry.kind is BackendKind.OPENAI:
        from lollma_tui.core.backends.openai import OpenAIBackend

        openai = OpenAIBackend(entry.url, api_key_env=entry.api_key_env, timeout_s=timeout_s)
        try:
            extras = await openai.probe()
            served = await openai.list_models()
        finally:
            await openai.close()
        loaded = [m.id for m in served if m.loaded]
        if not loaded and extras.model_path is not None and len(served) == 1:
            loaded = [served[0].id]  # llama-server serves the one model it was started with
        return HostReport(entry, True, extras.label, tuple(m.id for m in served), tuple(loaded))
    if entry.kind is BackendKind.OLLAMA:
        from lollma_tui.core.backends.ollama import OllamaBackend

        ollama = OllamaBackend(entry.url, timeout_s=timeout_s, unload_on_close=False)
        try:
            version = await ollama.version()
            installed = await ollama.list_models()
            running = await ollama.running()
        finally:
            await ollama.close()
        return HostReport(
            entry,
            True,
            f"Ollama {version}",
            tuple(m.name for m in installed),
            tuple(m.name for m in running),
        )
    return HostReport(entry, True, "llama.cpp in this app")

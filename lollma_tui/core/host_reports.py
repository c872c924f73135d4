"""One look at each host: reachable or not, its models, what is loaded now. The hosts view shows it.

Each host is asked on its own and briefly; one that does not answer is reported with the reason
and never holds the others up (`report_hosts` asks them all at once). `survey_hosts` adds each
host's GPU summary: one reading of its hardware over ssh, where the host has `hw`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from lollma_tui.core.backends.base import BackendError
from lollma_tui.core.backends.ollama_host import OllamaHostError
from lollma_tui.core.backends.openai_host import BaseUrlError
from lollma_tui.core.hardware.snapshots import SystemSnapshot
from lollma_tui.core.hosts import HostEntry
from lollma_tui.core.settings import BackendKind

REPORT_TIMEOUT_S = 5.0
HARDWARE_TIMEOUT_S = 15.0
"""An ssh login and a first sample: slower than asking a server."""


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
    except (BackendError, OllamaHostError, BaseUrlError) as error:
        # An address that cannot be a server's (a malformed OLLAMA_HOST) is that host's problem.
        return HostReport(entry, False, str(error))


async def report_hosts(
    entries: Sequence[HostEntry],
    *,
    timeout_s: float = REPORT_TIMEOUT_S,
    known: Mapping[str, HostReport] | None = None,
) -> list[HostReport]:
    """Each host's report; those in `known` (by name) are not asked again."""
    given = dict(known or {})

    async def report_of(entry: HostEntry) -> HostReport:
        return given[entry.name] if entry.name in given else await report_host(entry, timeout_s=timeout_s)

    return list(await asyncio.gather(*(report_of(e) for e in entries)))


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


def model_to_load(report: HostReport, remembered: str | None) -> str | None:
    """The model `/host NAME` loads when no model is named, or None when it must be chosen.

    The one used there before in this session, else the one the server has loaded, else its
    only model.
    """
    if remembered and (remembered in report.models or not report.models):
        return remembered
    if report.loaded:
        return report.loaded[0]
    if len(report.models) == 1:
        return report.models[0]
    return None


async def survey_hosts(
    entries: Sequence[HostEntry],
    *,
    known_gpus: Mapping[str, str] | None = None,
    ssh_options: Sequence[str] = (),
    timeout_s: float = REPORT_TIMEOUT_S,
    hardware_timeout_s: float = HARDWARE_TIMEOUT_S,
) -> list[HostReport]:
    """`report_hosts`, with each host's GPU summary (`gpu_summaries`)."""
    reports, gpus = await asyncio.gather(
        report_hosts(entries, timeout_s=timeout_s),
        gpu_summaries(entries, known_gpus=known_gpus, ssh_options=ssh_options, timeout_s=hardware_timeout_s),
    )
    return with_gpus(reports, gpus)


async def gpu_summaries(
    entries: Sequence[HostEntry],
    *,
    known_gpus: Mapping[str, str] | None = None,
    ssh_options: Sequence[str] = (),
    timeout_s: float = HARDWARE_TIMEOUT_S,
) -> list[str | None]:
    """Each host's GPU line: from `known_gpus` (by host name, e.g. the panel's live reading),
    else read once over ssh for hosts with `hw`; None for the others."""
    known = dict(known_gpus or {})

    async def gpu_of(entry: HostEntry) -> str | None:
        if entry.name in known:
            return known[entry.name]
        if entry.hw is None:
            return None
        return await _read_gpu_summary(entry, tuple(ssh_options), timeout_s)

    return list(await asyncio.gather(*(gpu_of(e) for e in entries)))


def with_gpus(reports: Sequence[HostReport], gpus: Sequence[str | None]) -> list[HostReport]:
    return [replace(r, gpu_summary=g) if g else r for r, g in zip(reports, gpus, strict=True)]


async def _read_gpu_summary(entry: HostEntry, ssh_options: tuple[str, ...], timeout_s: float) -> str:
    """One hardware reading of `entry`'s machine over ssh: its GPU line, or why not.

    Awaited, not run in a thread of the loop's pool: a machine gone quiet held a pool thread
    for the whole timeout, several of them held the pool that name lookups and loads need
    (healthy servers read "no answer within 5 s"), and quitting waited for them."""
    from lollma_tui.core.hardware.remote import LinkState, LinkStatus, RemoteHardwareSampler

    assert entry.hw is not None
    loop = asyncio.get_running_loop()
    first: asyncio.Future[SystemSnapshot | LinkStatus] = loop.create_future()

    def settle(item: SystemSnapshot | LinkStatus) -> None:
        if not first.done():
            first.set_result(item)

    def arrived(item: SystemSnapshot | LinkStatus) -> None:  # on the sampler's thread
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, item)

    def on_status(status: LinkStatus) -> None:
        if status.state is LinkState.STALE:
            arrived(status)

    sampler = RemoteHardwareSampler(
        arrived,
        entry.hw,
        command=entry.hw_command,
        ssh_options=ssh_options,
        on_status=on_status,
        backoff_initial_s=timeout_s,
    )
    sampler.start()
    try:
        reading = await asyncio.wait_for(first, timeout_s)
    except TimeoutError:
        return f"no hardware reading over ssh within {timeout_s:g} s"
    finally:
        sampler.stop(timeout=0)  # its session ends now; its thread, a daemon, on its own
    if isinstance(reading, SystemSnapshot):
        return reading.gpu_summary or "no GPU reported"
    return reading.message

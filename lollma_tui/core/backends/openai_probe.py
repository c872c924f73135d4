"""Asking an OpenAI-compatible server what else it offers: one short GET per known extra.

Every probe is bounded in time and size and fails on its own: a server without /metrics, or
one that sends a broken /slots, still yields everything else that answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx2

from lollma_tui.core.backends.openai_extras import (
    ServerExtras,
    ServerKind,
    json_body,
    read_lmstudio_models,
    read_metrics,
    read_props,
    read_slots,
)
from lollma_tui.core.checked import WireError, mapping, optional_text

PROBE_TIMEOUT_S = 2.0
MAX_BODY = 2 << 20
"""Largest reply read from an extra (a /props holds the chat template: tens of KB)."""

Reply = tuple[int, bytes]


async def fetch(http: httpx2.AsyncClient, url: str, *, limit: int = MAX_BODY) -> Reply | None:
    """(status, body) of a GET, None when nothing answered; WireError past `limit` bytes."""
    try:
        async with http.stream("GET", url, timeout=PROBE_TIMEOUT_S) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise WireError(f"{httpx2.URL(url).path}: reply larger than {limit} bytes")
            return response.status_code, bytes(body)
    except httpx2.HTTPError:
        return None


async def probe_server(
    http: httpx2.AsyncClient, root: str, *, slots_and_metrics: bool = True
) -> ServerExtras:
    """Everything `root` (the URL without /v1) tells about itself.

    `slots_and_metrics` False skips the two endpoints that only change while generating, for a
    quick identification.
    """
    paths = ["/props", "/health", "/version", "/api/v0/models", "/api/version"]
    if slots_and_metrics:
        paths += ["/slots", "/metrics"]
    replies = await asyncio.gather(*(_safe_fetch(http, root + path) for path in paths))
    extras = ServerExtras()
    problems: list[str] = []
    for path, reply in zip(paths, replies, strict=True):
        if isinstance(reply, WireError):
            problems.append(str(reply))
            continue
        if reply is None or reply[0] not in (200, 503):
            continue
        try:
            extras = _apply(extras, path, reply, problems)
        except WireError as error:
            problems.append(str(error))
    return replace(extras, problems=(*extras.problems, *problems))


async def refresh_live(http: httpx2.AsyncClient, root: str, extras: ServerExtras) -> ServerExtras:
    """`extras` with /slots, /metrics and /health read again (for a panel refreshing them)."""
    paths = [p for p in ("/slots", "/metrics", "/health") if p in extras.endpoints]
    replies = await asyncio.gather(*(_safe_fetch(http, root + path) for path in paths))
    problems: list[str] = []
    if paths and all(reply is None or isinstance(reply, WireError) for reply in replies):
        # Nothing answered (the server stopped): what it said last is not shown as if current.
        return replace(extras, slots=(), metrics=None, loading=False, silent=True, problems=())
    fresh = replace(extras, problems=(), loading=False, silent=False)
    for path, reply in zip(paths, replies, strict=True):
        if isinstance(reply, WireError):
            problems.append(str(reply))
        elif reply is not None and reply[0] in (200, 503):
            try:
                fresh = _apply(fresh, path, reply, problems)
            except WireError as error:
                problems.append(str(error))
    return replace(fresh, problems=tuple(problems))


async def _safe_fetch(http: httpx2.AsyncClient, url: str) -> Reply | WireError | None:
    try:
        return await fetch(http, url)
    except WireError as error:
        return error


def _found(extras: ServerExtras, path: str, **changes: object) -> ServerExtras:
    endpoints = extras.endpoints if path in extras.endpoints else (*extras.endpoints, path)
    return replace(extras, endpoints=endpoints, **changes)  # type: ignore[arg-type]


def _apply(extras: ServerExtras, path: str, reply: Reply, problems: list[str]) -> ServerExtras:
    status, body = reply
    if path == "/health":
        # llama-server: 503 {"error": {"message": "Loading model"}} until the model is ready.
        return _found(extras, path, loading=status == 503)
    if status != 200:
        return extras
    if path == "/metrics":
        metrics, kind, found_problems = read_metrics(body.decode("utf-8", "replace"))
        problems.extend(found_problems)
        if kind is ServerKind.UNKNOWN:
            return extras
        changes: dict[str, object] = {"metrics": metrics}
        if extras.kind is ServerKind.UNKNOWN:
            changes["kind"] = kind
        return _found(extras, path, **changes)
    data = json_body(body, path)
    if path == "/props":
        return _found(read_props(data, extras), path)
    if path == "/slots":
        slots, found_problems = read_slots(data)
        problems.extend(found_problems)
        return _found(extras, path, slots=slots)
    if path == "/api/v0/models":
        models, found_problems = read_lmstudio_models(data)
        problems.extend(found_problems)
        return _found(extras, path, kind=ServerKind.LM_STUDIO, models=models)
    version = optional_text(mapping(data, path), "version", path, max_length=100)
    if version is None:
        return extras
    if path == "/version" and extras.kind in (ServerKind.UNKNOWN, ServerKind.VLLM):
        return _found(extras, path, kind=ServerKind.VLLM, version=version)
    if path == "/api/version" and extras.kind is ServerKind.UNKNOWN:
        return _found(extras, path, kind=ServerKind.OLLAMA, version=version)
    return extras

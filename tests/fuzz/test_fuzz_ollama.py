"""Fuzzing the Ollama response decoding: whatever a server answers, the backend returns its
records or raises a BackendError, and a reply never leaves the status at "generating".

Replies travel over real HTTP from the Ollama test server (`reply_raw`) through the real
`ollama` client: real replies with places replaced or removed, hostile values of the same kind,
arbitrary documents and bytes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fuzzing import fuzz, json_values, mutated_json, same_shape_json
from hypothesis import event, given, strategies as st
from ollama_server import OllamaTestServer

from lollma_tui.core.backends.base import BackendError, BackendState
from lollma_tui.core.backends.ollama import OllamaBackend
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings

MODEL = "tinyllama:1b-q4_K_M"
NDJSON = "application/x-ndjson"


@dataclass
class Harness:
    server: OllamaTestServer
    backend: OllamaBackend
    loop: asyncio.AbstractEventLoop
    show: dict[str, Any]
    tags: dict[str, Any]
    ps: dict[str, Any]
    chunks: list[dict[str, Any]]

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with OllamaTestServer() as server:
        base = server.url
        show = httpx.post(f"{base}/api/show", json={"model": MODEL}, timeout=5).json()
        tags = httpx.get(f"{base}/api/tags", timeout=5).json()
        ask = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        reply = httpx.post(f"{base}/api/chat", json=ask, timeout=5)
        chunks = [json.loads(line) for line in reply.text.splitlines()]
        ps = httpx.get(f"{base}/api/ps", timeout=5).json()
        loop = asyncio.new_event_loop()
        backend = OllamaBackend(server.host, timeout_s=5.0, connect_timeout_s=2.0)
        loop.run_until_complete(backend.load(LoadSettings(backend=BackendKind.OLLAMA, model=MODEL)))
        try:
            yield Harness(server, backend, loop, show, tags, ps, chunks)
        finally:
            loop.run_until_complete(backend.close())
            loop.close()


def outcome(harness: Harness, call: Any) -> Any:
    try:
        result = harness.run(call)
    except BackendError as error:
        event(f"error: {str(error)[:40]}")
        return None
    event("read")
    return result


documents = st.one_of(json_values(max_leaves=20), st.binary())


def body(document: Any) -> bytes:
    return document if isinstance(document, bytes) else json.dumps(document).encode()


@given(choice=st.integers(0, 2), data=st.data())
@fuzz
def test_show_replies(harness: Harness, choice: int, data: st.DataObject) -> None:
    document = data.draw([mutated_json(harness.show), same_shape_json(harness.show), documents][choice])
    harness.server.reply_raw("/api/show", body(document))
    info = outcome(harness, harness.backend.show(MODEL))
    if info is not None:
        assert info.n_layers is None or 0 <= info.n_layers <= 4096


@given(choice=st.integers(0, 2), listing=st.booleans(), data=st.data())
@fuzz
def test_listing_replies(harness: Harness, choice: int, listing: bool, data: st.DataObject) -> None:
    seed = harness.tags if listing else harness.ps
    document = data.draw([mutated_json(seed), same_shape_json(seed), documents][choice])
    harness.server.reply_raw("/api/tags" if listing else "/api/ps", body(document))
    records = outcome(harness, harness.backend.list_models() if listing else harness.backend.running())
    for record in records or ():
        _ = (record.name, record.size_bytes)
        if not listing:
            _ = (record.placement, record.gpu_share)


async def _reply(backend: OllamaBackend) -> list[Any]:
    return [event async for event in backend.stream_chat([], SamplingSettings())]


@given(choice=st.integers(0, 2), data=st.data())
@fuzz
def test_chat_stream_replies(harness: Harness, choice: int, data: st.DataObject) -> None:
    lines = []
    for chunk in harness.chunks[-3:]:
        mutate = [mutated_json(chunk), same_shape_json(chunk), documents][choice]
        lines.append(body(data.draw(mutate)) if data.draw(st.booleans()) else body(chunk))
    harness.server.reply_raw("/api/chat", b"\n".join(lines) + b"\n", content_type=NDJSON)
    outcome(harness, _reply(harness.backend))
    assert harness.backend.status.state is not BackendState.GENERATING

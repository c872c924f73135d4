"""Replies no working Ollama sends (NaN, wrong shapes, deep nesting) are one clear error.

The server is the Ollama test server over real HTTP; `reply_raw` makes it answer a path with
exact bytes, as a broken server or something else listening on the port would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ollama_server import OllamaTestServer
from ollama_server.fixtures import ollama_server

from lollma_tui.core.backends.base import BackendError, BackendState, ReplyDone
from lollma_tui.core.backends.ollama import OllamaBackend
from lollma_tui.core.backends.ollama_errors import UNREADABLE_REPLY
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings

__all__ = ["ollama_server"]

MODEL = "tinyllama:1b-q4_K_M"
NDJSON = "application/x-ndjson"


@pytest.fixture
async def backend(ollama_server: OllamaTestServer) -> AsyncIterator[OllamaBackend]:
    instance = OllamaBackend(ollama_server.host, timeout_s=5.0, connect_timeout_s=2.0)
    yield instance
    await instance.close()


def settings() -> LoadSettings:
    return LoadSettings(backend=BackendKind.OLLAMA, model=MODEL)


def real_show(server: OllamaTestServer) -> dict[str, Any]:
    reply = httpx.post(f"{server.url}/api/show", json={"model": MODEL}, timeout=5)
    reply.raise_for_status()
    document: dict[str, Any] = reply.json()
    return document


async def assert_load_fails_cleanly(backend: OllamaBackend) -> BackendError:
    with pytest.raises(BackendError) as caught:
        await backend.load(settings())
    assert UNREADABLE_REPLY in str(caught.value)
    assert backend.status.state is BackendState.FAILED, "never left at loading"
    assert backend.loaded is None
    return caught.value


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_in_model_info(
    ollama_server: OllamaTestServer, backend: OllamaBackend, constant: str
) -> None:
    show = real_show(ollama_server)
    show["model_info"]["llama.block_count"] = "@"
    ollama_server.reply_raw("/api/show", json.dumps(show).replace('"@"', constant).encode())
    await assert_load_fails_cleanly(backend)
    # The next, well-formed reply loads normally.
    loaded = await backend.load(settings())
    assert loaded.n_layers == 22 and backend.status.state is BackendState.READY


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2, 3]",
        b'"just a string"',
        b'{"model_info": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"model_info": [1]}',
        b"{not json",
    ],
    ids=["a list", "a string", "nested 5000 deep", "model_info a list", "broken JSON"],
)
async def test_show_replies_of_the_wrong_shape(
    ollama_server: OllamaTestServer, backend: OllamaBackend, body: bytes
) -> None:
    ollama_server.reply_raw("/api/show", body)
    await assert_load_fails_cleanly(backend)


async def test_odd_but_finite_model_info_means_unknown(
    ollama_server: OllamaTestServer, backend: OllamaBackend
) -> None:
    show = real_show(ollama_server)
    show["model_info"]["general.architecture"] = {"not": "a string"}
    ollama_server.reply_raw("/api/show", json.dumps(show).encode())
    info = await backend.show(MODEL)
    assert info.architecture == "llama"  # from the details' family
    show = real_show(ollama_server)
    show["model_info"]["llama.block_count"] = 10**12
    show["model_info"]["llama.context_length"] = 2.5
    ollama_server.reply_raw("/api/show", json.dumps(show).encode())
    info = await backend.show(MODEL)
    assert info.n_layers is None and info.n_ctx_train is None


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/tags", b'{"models": [{"model": "x", "size": Infinity}]}'),
        ("/api/tags", b'{"models": 5}'),
        ("/api/ps", b"[]"),
        ("/api/ps", b'{"models": [{"model": "x", "size_vram": NaN}]}'),
    ],
    ids=["tags Infinity", "tags not a list", "ps a list", "ps NaN"],
)
async def test_listings_of_the_wrong_shape(
    ollama_server: OllamaTestServer, backend: OllamaBackend, path: str, body: bytes
) -> None:
    ollama_server.reply_raw(path, body)
    with pytest.raises(BackendError, match=UNREADABLE_REPLY):
        await (backend.list_models() if path == "/api/tags" else backend.running())


async def reply_to(backend: OllamaBackend) -> list[Any]:
    return [event async for event in backend.stream_chat([], SamplingSettings())]


@pytest.mark.parametrize(
    "lines",
    [
        [b"[1]"],
        [b'{"model": "x", "message": {"role": "assistant", "content": "hi"}, "done": false}', b"{oops"],
        [b'{"model": "x", "message": {"role": "assistant", "content": 5}, "done": false}'],
        [b'{"model": "x", "done": true, "eval_count": NaN}'],
        [b'{"error": {"nested": "object"}}'],
    ],
    ids=["a list", "broken line", "content a number", "NaN count", "error an object"],
)
async def test_chat_stream_lines_of_the_wrong_shape(
    ollama_server: OllamaTestServer, backend: OllamaBackend, lines: list[bytes]
) -> None:
    await backend.load(settings())
    ollama_server.reply_raw("/api/chat", b"\n".join(lines) + b"\n", content_type=NDJSON)
    with pytest.raises(BackendError) as caught:
        await reply_to(backend)
    assert UNREADABLE_REPLY in str(caught.value) or "failed mid-reply" in str(caught.value)
    assert backend.status.state is not BackendState.GENERATING


async def test_final_figures_beyond_any_float_are_dropped(
    ollama_server: OllamaTestServer, backend: OllamaBackend
) -> None:
    await backend.load(settings())
    final = {
        "model": MODEL,
        "message": {"role": "assistant", "content": "hi"},
        "done": True,
        "done_reason": "stop",
        "eval_count": 10**400,
        "eval_duration": 1000,
        "prompt_eval_count": 3,
        "prompt_eval_duration": -5,
    }
    ollama_server.reply_raw("/api/chat", json.dumps(final).encode() + b"\n", content_type=NDJSON)
    events = await reply_to(backend)
    done = events[-1]
    assert isinstance(done, ReplyDone) and done.stats is not None
    assert done.stats.gen_tps is None and done.stats.prompt_tps is None


async def test_sizes_past_64_bits_mean_unknown(
    ollama_server: OllamaTestServer, backend: OllamaBackend
) -> None:
    # Found by the fuzzer: the GPU share and placement divided one such size by another.
    huge = 10**400
    model = {"model": "x", "size": huge, "size_vram": huge // 2, "context_length": -3}
    ollama_server.reply_raw("/api/ps", json.dumps({"models": [model]}).encode())
    (running,) = await backend.running()
    assert (running.size_bytes, running.vram_bytes, running.context_length) == (0, 0, None)
    assert running.placement == "100% CPU" and running.gpu_share == 0.0

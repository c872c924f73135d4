"""`OpenAITestServer`: an OpenAI-compatible server on 127.0.0.1 speaking one real server's dialect.

It runs in a background thread with its own event loop. Tests pick a `Flavour` (which server's
shapes to imitate, see shapes.py), queue scripted replies, inject faults, and read what it
received. Replies stream as server-sent events at a set rate of tokens per second, so timing
figures are known in advance.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from site_thread import SiteThread

from . import shapes
from .shapes import Flavour, ServedSpec


@dataclass
class Script:
    """One scripted reply: its tokens, and what goes wrong, if anything."""

    text: str = "Hello from the test server, one token at a time."
    reasoning: str = ""
    """Streamed first as `reasoning_content` deltas (llama-server, vLLM)."""
    finish: str = "stop"
    cut_after: int | None = None
    """Drop the connection after this many tokens, without an end."""
    error_after: int | None = None
    """Send an ``{"error": …}`` event after this many tokens (the status stays 200)."""
    status: int | None = None
    """Answer with this HTTP error before streaming anything."""
    message: str = "the test server was told to fail"
    content_type: str = "application/json"
    """Of the error's body: anything else sends `message` as it is (a proxy's HTML page)."""

    def tokens(self) -> list[str]:
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words) if w or i == 0]


@dataclass
class Received:
    path: str
    body: Any
    authorization: str | None


@dataclass
class Records:
    requests: list[Received] = field(default_factory=list)
    disconnects: int = 0
    """Replies the client abandoned midway: cancellation that reached the server."""
    replies: list[dict[str, Any]] = field(default_factory=list)
    """What the server itself measured for each finished reply (its `timings`)."""


class OpenAITestServer:
    def __init__(
        self,
        flavour: Flavour = Flavour.LLAMA_SERVER,
        *,
        models: list[ServedSpec] | None = None,
        tokens_per_second: float = 0.0,
        api_key: str | None = None,
        n_ctx: int = 8192,
    ) -> None:
        self.flavour = flavour
        self.models = models if models is not None else [ServedSpec("qwen2.5-7b-instruct-q4_k_m")]
        self.tokens_per_second = tokens_per_second
        """0 sends as fast as possible."""
        self.api_key = api_key
        self.n_ctx = n_ctx
        self.loading = False
        """/health answers 503 and chat requests are refused while True (llama-server)."""
        self.scripts: list[Script] = []
        self.default = Script()
        self.records = Records()
        self.prompt_ms = 40.0
        self.models_delay_s = 0.0
        """How long /v1/models takes to answer: a server that hangs, or a network gone quiet."""
        self.one_shot_delay_s = 0.0
        """How long a request that does not stream (a warm-up) waits before its answer: a server
        loading a large model just in time, or one that hangs."""
        self.port = 0
        self._site: SiteThread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def start(self) -> OpenAITestServer:
        self._site = SiteThread(self._application, name="openai-test-server", port=self.port)
        self.port = self._site.start()
        return self

    def _application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/health", self._health)
        app.router.add_get("/props", self._props)
        app.router.add_get("/slots", self._slots)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/version", self._version)
        app.router.add_get("/api/v0/models", self._lmstudio_models)
        return app

    def stop(self) -> None:
        if self._site is not None:
            self._site.stop()
            self._site = None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- steering -----------------------------------------------------------------------------

    def queue(self, *scripts: Script | str) -> None:
        self.scripts += [Script(text=s) if isinstance(s, str) else s for s in scripts]

    def chat_requests(self) -> list[Received]:
        return [r for r in self.records.requests if r.path == "/v1/chat/completions"]

    async def until(self, predicate: Callable[[], Any], within_s: float = 5.0) -> Any:
        deadline = time.monotonic() + within_s
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {within_s} s")
            await asyncio.sleep(0.01)
        return value

    # -- handlers -----------------------------------------------------------------------------

    def _refused(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return web.json_response(
            shapes.error_body("Invalid API Key", "authentication_error", 401), status=401
        )

    async def _models(self, request: web.Request) -> web.Response:
        self.records.requests.append(Received(request.path, None, request.headers.get("Authorization")))
        await asyncio.sleep(self.models_delay_s)
        return self._refused(request) or web.json_response(shapes.models_list(self.flavour, self.models))

    async def _health(self, request: web.Request) -> web.Response:
        if self.flavour is Flavour.LLAMA_SERVER:
            if self.loading:
                body = shapes.error_body("Loading model", "unavailable_error", 503)
                return web.json_response(body, status=503)
            return web.json_response({"status": "ok"})
        if self.flavour is Flavour.VLLM:
            return web.Response(status=200)
        raise web.HTTPNotFound()

    async def _props(self, request: web.Request) -> web.Response:
        if self.flavour is not Flavour.LLAMA_SERVER:
            raise web.HTTPNotFound()
        return web.json_response(shapes.llama_props(f"/models/{self.models[0].id}.gguf", self.n_ctx, 1))

    async def _slots(self, request: web.Request) -> web.Response:
        if self.flavour is not Flavour.LLAMA_SERVER:
            raise web.HTTPNotFound()
        return web.json_response(shapes.llama_slots(self.n_ctx, busy=False))

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.flavour is Flavour.LLAMA_SERVER:
            return web.Response(text=shapes.llama_metrics(0.25, 0, 0))
        if self.flavour is Flavour.VLLM:
            return web.Response(text=shapes.vllm_metrics(self.models, 0.125, 1, 2))
        raise web.HTTPNotFound()

    async def _version(self, request: web.Request) -> web.Response:
        if self.flavour is not Flavour.VLLM:
            raise web.HTTPNotFound()
        return web.json_response({"version": shapes.VLLM_VERSION})

    async def _lmstudio_models(self, request: web.Request) -> web.Response:
        if self.flavour is not Flavour.LM_STUDIO:
            raise web.HTTPNotFound()
        return web.json_response(shapes.lmstudio_models(self.models))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.records.requests.append(Received(request.path, body, request.headers.get("Authorization")))
        refused = self._refused(request)
        if refused is not None:
            return refused
        model = body.get("model")
        if self.loading:
            return web.json_response(shapes.error_body("Loading model", "unavailable_error", 503), status=503)
        if model not in {m.id for m in self.models}:
            error = shapes.error_body(f"The model `{model}` does not exist.", "NotFoundError", 404)
            return web.json_response(error, status=404)
        # Queued scripts are for streamed replies; a one-shot request (a warm-up) gets the default.
        script = self.scripts.pop(0) if self.scripts and body.get("stream") else self.default
        if script.status is not None and script.content_type != "application/json":
            return web.Response(status=script.status, text=script.message, content_type=script.content_type)
        if script.status is not None:
            return web.json_response(
                shapes.error_body(script.message, "server_error", script.status), status=script.status
            )
        if not body.get("stream"):
            await asyncio.sleep(self.one_shot_delay_s)
            if script.cut_after is not None and request.transport is not None:
                request.transport.close()  # a server that crashes answering it
                return web.Response()
            text = "".join(script.tokens()[: body.get("max_tokens") or None])
            message = {"role": "assistant", "content": text}
            return web.json_response(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": "length"}],
                }
            )
        return await self._stream(request, body, script)

    async def _stream(self, request: web.Request, body: dict[str, Any], script: Script) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        model = body["model"]
        tokens = script.tokens()
        limit = body.get("max_tokens")
        finish = script.finish
        if isinstance(limit, int) and limit < len(tokens):
            tokens, finish = tokens[:limit], "length"
        rate = self.tokens_per_second
        loop = asyncio.get_running_loop()

        async def send(data: dict[str, Any]) -> None:
            await response.write(f"data: {json.dumps(data)}\n\n".encode())

        try:
            await send(shapes.chunk(model, {"role": "assistant", "content": ""}))
            for piece in script.reasoning.split(" ") if script.reasoning else ():
                await send(shapes.chunk(model, {"reasoning_content": piece + " "}))
            started = loop.time()
            for i, token in enumerate(tokens):
                if script.cut_after is not None and i == script.cut_after:
                    request.transport.close()  # type: ignore[union-attr]
                    return response
                if script.error_after is not None and i == script.error_after:
                    await send(shapes.error_body(script.message, "server_error", 500))
                    return response
                if rate > 0:
                    await asyncio.sleep(max(0.0, started + (i + 1) / rate - loop.time()))
                await send(shapes.chunk(model, {"content": token}))
            predicted_ms = (loop.time() - started) * 1000
            await self._finish(send, body, model, finish, len(tokens), predicted_ms)
            await response.write(b"data: [DONE]\n\n")
        except (asyncio.CancelledError, ConnectionResetError):
            self.records.disconnects += 1
            raise
        return response

    async def _finish(
        self,
        send: Callable[[dict[str, Any]], Any],
        body: dict[str, Any],
        model: str,
        finish: str,
        n_tokens: int,
        predicted_ms: float,
    ) -> None:
        prompt_n = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])) + 4
        usage = {
            "prompt_tokens": prompt_n,
            "completion_tokens": n_tokens,
            "total_tokens": prompt_n + n_tokens,
        }
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        timings = shapes.llama_timings(prompt_n, 0, self.prompt_ms, n_tokens, predicted_ms)
        self.records.replies.append(timings)
        if self.flavour is Flavour.LLAMA_SERVER:
            await send(shapes.chunk(model, {}, finish, timings=timings))
            if wants_usage:
                await send(shapes.chunk(model, None, usage=usage, timings=timings))
        elif self.flavour is Flavour.VLLM:
            await send(shapes.chunk(model, {}, finish))
            if wants_usage:
                await send(shapes.chunk(model, None, usage=usage))
        elif self.flavour is Flavour.LM_STUDIO:
            stats = shapes.lmstudio_stats(n_tokens, predicted_ms / 1000, self.prompt_ms / 1000, finish)
            await send(shapes.chunk(model, {}, finish, usage=usage, stats=stats))
        else:
            await send(shapes.chunk(model, {}, finish))

"""The Ollama REST API as an aiohttp application: routes, validation, and response shapes.

Each handler follows the order in which Ollama's Go handlers check things, because clients see
that order: body decoding (keep_alive, think) → model name → model exists → unload shortcut →
capabilities → option types → scheduling (load) → load shortcut → generation.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .catalog import ModelRegistry, ModelSpec, normalize_name
from .engines import EngineError, Finish, GenerationJob, Piece, token_ids
from .records import Faults, GenerationRecord, Records, RequestRecord
from .scheduler import LoadFailed, Runner, Scheduler
from .wire import GoDurationError, go_json, go_time, parse_keep_alive

JSON_TYPE = "application/json; charset=utf-8"
NDJSON_TYPE = "application/x-ndjson"

THINK_LEVELS = ("high", "medium", "low", "max")

INT_OPTIONS = {
    "num_keep",
    "seed",
    "num_predict",
    "top_k",
    "repeat_last_n",
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "draft_num_predict",
}
FLOAT_OPTIONS = {
    "top_p",
    "min_p",
    "typical_p",
    "temperature",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
}
BOOL_OPTIONS = {"use_mmap"}
LIST_OPTIONS = {"stop"}

DEFAULT_SAMPLING: dict[str, Any] = {
    "num_keep": 4,
    "seed": -1,
    "num_predict": -1,
    "top_k": 40,
    "top_p": 0.9,
    "min_p": 0.0,
    "typical_p": 1.0,
    "repeat_last_n": 64,
    "temperature": 0.8,
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}

_GO_KINDS = (
    (bool, "bool"),
    (str, "string"),
    (int, "number"),
    (float, "number"),
    (list, "array"),
    (dict, "object"),
)

# Field → allowed Python types, for Go's "cannot unmarshal X into Go struct field" errors.
_STR, _BOOL, _LIST, _DICT, _INT = (str,), (bool,), (list,), (dict,), (int, float)
CHAT_FIELDS = {
    "model": _STR,
    "messages": _LIST,
    "stream": _BOOL,
    "options": _DICT,
    "tools": _LIST,
    "top_logprobs": _INT,
    "logprobs": _BOOL,
    "truncate": _BOOL,
    "shift": _BOOL,
}
GENERATE_FIELDS = {
    "model": _STR,
    "prompt": _STR,
    "suffix": _STR,
    "system": _STR,
    "template": _STR,
    "context": _LIST,
    "stream": _BOOL,
    "raw": _BOOL,
    "options": _DICT,
    "images": _LIST,
    "top_logprobs": _INT,
    "logprobs": _BOOL,
}
NAME_FIELDS = {"model": _STR, "name": _STR, "stream": _BOOL, "insecure": _BOOL, "verbose": _BOOL}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(value: Any, status: int = 200, content_type: str = JSON_TYPE) -> web.Response:
    return web.Response(body=go_json(value), status=status, headers={"Content-Type": content_type})


def error_response(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


def _go_kind(value: Any) -> str:
    for python_type, name in _GO_KINDS:
        if isinstance(value, python_type):
            return name
    return "value"


def decode_error(raw: bytes, error: json.JSONDecodeError) -> str:
    text = raw.decode(errors="replace")
    stripped = text.lstrip()
    if stripped and stripped[0] not in '{["-0123456789tfn':
        return f"invalid character {stripped[0]!r} looking for beginning of value"
    if error.msg.startswith("Expecting") and error.pos >= len(text.rstrip()):
        return "unexpected EOF"
    bad = text[error.pos : error.pos + 1] or " "
    return f"invalid character {bad!r} {error.msg.lower()}"


async def read_body(request: web.Request, struct: str, fields: dict[str, tuple[type, ...]]) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise HttpError(400, "missing request body")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as error:
        raise HttpError(400, decode_error(raw, error)) from None
    if not isinstance(body, dict):
        raise HttpError(400, f"json: cannot unmarshal {_go_kind(body)} into Go value of type api.{struct}")
    for key, allowed in fields.items():
        value = body.get(key)
        if value is None:
            continue
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            go_type = {_STR: "string", _BOOL: "bool", _LIST: "[]", _DICT: "map", _INT: "int"}.get(
                allowed, "?"
            )
            kind = _go_kind(value)
            raise HttpError(
                400, f"json: cannot unmarshal {kind} into Go struct field {struct}.{key} of type {go_type}"
            )
    return body


def parse_think(value: Any) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value not in THINK_LEVELS:
            raise HttpError(
                400,
                f'invalid think value: "{value}" (must be "high", "medium", "low", "max", true, or false)',
            )
        return value
    raise HttpError(400, "think must be a boolean or string")


def keep_alive_of(body: dict[str, Any]) -> int | None:
    value = body.get("keep_alive")
    if value is None:
        return None
    try:
        return parse_keep_alive(value)
    except GoDurationError as error:
        raise HttpError(400, str(error)) from None


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """Coerce option values like api.Options.FromMap; a wrong type is a 500, unknown keys pass."""
    clean: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key in INT_OPTIONS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise HttpError(500, f'option "{key}" must be of type integer')
            clean[key] = int(value)
        elif key in FLOAT_OPTIONS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise HttpError(500, f'option "{key}" must be of type float32')
            clean[key] = float(value)
        elif key in BOOL_OPTIONS:
            if not isinstance(value, bool):
                raise HttpError(500, f'option "{key}" must be of type boolean')
            clean[key] = value
        elif key in LIST_OPTIONS:
            if not isinstance(value, list):
                raise HttpError(500, f'option "{key}" must be of type array')
            if not all(isinstance(item, str) for item in value):
                raise HttpError(500, f'option "{key}" must be of an array of strings')
            clean[key] = list(value)
        # Anything else is ignored, as the server does (with only a log warning).
    return clean


def metrics(finish: Finish, started_ns: int, loaded_ns: int) -> dict[str, int]:
    values = {
        "total_duration": time.perf_counter_ns() - started_ns,
        "load_duration": loaded_ns - started_ns,
        "prompt_eval_count": finish.prompt_eval_count,
        "prompt_eval_duration": finish.prompt_eval_duration_ns,
        "eval_count": finish.eval_count,
        "eval_duration": finish.eval_duration_ns,
    }
    # Go's omitempty: zero metrics are left out, not sent as 0.
    return {k: v for k, v in values.items() if v}


class NdjsonWriter:
    """Streams one compact JSON object per line; headers go out with the first line, as in gin."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None

    @property
    def started(self) -> bool:
        return self.response is not None

    async def send(self, value: Any) -> None:
        if self.response is None:
            response = web.StreamResponse(status=200, headers={"Content-Type": NDJSON_TYPE})
            await response.prepare(self.request)
            self.response = response
        await self.response.write(go_json(value) + b"\n")

    async def close(self) -> web.StreamResponse:
        assert self.response is not None
        await self.response.write_eof()
        return self.response


@dataclass
class Generation:
    """What a chat or generate handler hands to the shared streaming loop."""

    endpoint: str
    model_field: str
    job: GenerationJob
    record: GenerationRecord
    stream: bool
    started_ns: int
    loaded_ns: int


class OllamaApp:
    def __init__(
        self, registry: ModelRegistry, scheduler: Scheduler, records: Records, faults: Faults, version: str
    ) -> None:
        self.registry = registry
        self.scheduler = scheduler
        self.records = records
        self.faults = faults
        self.version = version
        self._contexts: dict[tuple[int, ...], str] = {}

    def build(self) -> web.Application:
        app = web.Application(middlewares=[self._record, self._raw_replies, self._gin_errors])
        router = app.router
        router.add_get("/", self.root)  # also answers HEAD, as Ollama's route table does
        router.add_get("/api/version", self.version_handler)
        router.add_get("/api/tags", self.tags)
        router.add_get("/api/ps", self.ps, allow_head=False)
        router.add_post("/api/show", self.show)
        router.add_post("/api/chat", self.chat)
        router.add_post("/api/generate", self.generate)
        router.add_post("/api/pull", self.pull)
        router.add_delete("/api/delete", self.delete)
        return app

    # -- middleware ---------------------------------------------------------------------------

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        raw = await request.read() if request.can_read_body else b""
        try:
            body = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError:
            body = None
        self.records.add_request(
            RequestRecord(request.method, request.path, body, raw, dict(request.headers))
        )
        return await handler(request)

    @web.middleware
    async def _raw_replies(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        queued = self.faults.raw_replies.get(request.path)
        if queued:
            status, body, content_type = queued.popleft()
            return web.Response(status=status, body=body, content_type=content_type)
        return await handler(request)

    @web.middleware
    async def _gin_errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except HttpError as error:
            return error_response(error.status, error.message)
        except web.HTTPMethodNotAllowed as error:
            return web.Response(
                status=405,
                text="405 method not allowed",
                content_type="text/plain",
                headers={"Allow": ", ".join(sorted(error.allowed_methods))},
            )
        except web.HTTPNotFound:
            return web.Response(status=404, text="404 page not found", content_type="text/plain")

    # -- simple routes ------------------------------------------------------------------------

    async def root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running", content_type="text/plain")

    async def version_handler(self, request: web.Request) -> web.Response:
        return json_response({"version": self.version})

    async def tags(self, request: web.Request) -> web.Response:
        if self.faults.tags_delay_s:
            await asyncio.sleep(self.faults.tags_delay_s)
        models = sorted(self.registry.installed(), key=lambda s: s.modified_ns, reverse=True)
        return json_response(
            {
                "models": [
                    {
                        "name": spec.name,
                        "model": spec.name,
                        "modified_at": go_time(spec.modified_ns, utc=False),
                        "size": spec.size,
                        "digest": spec.digest,
                        "details": spec.details(),
                    }
                    for spec in models
                ]
            }
        )

    async def ps(self, request: web.Request) -> web.Response:
        runners = await self.scheduler.loaded()
        return json_response(
            {
                "models": [
                    {
                        "name": r.spec.name,
                        "model": r.spec.name,
                        "size": r.size,
                        "digest": r.spec.digest,
                        "details": r.spec.details(),
                        "expires_at": go_time(r.expires_at_ns(), utc=False),
                        "size_vram": r.size_vram,
                        "context_length": r.options.num_ctx,
                    }
                    for r in runners
                ]
            }
        )

    def _named(self, body: dict[str, Any]) -> str:
        return str(body.get("model") or body.get("name") or "")

    async def show(self, request: web.Request) -> web.Response:
        body = await read_body(request, "ShowRequest", NAME_FIELDS)
        name = self._named(body)
        if not name:
            raise HttpError(400, "model is required")
        if normalize_name(name) is None:
            raise HttpError(400, "invalid model name")
        spec = self.registry.find(name)
        if spec is None:
            raise HttpError(404, f"model '{name}' not found")
        response: dict[str, Any] = {}
        if spec.license:
            response["license"] = spec.license
        response["modelfile"] = spec.modelfile()
        if spec.parameters:
            response["parameters"] = spec.parameters_text()
        if spec.template:
            response["template"] = spec.template
        if spec.system:
            response["system"] = spec.system
        response["details"] = spec.details()
        response["model_info"] = spec.model_info()
        response["tensors"] = spec.tensors()
        response["capabilities"] = list(spec.capabilities)
        response["modified_at"] = go_time(spec.modified_ns, utc=False)
        return json_response(response)

    async def delete(self, request: web.Request) -> web.Response:
        body = await read_body(request, "DeleteRequest", NAME_FIELDS)
        name = self._named(body)
        if normalize_name(name) is None:
            raise HttpError(400, f"name {json.dumps(name)} is invalid")
        if self.registry.remove(name) is None:
            raise HttpError(404, f"model '{name}' not found")
        # Success is a bare 200: Ollama's handler writes nothing.
        return web.Response(status=200)

    # -- pull ---------------------------------------------------------------------------------

    async def _pull_events(self, spec: ModelSpec | None) -> AsyncIterator[dict[str, Any]]:
        yield {"status": "pulling manifest"}
        if spec is None:
            yield {"error": "pull model manifest: file does not exist"}
            return
        present = self.registry.find(spec.name) is not None
        for layer in spec.layers:
            status = f"pulling {layer.digest[7:19]}"
            if present:
                yield {"status": status, "digest": layer.digest, "total": layer.size, "completed": layer.size}
                continue
            yield {"status": status, "digest": layer.digest, "total": layer.size}
            steps = 4 if layer.size > 1_000_000 else 1
            for step in range(1, steps + 1):
                if self.faults.pull_step_delay_s:
                    await asyncio.sleep(self.faults.pull_step_delay_s)
                done = layer.size * step // steps
                yield {"status": status, "digest": layer.digest, "total": layer.size, "completed": done}
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        self.registry.install(spec)
        yield {"status": "success"}

    async def pull(self, request: web.Request) -> web.StreamResponse:
        body = await read_body(request, "PullRequest", NAME_FIELDS)
        name = self._named(body)
        if normalize_name(name) is None:
            raise HttpError(400, "invalid model name")
        events = self._pull_events(self.registry.find_in_library(name))
        if body.get("stream") is False:
            latest: dict[str, Any] = {}
            async for event in events:
                if "error" in event:
                    return error_response(500, event["error"])
                latest = event
            return json_response(latest, content_type="application/json")
        writer = NdjsonWriter(request)
        async for event in events:
            await writer.send(event)
        return await writer.close()

    # -- chat and generate --------------------------------------------------------------------

    def _find_model(self, model_field: str, *, missing_status: int) -> ModelSpec:
        if not model_field:
            if missing_status == 404:
                raise HttpError(404, "model '' not found")
            raise HttpError(400, "model is required")
        if normalize_name(model_field) is None:
            raise HttpError(400, "invalid model name")
        spec = self.registry.find(model_field)
        if spec is None:
            raise HttpError(404, f"model '{model_field}' not found")
        return spec

    @staticmethod
    def _think_on(spec: ModelSpec, model_field: str, think: bool | str | None) -> bool:
        if "thinking" in spec.capabilities:
            # Thinking-capable models think unless told not to.
            return think is None or bool(think)
        if think:
            raise HttpError(400, f'"{model_field}" does not support thinking')
        return False

    def _sampling(self, spec: ModelSpec, options: dict[str, Any]) -> dict[str, Any]:
        merged = dict(DEFAULT_SAMPLING)
        merged.update(spec.parameters)
        merged.update(options)
        return merged

    async def _acquire(self, spec: ModelSpec, options: dict[str, Any], keep_alive: int | None) -> Runner:
        try:
            return await self.scheduler.acquire(spec, options, keep_alive)
        except LoadFailed as error:
            raise HttpError(500, str(error)) from None
        except asyncio.CancelledError:
            self.records.abandoned.append(f"load {spec.name}")
            self.records.changed()
            raise

    async def chat(self, request: web.Request) -> web.StreamResponse:
        started_ns = time.perf_counter_ns()
        body = await read_body(request, "ChatRequest", CHAT_FIELDS)
        keep_alive = keep_alive_of(body)
        think = parse_think(body.get("think"))
        top_logprobs = body.get("top_logprobs") or 0
        if not 0 <= top_logprobs <= 20:
            raise HttpError(400, "top_logprobs must be between 0 and 20")
        model_field = str(body.get("model") or "")
        spec = self._find_model(model_field, missing_status=400)
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        reply = {"model": model_field, "created_at": "", "message": {"role": "assistant", "content": ""}}
        if not messages and keep_alive == 0:
            await self.scheduler.expire(spec)
            return json_response({**reply, "created_at": go_time(), "done": True, "done_reason": "unload"})
        if body.get("tools") and "tools" not in spec.capabilities:
            raise HttpError(400, f"registry.ollama.ai/library/{spec.name} does not support tools")
        think_on = self._think_on(spec, model_field, think)
        options = check_options(body.get("options") or {})
        runner = await self._acquire(spec, options, keep_alive)
        try:
            loaded_ns = time.perf_counter_ns()
            if not messages:
                return json_response({**reply, "created_at": go_time(), "done": True, "done_reason": "load"})
            turns = [
                {"role": str(m.get("role", "")).lower(), "content": str(m.get("content") or "")}
                for m in messages
            ]
            if turns[0]["role"] != "system" and spec.system:
                turns.insert(0, {"role": "system", "content": spec.system})
            prompt = "".join(f"<|im_start|>{t['role']}\n{t['content']}<|im_end|>\n" for t in turns)
            prompt += "<|im_start|>assistant\n"
            job = GenerationJob(
                spec, runner.options, tuple(turns), prompt, self._sampling(spec, options), think_on
            )
            record = GenerationRecord(
                "chat",
                model_field,
                body.get("stream") is not False,
                body.get("options") or {},
                body.get("think"),
                body.get("keep_alive"),
                messages,
                prompt,
            )
            return await self._run(
                request, Generation("chat", model_field, job, record, record.stream, started_ns, loaded_ns)
            )
        finally:
            await self.scheduler.release(runner)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        started_ns = time.perf_counter_ns()
        body = await read_body(request, "GenerateRequest", GENERATE_FIELDS)
        keep_alive = keep_alive_of(body)
        think = parse_think(body.get("think"))
        top_logprobs = body.get("top_logprobs") or 0
        if not 0 <= top_logprobs <= 20:
            raise HttpError(400, "top_logprobs must be between 0 and 20")
        model_field = str(body.get("model") or "")
        spec = self._find_model(model_field, missing_status=404)
        prompt_text = str(body.get("prompt") or "")
        reply = {"model": model_field, "created_at": "", "response": ""}
        if not prompt_text and keep_alive == 0:
            await self.scheduler.expire(spec)
            return json_response({**reply, "created_at": go_time(), "done": True, "done_reason": "unload"})
        raw = bool(body.get("raw"))
        context = [int(t) for t in body.get("context") or []]
        if raw and (body.get("template") or body.get("system") or context):
            raise HttpError(400, "raw mode does not support template, system, or context")
        if body.get("suffix") and "insert" not in spec.capabilities:
            raise HttpError(400, f"registry.ollama.ai/library/{spec.name} does not support insert")
        think_on = self._think_on(spec, model_field, think)
        options = check_options(body.get("options") or {})
        runner = await self._acquire(spec, options, keep_alive)
        try:
            loaded_ns = time.perf_counter_ns()
            if not prompt_text:
                return json_response({**reply, "created_at": go_time(), "done": True, "done_reason": "load"})
            if raw:
                prompt = prompt_text
                turns: list[dict[str, str]] = [{"role": "user", "content": prompt_text}]
            else:
                system = str(body.get("system") or spec.system)
                turns = ([{"role": "system", "content": system}] if system else []) + [
                    {"role": "user", "content": prompt_text}
                ]
                prompt = self._contexts.get(tuple(context), "")
                prompt += "".join(f"<|im_start|>{t['role']}\n{t['content']}<|im_end|>\n" for t in turns)
                prompt += "<|im_start|>assistant\n"
            job = GenerationJob(
                spec, runner.options, tuple(turns), prompt, self._sampling(spec, options), think_on, raw=raw
            )
            record = GenerationRecord(
                "generate",
                model_field,
                body.get("stream") is not False,
                body.get("options") or {},
                body.get("think"),
                body.get("keep_alive"),
                [],
                prompt,
            )
            return await self._run(
                request,
                Generation("generate", model_field, job, record, record.stream, started_ns, loaded_ns),
            )
        finally:
            await self.scheduler.release(runner)

    def _chunk(self, gen: Generation, piece: Piece) -> dict[str, Any]:
        if gen.endpoint == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": piece.content}
            if piece.thinking:
                message["thinking"] = piece.thinking
            return {"model": gen.model_field, "created_at": go_time(), "message": message, "done": False}
        chunk: dict[str, Any] = {"model": gen.model_field, "created_at": go_time(), "response": piece.content}
        if piece.thinking:
            chunk["thinking"] = piece.thinking
        chunk["done"] = False
        return chunk

    def _final(self, gen: Generation, finish: Finish, content: str, thinking: str) -> dict[str, Any]:
        figures = metrics(finish, gen.started_ns, gen.loaded_ns)
        if gen.endpoint == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            return {
                "model": gen.model_field,
                "created_at": go_time(),
                "message": message,
                "done": True,
                "done_reason": finish.done_reason,
                **figures,
            }
        final: dict[str, Any] = {"model": gen.model_field, "created_at": go_time(), "response": content}
        if thinking:
            final["thinking"] = thinking
        final.update(done=True, done_reason=finish.done_reason)
        if not gen.job.raw:
            full_text = gen.job.prompt + gen.record.text
            tokens = token_ids(full_text)
            self._contexts[tuple(tokens)] = full_text
            final["context"] = tokens
        final.update(figures)
        return final

    async def _run(self, request: web.Request, gen: Generation) -> web.StreamResponse:
        """Stream (or collect) the engine's pieces; faults and disconnects are handled here."""
        record = gen.record
        self.records.add_generation(record)
        fault = self.faults.stream_errors.popleft() if self.faults.stream_errors else None
        writer = NdjsonWriter(request)
        pieces = self.scheduler.engine.generate(gen.job)
        finish: Finish | None = None
        try:
            if self.faults.first_token_delay_s:
                await asyncio.sleep(self.faults.first_token_delay_s)
            async for item in pieces:
                if fault is not None and record.pieces_sent >= fault[0]:
                    raise EngineError(fault[1])
                if isinstance(item, Finish):
                    finish = item
                    break
                if self.faults.piece_delay_s:
                    await asyncio.sleep(self.faults.piece_delay_s)
                record.pieces_sent += 1
                record.text += item.content
                record.thinking += item.thinking
                self.records.changed()
                if gen.stream:
                    await writer.send(self._chunk(gen, item))
            if finish is None:
                raise EngineError("the runner stopped without finishing the reply")
        except EngineError as error:
            record.error = str(error)
            self.records.changed()
            if gen.stream and writer.started:
                # After the first byte the status is already 200: the error becomes a line.
                await writer.send({"error": str(error)})
                return await writer.close()
            return error_response(500, str(error))
        except asyncio.CancelledError:
            record.disconnected = True
            self.records.changed()
            raise
        except ConnectionResetError:
            # Seen when a write races the disconnect; the client is gone either way.
            record.disconnected = True
            self.records.changed()
            return writer.response or web.Response(status=499)
        finally:
            await pieces.aclose()
        record.done = True
        record.done_reason = finish.done_reason
        record.cached_tokens = finish.cached_tokens
        record.prompt_eval_count = finish.prompt_eval_count
        record.eval_count = finish.eval_count
        self.records.changed()
        if gen.stream:
            await writer.send(self._final(gen, finish, "", ""))
            return await writer.close()
        return json_response(self._final(gen, finish, record.text, record.thinking))

"""Ollama backend: `ollama.AsyncClient` talking to a local or remote ``ollama serve``.

Importing this module pulls in httpx and pydantic (through ollama), so the app imports it only
when the user picks Ollama. Notes that shaped it (reference/backends.md §A):

* options go as a plain dict (`ollama.Options` silently drops min_p);
* runner options are sent identically on every request after a load: any difference reloads
  the model, and a reload is how a new num_gpu / num_ctx takes effect;
* the client has no timeout by default, and a streaming call raises a raw `httpx.ConnectError`
  when the server is down (non-streaming ones raise `ConnectionError`);
* cancelling the task that iterates the stream closes the HTTP response, and the server stops
  generating when its client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar, cast

import httpx
import ollama
from ollama import ChatResponse

from lollma_tui.core.backends.base import (
    BackendCrashedError,
    BackendError,
    BackendState,
    BackendStatus,
    BackendUnavailableError,
    ChatEvent,
    ChatMessage,
    LoadedModel,
    ModelNotFoundError,
    NoModelError,
    ReplyDone,
    ReplyStats,
    RunSetup,
    StatusListener,
    TextDelta,
    ThinkingDelta,
)
from lollma_tui.core.backends.ollama_errors import (
    CLIENT_ERRORS,
    MALFORMED_REPLY_ERRORS,
    Operation,
    translate,
)
from lollma_tui.core.backends.ollama_host import ServerProcessFinder, base_url, host_and_port, is_local
from lollma_tui.core.backends.ollama_models import (
    OllamaModel,
    OllamaModelInfo,
    OllamaRunningModel,
    PullProgress,
    info_from,
    models_from,
    progress_from,
    running_from,
    same_model,
)
from lollma_tui.core.backends.ollama_options import (
    keep_alive_value,
    runner_options,
    sampling_options,
    unsupported_settings,
)
from lollma_tui.core.backends.ollama_stats import (
    FinalFigures,
    PromptCacheTracker,
    Transcript,
    partial_stats,
    reply_stats,
)
from lollma_tui.core.backends.server_state import ServerBackendState
from lollma_tui.core.backends.stream_reads import batched_reads
from lollma_tui.core.net import trust_env_for
from lollma_tui.core.settings import AUTO, BackendKind, GpuLayers, LoadSettings, SamplingSettings

T = TypeVar("T")
U = TypeVar("U")

DEFAULT_TIMEOUT_S = 300.0
"""Longest silence tolerated from the server: a cold load or a long prompt sends nothing."""
CONNECT_TIMEOUT_S = 3.0
PING_TIMEOUT_S = 2.0
DRAIN_S = 1.0
"""After the final chunk, how long to let the response end cleanly before closing it."""


class _Finished:
    """The stream ended (without a final chunk, if it comes before one)."""


class _Cancelled:
    """The pump was cancelled: a stop, or the consumer went away."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException


_Item = ChatResponse | _Finished | _Cancelled | _Failure

UNLOADED_PLACEMENT = "unloaded by the server"
"""Where the model runs once Ollama let it go (idle past its keep_alive)."""
UNLOADED_STATUS = "unloaded by Ollama after its keep_alive: the next message loads it again"


def offloaded_layers(requested: GpuLayers, n_layers: int | None, gpu_share: float | None) -> int:
    """Layers on the GPU as best we can tell: Ollama reports a memory share, not layers."""
    if gpu_share is None:
        return 0 if requested == AUTO else int(requested)
    if gpu_share >= 1.0:
        # Everything: the repeating layers and the output head, as llama.cpp counts offload.
        return n_layers + 1 if n_layers is not None else -1
    if gpu_share <= 0.0:
        return 0
    if n_layers is None:
        return 0 if requested == AUTO else int(requested)
    if requested != AUTO and int(requested) >= 0:
        return min(int(requested), n_layers)
    return max(1, min(n_layers - 1, round(gpu_share * n_layers)))


class OllamaBackend(ServerBackendState):
    """`Backend` over Ollama's REST API, plus the model management Ollama offers."""

    kind = BackendKind.OLLAMA

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        think: bool = True,
        unload_on_close: bool = True,
        on_status: StatusListener | None = None,
        proxy_loopback: bool = False,
    ) -> None:
        self.base_url = base_url(host)
        self.timeout_s = timeout_s
        self.think = think
        """Let thinking-capable models think (their thoughts stream as `ThinkingDelta`)."""
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._trust_env = trust_env_for(self.base_url, proxy_loopback=proxy_loopback)
        """False for a server on this machine: env proxies are for the web (see core.net)."""
        self._client = ollama.AsyncClient(
            host=self.base_url, timeout=self._timeout, trust_env=self._trust_env
        )
        self._http: httpx.AsyncClient | None = None
        self._unload_on_close = unload_on_close
        self._on_status = on_status
        self._status = BackendStatus(BackendState.UNLOADED, "No model loaded")
        self._loaded: LoadedModel | None = None
        self._info: OllamaModelInfo | None = None
        self._runner_options: dict[str, Any] = {}
        self._keep_alive: float | str = "5m"
        self._gpu_share: float | None = None
        self._cache = PromptCacheTracker()
        self._pump: asyncio.Task[None] | None = None
        self._cancel_requested = False
        self._lock = asyncio.Lock()
        self._finder = (
            ServerProcessFinder(host_and_port(self.base_url)[1]) if is_local(self.base_url) else None
        )

    # -- requests -----------------------------------------------------------------------------

    async def _call(self, operation: Operation, awaitable: Awaitable[T], model: str = "") -> T:
        try:
            return await awaitable
        except CLIENT_ERRORS as error:
            raise translate(
                error, base_url=self.base_url, operation=operation, model=model, timeout_s=self.timeout_s
            ) from error

    async def _read(
        self, operation: Operation, awaitable: Awaitable[T], decode: Callable[[T], U], model: str = ""
    ) -> U:
        """`_call`, then `decode` the reply: a reply of an unexpected shape is the same error
        however deep in the decoding it shows."""
        reply = await self._call(operation, awaitable, model)
        try:
            return decode(reply)
        except MALFORMED_REPLY_ERRORS as error:
            raise translate(error, base_url=self.base_url, operation=operation, model=model) from error

    # -- load / unload ------------------------------------------------------------------------

    async def load(self, settings: LoadSettings) -> LoadedModel:
        """Load `settings.model` with its runner options in one request (a reload if they changed)."""
        async with self._lock:
            await self.cancel()
            name = settings.model.strip()
            if not name:
                raise ModelNotFoundError("Choose an Ollama model first (/pull NAME downloads one).")
            previous, self._loaded = self._loaded, None
            self._cache.forget()
            self._set_status(BackendState.LOADING, f"Loading {name}…")
            options = runner_options(settings)
            keep_alive = keep_alive_value(settings.keep_alive)
            try:
                info = await self.show(name)
                if previous is not None and not same_model(previous.name, name):
                    # A swap frees the old model first, as the llama.cpp backend does.
                    with contextlib.suppress(BackendError):
                        await self._unload_model(previous.name)
                started = time.perf_counter()
                await self._call(
                    "load",
                    self._client.chat(model=name, messages=[], options=options, keep_alive=keep_alive),
                    name,
                )
                load_s = time.perf_counter() - started
                running = await self._running_entry(name)
                self._gpu_share = running.gpu_share if running is not None else None
                loaded = self._describe(settings, info, running, load_s)
            except Exception as error:
                # Whatever went wrong, the status must not stay at "loading".
                failure = translate(error, base_url=self.base_url, operation="load", model=name)
                self._set_status(BackendState.FAILED, str(failure))
                if failure is error:
                    raise
                raise failure from error
            self._info = info
            self._runner_options = options
            self._keep_alive = keep_alive
            self._loaded = loaded
            self._set_status(BackendState.READY, f"{name} ready")
            return self._loaded

    def keep_alive_for_next(self, settings: LoadSettings) -> LoadedModel | None:
        """`settings`' keep_alive, without a load (which would stop the reply being written):
        Ollama takes it with each request, so the next one carries it."""
        self._keep_alive = keep_alive_value(settings.keep_alive)
        if self._loaded is not None:
            self._loaded = dataclasses.replace(self._loaded, settings=settings)
        return self._loaded

    def _describe(
        self, settings: LoadSettings, info: OllamaModelInfo, running: OllamaRunningModel | None, load_s: float
    ) -> LoadedModel:
        notes = list(unsupported_settings(settings))
        n_ctx = running.context_length if running is not None and running.context_length else settings.n_ctx
        if n_ctx < settings.n_ctx:
            notes.append(f"Ollama runs this model with a {n_ctx}-token context (asked for {settings.n_ctx}).")
        if running is not None:
            notes.append(f"Placement: {running.placement}")
        elif keep_alive_value(settings.keep_alive) in (0, 0.0, "0", "0s"):
            notes.append("keep_alive is 0: Ollama unloads the model after every request.")
        return LoadedModel(
            settings=settings,
            name=settings.model.strip(),
            architecture=info.architecture,
            quant=info.quantization,
            n_layers=info.n_layers,
            n_ctx=n_ctx,
            n_ctx_train=info.n_ctx_train,
            n_gpu_layers=offloaded_layers(settings.n_gpu_layers, info.n_layers, self._gpu_share),
            # The server places the layers, and says where (`placement`): a model it keeps on the
            # CPU says nothing about what it could offload.
            gpu_offload_supported=True,
            chat_format="ollama template",
            chat_format_source="server",
            size_bytes=running.size_bytes if running is not None else None,
            n_params=info.n_params,
            load_s=load_s,
            n_threads=settings.n_threads,
            is_base_model=not info.template,
            placement=running.placement if running is not None else None,
            notes=tuple(notes),
        )

    async def check_still_loaded(self) -> None:
        """Read /api/ps again while nothing runs: the server unloads a model left idle past its
        keep_alive, and the card and the panel went on showing a placement and memory in use.
        Its status then says so; the next message loads the model again (Ollama does)."""
        loaded = self._loaded
        if loaded is None or self._lock.locked() or (self._pump is not None and not self._pump.done()):
            return
        try:
            running = await self._running_entry(loaded.name)
        except BackendError:
            return  # a server gone: the next request says so
        placement = running.placement if running is not None else UNLOADED_PLACEMENT
        if self._loaded is not loaded or placement == loaded.placement:
            return
        self._gpu_share = running.gpu_share if running is not None else None
        if running is None:
            self._cache.forget()
        self._loaded = dataclasses.replace(loaded, placement=placement)
        message = f"{loaded.name} ready" if running is not None else f"{loaded.name} {UNLOADED_STATUS}"
        self._set_status(self._status.state, message)

    async def _running_entry(self, name: str) -> OllamaRunningModel | None:
        for model in await self.running():
            if same_model(model.name, name):
                return model
        return None

    async def _unload_model(self, name: str) -> None:
        # A stopped server or a deleted model holds no memory: nothing to report.
        with contextlib.suppress(BackendUnavailableError, ModelNotFoundError):
            await self._call("unload", self._client.chat(model=name, messages=[], keep_alive=0), name)

    async def unload(self) -> None:
        async with self._lock:
            await self.cancel()
            loaded, self._loaded = self._loaded, None
            self._cache.forget()
            self._runner_options = {}
            self._gpu_share = None
            try:
                if loaded is not None:
                    await self._unload_model(loaded.name)
            finally:
                self._set_status(BackendState.UNLOADED, "No model loaded")

    async def close(self) -> None:
        await self.cancel()
        # A negative keep_alive asks the server to keep the model until it stops: quitting or
        # moving away does not undo that (any other value is this app's, and leaves with it).
        forever = str(self._keep_alive).startswith("-")
        if self._unload_on_close and self._loaded is not None and not forever:
            with contextlib.suppress(BackendError):
                await self.unload()
        await self._client.close()  # type: ignore[no-untyped-call]
        if self._http is not None:
            await self._http.aclose()

    # -- chat ---------------------------------------------------------------------------------

    def _think_flag(self) -> bool | None:
        if self._info is not None and self._info.can_think:
            return self.think
        return None  # sending think to a model without the capability is a 400

    async def stream_chat(
        self, messages: Sequence[ChatMessage], sampling: SamplingSettings
    ) -> AsyncIterator[ChatEvent]:
        loaded = self._loaded
        if loaded is None:
            raise NoModelError("No Ollama model is loaded.")
        if self._pump is not None and not self._pump.done():
            raise BackendError("A reply is already streaming; stop it first.")
        name = loaded.name
        transcript: Transcript = tuple((m.role, m.content) for m in messages)
        request: dict[str, Any] = {
            "model": name,
            "messages": [{"role": role, "content": content} for role, content in transcript],
            "options": {**self._runner_options, **sampling_options(sampling)},
            "keep_alive": self._keep_alive,
            "think": self._think_flag(),
        }
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._cancel_requested = False
        started = time.perf_counter()
        pump = asyncio.create_task(self._pump_chat(request, queue), name="ollama-chat")
        self._pump = pump
        self._set_status(BackendState.GENERATING, f"{name} generating")
        first_at: float | None = None
        last_at: float | None = None
        pieces = 0
        reply: list[str] = []
        thought = False
        try:
            while True:
                item = await queue.get()
                if self._cancel_requested or isinstance(item, _Cancelled):
                    now = time.perf_counter()
                    stats = partial_stats(
                        self._setup(loaded),
                        ttft_s=None if first_at is None else first_at - started,
                        total_s=now - started,
                        pieces=pieces,
                        first_s=first_at,
                        last_s=last_at,
                    )
                    self._cache.lose_track()  # the runner stopped midway
                    yield ReplyDone("cancelled", stats)
                    return
                if isinstance(item, _Failure | _Finished):
                    error = self._chat_failure(item, name)
                    raise error from (item.error if isinstance(item, _Failure) else None)
                thinking = item.message.thinking or ""
                content = item.message.content or ""
                if thinking or content:
                    last_at = time.perf_counter()
                    first_at = first_at or last_at
                    pieces += 1
                if thinking:
                    thought = True
                    yield ThinkingDelta(thinking, pieces)
                if content:
                    reply.append(content)
                    yield TextDelta(content, pieces)  # Ollama streams one token per chunk
                if item.done:
                    await asyncio.wait({pump}, timeout=DRAIN_S)
                    final = FinalFigures.from_response(item)
                    yield ReplyDone(
                        "length" if final.done_reason == "length" else "stop",
                        await self._finish(
                            loaded, final, transcript, "".join(reply), thought, started, first_at
                        ),
                    )
                    return
        finally:
            if not pump.done():
                pump.cancel()
                await asyncio.wait({pump})
            self._pump = None
            if self._status.state is BackendState.GENERATING:
                self._set_status(BackendState.READY, f"{name} ready")

    async def _pump_chat(self, request: dict[str, Any], queue: asyncio.Queue[_Item]) -> None:
        """Read the HTTP stream into `queue`; cancelling this task closes the connection."""
        try:
            # An async generator (typed as an iterator): closing it closes the HTTP response.
            stream = cast(AsyncGenerator[ChatResponse, None], await self._client.chat(**request, stream=True))
            async with contextlib.aclosing(stream):
                async for part in batched_reads(stream):
                    queue.put_nowait(part)
        except asyncio.CancelledError:
            queue.put_nowait(_Cancelled())
            raise
        except Exception as error:
            queue.put_nowait(_Failure(error))
        else:
            queue.put_nowait(_Finished())

    def _chat_failure(self, item: _Failure | _Finished, name: str) -> BackendError:
        if isinstance(item, _Finished):
            error: BackendError = BackendCrashedError(
                "Ollama ended the reply without finishing it; the conversation is kept."
            )
        else:
            error = translate(
                item.error, base_url=self.base_url, operation="chat", model=name, timeout_s=self.timeout_s
            )
        self._cache.lose_track()
        plain_rejection = type(error) is BackendError
        self._set_status(BackendState.READY if plain_rejection else BackendState.FAILED, str(error))
        return error

    def _setup(self, loaded: LoadedModel) -> RunSetup:
        return dataclasses.replace(loaded.setup(), gpu_share=self._gpu_share, server=self.base_url)

    async def _finish(
        self,
        loaded: LoadedModel,
        final: FinalFigures,
        transcript: Transcript,
        reply: str,
        thought: bool,
        started: float,
        first_at: float | None,
    ) -> ReplyStats:
        if final.reloaded or loaded.placement == UNLOADED_PLACEMENT:
            # The server (re)loaded the model for this request (e.g. keep_alive had expired):
            # nothing was cached, and its placement may have changed.
            self._cache.forget()
            with contextlib.suppress(BackendError):
                running = await self._running_entry(loaded.name)
                if running is not None:
                    self._gpu_share = running.gpu_share
                    if self._loaded is loaded:
                        self._loaded = loaded = dataclasses.replace(loaded, placement=running.placement)
        prompt_tokens = final.prompt_eval_count or 0
        cached = self._cache.cached_tokens(transcript, prompt_tokens)
        stats = reply_stats(
            self._setup(loaded),
            final,
            ttft_s=None if first_at is None else first_at - started,
            total_s=time.perf_counter() - started,
            cached_tokens=cached,
        )
        self._cache.record(transcript, reply, prompt_tokens, final.eval_count or 0, thought=thought)
        return stats

    async def count_tokens(self, text: str) -> int | None:
        """Ollama has no tokenize endpoint: the caller estimates."""
        del text
        return None

    # -- model management ---------------------------------------------------------------------

    async def list_models(self) -> list[OllamaModel]:
        """Installed models (/api/tags) with family, parameter size and quantization."""
        return await self._read("list", self._client.list(), models_from)

    async def running(self) -> list[OllamaRunningModel]:
        """Loaded models (/api/ps) with memory placement and context length."""
        return await self._read("ps", self._client.ps(), running_from)

    async def show(self, name: str) -> OllamaModelInfo:
        """Architecture, layer count, trained context and capabilities (/api/show)."""
        return await self._read("show", self._client.show(name), partial(info_from, name), name)

    async def pull(self, name: str) -> AsyncIterator[PullProgress]:
        """Download a model, yielding Ollama's progress lines until "success"."""
        # A client of its own: a move to another backend or host closes the chat's client, and
        # Ollama stops a pull whose client goes away.
        client = ollama.AsyncClient(host=self.base_url, timeout=self._timeout, trust_env=self._trust_env)
        last = ""
        try:
            stream = await client.pull(name, stream=True)
            async for part in stream:
                progress = progress_from(part)
                last = progress.status
                yield progress
        except CLIENT_ERRORS as error:
            raise translate(
                error, base_url=self.base_url, operation="pull", model=name, timeout_s=self.timeout_s
            ) from error
        finally:
            await client.close()  # type: ignore[no-untyped-call]
        if last != "success":
            # A stream that ends without it (a proxy cut, a server stopped cleanly) installed nothing.
            raise BackendError(f"the server ended the pull before it finished (last: {last or 'nothing'})")

    async def delete(self, name: str) -> None:
        await self._call("delete", self._client.delete(name), name)

    def _http_client(self) -> httpx.AsyncClient:
        # The ollama client has no version() call; a plain httpx client reads /api/version.
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url, timeout=self._timeout, trust_env=self._trust_env
            )
        return self._http

    async def version(self, *, timeout_s: float | None = None) -> str:
        """The server's version (/api/version); BackendUnavailableError says why there is none:
        nothing answers, or what answers is no Ollama server (another server on that port)."""
        try:
            response = await self._http_client().get(
                "/api/version", timeout=self._timeout if timeout_s is None else timeout_s
            )
            response.raise_for_status()
            return str(response.json()["version"])
        except httpx.HTTPStatusError as error:
            status = error.response.status_code
            raise BackendUnavailableError(
                f"{self.base_url} answered {status} to /api/version — is it an Ollama server?"
            ) from error
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            raise BackendUnavailableError(f"{self.base_url} does not look like an Ollama server.") from error
        except httpx.HTTPError as error:
            raise translate(error, base_url=self.base_url, operation="version") from error

    async def ping(self) -> str | None:
        """The server's version if it answers within a couple of seconds, else None."""
        try:
            return await self.version(timeout_s=PING_TIMEOUT_S)
        except BackendError:
            return None

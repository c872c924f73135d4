"""OpenAI-compatible backend: `openai.AsyncOpenAI` talking to llama-server, vLLM, LM Studio, …

Importing this module pulls in the openai client (pydantic, httpx2), so the app imports it only
when the user picks this backend. Notes that shaped it (reference/backends.md §G):

* "loading" a model is choosing another model id: llama-server's router mode, LM Studio's JIT
  loading and Ollama's /v1 load on demand. `load` checks the id against /v1/models and sends a
  one-token request so that a model that cannot run fails the swap, not the first message;
* the server's start-up flags (GPU layers, context, threads, batch…) cannot be changed by a
  client: the session reports them read-only, and `LoadedModel.notes` says so;
* per-reply figures come from wherever the server puts them (`openai_stats`);
* stopping a reply cancels the task reading the stream, which closes the HTTP response; the
  servers stop generating when their client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, TypeVar

import httpx2
import openai

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
    RunSetup,
    StatusListener,
    TextDelta,
    ThinkingDelta,
)
from lollma_tui.core.backends.ollama_host import ServerProcessFinder
from lollma_tui.core.backends.openai_client import (
    CONNECT_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    http_client,
    openai_client,
)
from lollma_tui.core.backends.openai_errors import CLIENT_ERRORS, Operation, Where, translate
from lollma_tui.core.backends.openai_extras import (
    ServedModel,
    ServerExtras,
    ServerKind,
    read_model_ids,
    served_context,
)
from lollma_tui.core.backends.openai_host import api_key, base_url, host_and_port, is_loopback, server_root
from lollma_tui.core.backends.openai_probe import probe_server, refresh_live
from lollma_tui.core.backends.openai_request import (
    CONTINUES,
    DeltaText,
    chat_body,
    delta_text,
    quant_in_names,
)
from lollma_tui.core.backends.openai_stats import Clock, StreamFigures, reply_stats
from lollma_tui.core.backends.server_state import ServerBackendState
from lollma_tui.core.backends.stream_reads import stamped_reads
from lollma_tui.core.backends.think_tags import ThinkSplitter
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings

T = TypeVar("T")

SERVER_SET_NOTE = (
    "GPU layers, context size, threads, batch, flash attention and the KV cache type are set "
    "when the server starts; this app cannot change them"
)
_ID_LIST = 6
WARM_UP_WAIT_S = 60.0
"""How long a load waits for its one-token warm-up. A server still loading a large model may
take longer, and one that hangs would hold every change of model or backend for the whole
HTTP timeout (300 s): past this the model counts as chosen, and the first reply waits."""


MODELS_WAIT_S = 15.0
"""How long the model list may take. It is read before every load and while the start-up waits
for the server: one that accepts connections and never answers (hung, or behind an ssh tunnel
to a machine that dropped off) held each change of model, and its rollback, for the whole HTTP
timeout (300 s, twice), with Esc unable to stop it."""


class _End:
    """The stream ended."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Read:
    chunk: Any
    delta: DeltaText
    """Its text, read once (on the pump's side, which pauses only after text)."""

    @property
    def has_text(self) -> bool:
        return bool(self.delta.content or self.delta.reasoning)


async def _reads(stream: AsyncIterator[Any]) -> AsyncIterator[_Read]:
    async for chunk in stream:
        yield _Read(chunk, delta_text(chunk))


@dataclasses.dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException


class _NotAStream(Exception):
    """The chat request was answered, but not with a stream of events (a proxy's HTML page, or
    one JSON completion from a server that ignores `stream`)."""

    def __init__(self, content_type: str) -> None:
        super().__init__(content_type)
        self.content_type = content_type


class OpenAIBackend(ServerBackendState):
    """`Backend` over the OpenAI chat API, plus what the server reveals about itself."""

    kind = BackendKind.OPENAI

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key_env: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        warm_up: bool = True,
        on_status: StatusListener | None = None,
    ) -> None:
        self.base_url = base_url(url)
        self.root = server_root(self.base_url)
        self.timeout_s = timeout_s
        self._warm_up = warm_up
        self._key = api_key(api_key_env)
        self._http = http_client(self.base_url, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s)
        self._client = openai_client(self.base_url, self._key.sent, self._http)
        self._on_status = on_status
        self._status = BackendStatus(BackendState.UNLOADED, "No model loaded")
        self._loaded: LoadedModel | None = None
        self._extras = ServerExtras()
        self._full_request = True
        """Send stream_options and llama.cpp's samplers; cleared when the server rejects them."""
        self._pump: asyncio.Task[None] | None = None
        self._cancel_requested = False
        self._listed: tuple[ServedModel, ...] | None = None
        self._lock = asyncio.Lock()
        port = host_and_port(self.base_url)[1]
        self._finder = ServerProcessFinder(port, process_names=()) if is_loopback(self.base_url) else None

    # -- requests -----------------------------------------------------------------------------

    @property
    def extras(self) -> ServerExtras:
        """What the server told about itself at the last load or refresh."""
        return self._extras

    @property
    def listed(self) -> tuple[ServedModel, ...]:
        """The models the server offered when last asked (none before that)."""
        return self._listed or ()

    def _where(self, model: str = "") -> Where:
        server = self._extras.kind.value if self._extras.kind is not ServerKind.UNKNOWN else "the server"
        return Where(
            base_url=self.base_url,
            server=server,
            model=model,
            key_env=self._key.env_name,
            key_set=self._key.value is not None,
            timeout_s=self.timeout_s,
        )

    async def _call(self, operation: Operation, awaitable: Awaitable[T], model: str = "") -> T:
        try:
            return await awaitable
        except CLIENT_ERRORS as error:
            raise translate(error, self._where(model), operation) from error

    # -- the server's models and extras --------------------------------------------------------

    async def list_models(self) -> tuple[ServedModel, ...]:
        """The models the server offers (/v1/models), with LM Studio's details where known.

        While a reply streams, the list last read: llama-cpp-python's server ends the reply
        it is writing for any other request (its `interrupt_requests`, on by default).
        """
        if self._listed is not None and self._pump is not None and not self._pump.done():
            return self._listed
        try:
            async with asyncio.timeout(MODELS_WAIT_S):
                page = await self._call("models", self._client.models.list())
            if not isinstance(page.data, list):
                raise TypeError("no list of models in the reply")
            ids, problems = read_model_ids(getattr(m, "id", None) for m in page.data)
            lengths = {getattr(m, "id", None): (getattr(m, "model_extra", None) or {}) for m in page.data}
        except TimeoutError:
            raise BackendUnavailableError(
                f"{self._where().subject} did not list its models within {MODELS_WAIT_S:g} s: is it hung?"
            ) from None
        except (AttributeError, TypeError, ValueError) as error:
            # An HTML page or another JSON shape (a proxy's login page, a web server at that
            # address): the client's parser fails on it with its own internals' errors.
            raise BackendError(
                f"{self._where().subject} answered /models with something that is not a model list: "
                "is that address an OpenAI-compatible server (…/v1)?"
            ) from error
        if problems:
            self._extras = dataclasses.replace(self._extras, problems=(*self._extras.problems, *problems))
        # vLLM says each model's context there (`max_model_len`); LM Studio's entries say theirs.
        served = tuple(
            self._extras.model(i) or ServedModel(i, max_context=served_context(lengths[i])) for i in ids
        )
        if not self._extras.models and any(m.max_context for m in served):
            self._extras = dataclasses.replace(self._extras, models=served)
        self._listed = served
        return self._listed

    async def probe(self) -> ServerExtras:
        """Find out what kind of server this is and what it offers beyond the OpenAI API."""
        self._extras = await probe_server(self._http, self.root)
        return self._extras

    async def refresh_extras(self) -> ServerExtras:
        """Read the live extras again (/slots, /metrics, /health) where the server has them."""
        self._extras = await refresh_live(self._http, self.root, self._extras)
        return self._extras

    # -- load / unload ------------------------------------------------------------------------

    async def load(self, settings: LoadSettings) -> LoadedModel:
        """Make `settings.model` the model id replies use, checking the server offers it."""
        async with self._lock:
            await self.cancel()
            name = settings.model.strip()
            self._loaded = None
            self._set_status(BackendState.LOADING, f"Loading {name or 'the server’s model'}…")
            try:
                await self.probe()
                offered = await self.list_models()
                if not name and len(offered) == 1:
                    # No model named: a server with one model (llama-server's usual set-up) serves it.
                    name = offered[0].id
                    settings = settings.with_changes(model=name)
                if name not in {m.id for m in offered}:
                    raise ModelNotFoundError(self._not_offered(name, offered))
                started = time.perf_counter()
                answered = await self._warm(name) if self._warm_up else True
                load_s = time.perf_counter() - started
            except BackendError as error:
                self._set_status(BackendState.FAILED, str(error))
                raise
            self._loaded = self._describe(settings, load_s, answered=answered)
            self._set_status(BackendState.READY, f"{name} ready")
            return self._loaded

    def _not_offered(self, name: str, offered: Sequence[ServedModel]) -> str:
        listed = ", ".join(m.id for m in offered[:_ID_LIST]) + ("…" if len(offered) > _ID_LIST else "")
        if not name:
            return f"Choose one of the models {self._where().at} offers: {listed or 'none'} (/model NAME)."
        return f"{self._where().subject} has no model '{name}' (it offers: {listed or 'none'})."

    async def _warm(self, name: str) -> bool:
        """Ask for one token: a JIT-loading server loads the model now, and a model it cannot
        run fails the swap (which then rolls back) instead of the user's first message. False
        when the server did not answer within `WARM_UP_WAIT_S`."""
        request = self._client.chat.completions.create(
            model=name, messages=[{"role": "user", "content": "Hi"}], max_tokens=1, temperature=0.0
        )
        try:
            async with asyncio.timeout(WARM_UP_WAIT_S):
                await self._call("load", request, name)
        except TimeoutError:
            return False
        except BackendError as error:
            # A plain rejection (400, 429) says nothing about whether the model can run.
            if type(error) is not BackendError:
                raise
        return True

    def _describe(self, settings: LoadSettings, load_s: float, *, answered: bool = True) -> LoadedModel:
        """What is loaded; `answered` false when the warm-up got no answer in time."""
        name = settings.model.strip()
        extras = self._extras
        served = extras.model(name)
        n_ctx = extras.context_for(name)
        notes = [f"{extras.label} at {self.base_url}", SERVER_SET_NOTE]
        if n_ctx is None:
            notes.append(f"the server does not say its context size; assuming {settings.n_ctx} tokens")
        if extras.loading:
            notes.append("the server reported it was still loading its model")
        if not answered:
            notes.append(
                f"the server did not answer a one-token request in {WARM_UP_WAIT_S:g} s (still loading "
                "the model?): the first reply waits for it, and Esc stops that wait"
            )
        return LoadedModel(
            settings=settings,
            name=name,
            architecture=(served.architecture if served else None) or "",
            quant=(served.quantization if served else None) or quant_in_names(name, extras.model_path),
            n_layers=None,
            n_ctx=n_ctx or settings.n_ctx,
            n_ctx_train=served.max_context if served is not None else None,
            n_gpu_layers=0,
            # Whatever the server does with GPUs is its own business; never claim a CPU-only build.
            gpu_offload_supported=True,
            chat_format="server template",
            chat_format_source="server",
            size_bytes=None,
            n_params=None,
            load_s=load_s,
            n_threads=None,
            placement=None,
            notes=tuple(notes),
            n_ctx_assumed=n_ctx is None,
        )

    async def unload(self) -> None:
        """Forget the model id: a remote server's memory is not ours to free."""
        async with self._lock:
            await self.cancel()
            self._loaded = None
            self._set_status(BackendState.UNLOADED, "No model loaded")

    async def close(self) -> None:
        await self.cancel()
        await self._client.close()
        await self._http.aclose()

    # -- chat ---------------------------------------------------------------------------------

    def _setup(self, loaded: LoadedModel) -> RunSetup:
        return dataclasses.replace(loaded.setup(), server=self.base_url, server_kind=self._extras.label)

    async def stream_chat(
        self, messages: Sequence[ChatMessage], sampling: SamplingSettings
    ) -> AsyncIterator[ChatEvent]:
        loaded = self._loaded
        if loaded is None:
            raise NoModelError("No model is chosen on the OpenAI-compatible server.")
        if self._pump is not None and not self._pump.done():
            raise BackendError("A reply is already streaming; stop it first.")
        if messages and messages[-1].role == "assistant" and self._extras.kind not in CONTINUES:
            # Such a server starts a new answer after a trailing assistant message, which would
            # be glued onto the cut one.
            where = self._where().subject
            raise BackendError(
                f"{where} cannot continue a reply (llama-server and vLLM can): Ctrl+R writes it again."
            )
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._cancel_requested = False
        started = time.perf_counter()
        pump = asyncio.create_task(
            self._pump_chat(loaded.name, messages, sampling, queue), name="openai-chat"
        )
        self._pump = pump
        self._set_status(BackendState.GENERATING, f"{loaded.name} generating")
        figures = StreamFigures()
        splitter = ThinkSplitter()
        first_at: float | None = None
        last_at: float | None = None
        chunks = 0
        arrivals: list[tuple[float, int]] = []  # chunks whose arrival is known, and the count by then
        finish: str | None = None
        try:
            while True:
                item = await queue.get()
                if self._cancel_requested or item is None:
                    clock = Clock(started, first_at, last_at, time.perf_counter(), chunks, tuple(arrivals))
                    yield ReplyDone("cancelled", reply_stats(self._setup(loaded), figures, clock))
                    return
                if isinstance(item, _Failure):
                    raise self._chat_failure(item.error, loaded.name, streaming=chunks > 0) from item.error
                if isinstance(item, _End):
                    if finish is None:
                        raise self._chat_failure(None, loaded.name, streaming=chunks > 0)
                    for kind, piece in splitter.flush():
                        yield TextDelta(piece, chunks) if kind == "text" else ThinkingDelta(piece, chunks)
                    clock = Clock(started, first_at, last_at, time.perf_counter(), chunks, tuple(arrivals))
                    stats = reply_stats(self._setup(loaded), figures, clock)
                    yield ReplyDone("length" if finish == "length" else "stop", stats)
                    return
                read, arrived = item
                item = read.chunk
                figures.take(item.model_extra, item.usage.model_dump() if item.usage is not None else None)
                delta = read.delta
                finish = delta.finish_reason or finish
                if read.has_text:
                    last_at = arrived or time.perf_counter()
                    first_at = first_at or last_at
                    chunks += 1
                    if arrived is not None:
                        arrivals.append((arrived, chunks))
                if delta.reasoning:
                    yield ThinkingDelta(delta.reasoning, chunks)
                for kind, piece in splitter.feed(delta.content):
                    yield TextDelta(piece, chunks) if kind == "text" else ThinkingDelta(piece, chunks)
        finally:
            if not pump.done():
                pump.cancel()
                await asyncio.wait({pump})
            self._pump = None
            if self._status.state is BackendState.GENERATING:
                self._set_status(BackendState.READY, f"{loaded.name} ready")

    async def _pump_chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        sampling: SamplingSettings,
        queue: asyncio.Queue[Any],
    ) -> None:
        """Read the stream into `queue`; cancelling this task closes the HTTP response."""
        try:
            stream = await self._open_stream(model, messages, sampling)
            async with stream:
                content_type = stream.response.headers.get("content-type", "")
                if not content_type.startswith("text/event-stream"):
                    raise _NotAStream(content_type.split(";")[0].strip() or "no content type")
                async for read, arrived in stamped_reads(_reads(stream), pause_after=lambda r: r.has_text):
                    queue.put_nowait((read, arrived))  # arrived: perf_counter, where known
        except asyncio.CancelledError:
            queue.put_nowait(None)
            raise
        except Exception as error:
            queue.put_nowait(_Failure(error))
        else:
            queue.put_nowait(_End())

    async def _open_stream(
        self, model: str, messages: Sequence[ChatMessage], sampling: SamplingSettings
    ) -> Any:
        asked_again = plain_tried = False
        while True:
            params, extra_body = chat_body(
                model, messages, sampling, full=self._full_request, kind=self._extras.kind
            )
            try:
                return await self._client.chat.completions.create(**params, extra_body=extra_body)
            except (openai.BadRequestError, openai.UnprocessableEntityError):
                if not self._full_request:
                    # Refused without our fields too (a prompt longer than the context, say): they
                    # were not the reason, and later replies keep sampling and usage figures.
                    self._full_request = plain_tried
                    raise
                # A strict server refuses fields it does not know: ask again with standard ones.
                self._full_request = False
                plain_tried = True
            except openai.APIConnectionError as error:
                # A kept-alive connection that the server closed (llama-cpp-python's closes one
                # with a reply it drops): no answer came on it, so once more on a fresh one.
                if asked_again or not isinstance(
                    error.__cause__, httpx2.ReadError | httpx2.RemoteProtocolError
                ):
                    raise
                asked_again = True

    def _chat_failure(self, error: BaseException | None, name: str, *, streaming: bool) -> BackendError:
        if error is None:
            failure: BackendError = BackendCrashedError(
                f"{self._where().subject} ended the reply without finishing it; the conversation is kept."
            )
        elif isinstance(error, _NotAStream):
            failure = BackendError(
                f"{self._where().subject} answered the chat with {error.content_type}, not a stream of"
                " events: is that address an OpenAI-compatible server (a proxy's page, say)? The"
                " conversation is kept."
            )
        else:
            failure = translate(error, self._where(name), "chat", streaming=streaming)
        if (
            isinstance(failure, BackendCrashedError)
            and not streaming
            and self._extras.context_for(name) is None
        ):
            failure = self._dropped_before_text()
        plain_rejection = type(failure) is BackendError
        self._set_status(BackendState.READY if plain_rejection else BackendState.FAILED, str(failure))
        return failure

    def _dropped_before_text(self) -> BackendError:
        # llama-cpp-python's server answers 200, then drops a stream whose prompt is longer than
        # its context, before any text and without a word of why; it never says its context
        # size, so the meter could not warn. The server itself is fine: a plain rejection.
        assumed = self._loaded.n_ctx if self._loaded is not None else None
        return BackendError(
            f"{self._where().subject} ended the reply before any text, without saying why; the "
            "conversation is kept. Some servers (llama-cpp-python's) do this when the conversation "
            "is longer than their context: this one does not say its size"
            + (f" ({assumed} tokens assumed here)" if assumed else "")
            + ". Ctrl+N starts a new chat; /edit shortens your last message."
        )

    async def count_tokens(self, text: str) -> int | None:
        """llama-server's /tokenize where the server has it; None lets the caller estimate."""
        if self._extras.kind is not ServerKind.LLAMA_SERVER:
            return None
        with contextlib.suppress(Exception):
            response = await self._http.post(self.root + "/tokenize", json={"content": text}, timeout=5.0)
            tokens = response.json().get("tokens")
            if response.status_code == 200 and isinstance(tokens, list):
                return len(tokens)
        return None

"""The contract every inference backend meets, and the events a reply streams as.

A backend loads one model at a time, streams chat replies as `ChatEvent`s, can stop a reply,
and reports its state. The UI only sees these types; it never talks to llama.cpp or Ollama.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class RunSetup:
    """The settings that produced a reply, as the backend actually applied them."""

    backend: BackendKind
    model: str
    quant: str
    n_gpu_layers: int
    """Layers actually offloaded (-1 = all, reported by Ollama as a share instead)."""
    n_layers: int | None
    n_ctx: int
    n_threads: int | None
    n_batch: int | None = None
    flash_attn: bool | None = None
    kv_cache_type: str | None = None
    """llama.cpp's KV cache type; None where the server decides it (Ollama, OpenAI servers)."""
    repack: bool | None = None
    """Whether llama.cpp ran with repacked weights; None where it does not apply."""
    source: str | None = None
    """llama.cpp: the GGUF file as it was asked for (`model` is the name its header gives), so
    /compare can load the set-up again; None where it was not recorded."""
    gpu_share: float | None = None
    """Fraction of the model in GPU memory where the backend reports it (Ollama /api/ps)."""
    server: str | None = None
    """The server that computed the reply (its base URL), None for llama.cpp in this app."""
    server_kind: str | None = None
    """What that server is, where it says: "llama-server b4500", "vLLM 0.9.1", "LM Studio"…"""


class StatsSource(StrEnum):
    """Who measured a reply's speed."""

    ENGINE = "engine"
    """llama.cpp's or Ollama's own counters."""
    SERVER_TIMINGS = "server timings"
    """An OpenAI-compatible server's own figures (llama-server `timings`)."""
    SERVER_STATS = "server stats"
    """LM Studio's `stats`: tokens/s from the server, token counts from `usage`."""
    CLIENT_CLOCK = "client clock"
    """Measured here from arrival times; token counts from the server's `usage`."""
    CLIENT_CHUNKS = "client chunks"
    """Measured here, and streamed chunks counted as tokens: the server gave no counts."""

    @property
    def measured_here(self) -> bool:
        return self in (StatsSource.CLIENT_CLOCK, StatsSource.CLIENT_CHUNKS)


@dataclass(frozen=True, slots=True)
class ReplyStats:
    """Measured figures for one reply."""

    setup: RunSetup
    ttft_s: float | None
    """Request sent → first text arrived, as the user sees it."""
    prompt_tokens: int | None
    prompt_tokens_evaluated: int | None
    """Prompt tokens actually computed; fewer than prompt_tokens when a cached prefix was reused."""
    prompt_tps: float | None
    gen_tokens: int
    gen_tps: float | None
    total_s: float
    load_s: float | None = None
    source: StatsSource = StatsSource.ENGINE

    @property
    def prompt_cached(self) -> bool:
        """True when prompt tokens/s is unreliable because part of the prompt came from cache."""
        if self.prompt_tokens is None or self.prompt_tokens_evaluated is None:
            return False
        return self.prompt_tokens_evaluated < self.prompt_tokens

    def followed_by(self, more: ReplyStats) -> ReplyStats:
        """The figures of a reply these are for, continued (/continue) with `more`: the whole
        reply's tokens, time and pace; its prompt is the first part's. Only `more` when another
        set-up wrote it, whose figures would not be this one's."""
        if more.setup != self.setup:
            return more
        # Each part's time between its first and last token, as its tokens/s was measured.
        paced = [
            (n - 1, (n - 1) / tps)
            for n, tps in ((self.gen_tokens, self.gen_tps), (more.gen_tokens, more.gen_tps))
            if tps and n > 1
        ]
        steps, span = sum(n for n, _ in paced), sum(s for _, s in paced)
        return replace(
            self,
            gen_tokens=self.gen_tokens + more.gen_tokens,
            gen_tps=steps / span if span > 0 else None,
            total_s=self.total_s + more.total_s,
        )


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    tokens: int | None = None
    """Tokens generated so far in this reply, where the backend knows (for a live tok/s)."""
    at: float | None = None
    """When the engine produced it (`time.monotonic()`, a clock all processes here share), where
    the backend knows: the live tok/s then measures the engine, not how soon the UI got to it."""


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    text: str
    tokens: int | None = None
    """As `TextDelta.tokens`: a model may think for minutes, and its pace is worth showing."""
    at: float | None = None
    """As `TextDelta.at`."""


@dataclass(frozen=True, slots=True)
class ReplyDone:
    finish_reason: FinishReason
    stats: ReplyStats


ChatEvent = TextDelta | ThinkingDelta | ReplyDone


class BackendState(StrEnum):
    UNLOADED = "unloaded"
    LOADING = "loading"
    READY = "ready"
    GENERATING = "generating"
    FAILED = "failed"
    """The last load failed or the engine died; the next request tries again."""


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """What is loaded, as the engine reports it after loading."""

    settings: LoadSettings
    name: str
    architecture: str
    quant: str
    n_layers: int | None
    n_ctx: int
    n_ctx_train: int | None
    n_gpu_layers: int
    """Layers actually placed on the GPU (0 on a CPU-only build whatever was asked)."""
    gpu_offload_supported: bool
    chat_format: str
    chat_format_source: Literal["gguf", "architecture", "server"]
    size_bytes: int | None
    n_params: int | None
    load_s: float
    n_threads: int | None = None
    n_threads_batch: int | None = None
    """llama.cpp: the threads that evaluate prompts, as its context has them."""
    n_batch: int | None = None
    """llama.cpp: the batch its context has, which is never above the context (a batch of 4096
    asked with ctx 1024 is 1024); None where the app does not know it."""
    is_base_model: bool = False
    """True for pre-trained (not instruction-tuned) models such as the demo model."""
    placement: str | None = None
    """Where the server put the model, e.g. Ollama's "72% GPU / 28% CPU"."""
    repack: bool | None = None
    """llama.cpp: whether repacked weight buffers are in use (None where it does not apply)."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    n_ctx_assumed: bool = False
    """The server does not say its context size: `n_ctx` is only the one asked for."""

    def setup(self) -> RunSetup:
        backend = self.settings.backend
        in_process = backend is BackendKind.LLAMA_CPP
        # Only what this app applied is recorded: a server's own start-up flags (Ollama's
        # OLLAMA_FLASH_ATTENTION, an OpenAI server's batch) are not known here.
        return RunSetup(
            backend=backend,
            model=self.name,
            quant=self.quant,
            n_gpu_layers=self.n_gpu_layers,
            n_layers=self.n_layers,
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            n_batch=None if backend is BackendKind.OPENAI else self.n_batch or self.settings.n_batch,
            flash_attn=self.settings.flash_attn if in_process else None,
            kv_cache_type=self.settings.kv_cache_type if in_process else None,
            repack=self.repack if in_process else None,
            source=self.settings.model if in_process else None,
        )


@dataclass(frozen=True, slots=True)
class BackendStatus:
    state: BackendState
    message: str = ""
    loaded: LoadedModel | None = None


class BackendError(Exception):
    """A failure the user should read: `str(error)` is one clear line."""


class ModelLoadError(BackendError):
    pass


class NoModelError(ModelLoadError):
    """A reply was asked for with no model loaded and none to restart: the reason is whatever
    left it so (a failed load, a server that cannot be reached), which the caller knows."""


class ModelNotFoundError(BackendError):
    pass


class BackendUnavailableError(BackendError):
    """The engine or server cannot be reached (Ollama down, worker cannot start)."""


class BackendCrashedError(BackendError):
    """The engine died mid-request; the conversation is intact and the next request restarts it."""


class ContextOverflowError(BackendError):
    pass


StatusListener = Callable[[BackendStatus], None]


@runtime_checkable
class Backend(Protocol):
    """One inference engine holding at most one loaded model."""

    kind: BackendKind

    @property
    def status(self) -> BackendStatus: ...

    async def load(self, settings: LoadSettings) -> LoadedModel:
        """Load a model, replacing any loaded one. Raises `BackendError` subclasses."""
        ...

    def stream_chat(
        self, messages: Sequence[ChatMessage], sampling: SamplingSettings
    ) -> AsyncIterator[ChatEvent]:
        """Stream one reply. Ends with exactly one `ReplyDone` unless it raises `BackendError`.

        When the last message is the assistant's, the reply continues that text (a reply that
        stopped at the token limit) instead of starting a new turn.
        """
        ...

    async def cancel(self) -> None:
        """Stop the reply in flight; the stream then ends with ``finish_reason="cancelled"``."""
        ...

    async def unload(self) -> None:
        """Free the model's memory. Safe to call when nothing is loaded."""
        ...

    async def close(self) -> None:
        """Release everything; the backend is not used afterwards."""
        ...

    def process_ids(self) -> tuple[int, ...]:
        """Local processes doing this backend's work, for the hardware panel."""
        ...

    async def count_tokens(self, text: str) -> int | None:
        """Tokens `text` takes with the loaded model's tokenizer; None when it cannot tell."""
        ...

    def set_status_listener(self, listener: StatusListener | None) -> None:
        """Call `listener` (on the event loop) whenever `status` changes."""
        ...

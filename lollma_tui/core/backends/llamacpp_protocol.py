"""The line protocol between the app and its llama.cpp worker process.

One JSON object per line in each direction. Requests carry ``op``; worker events carry ``ev``.
Kept free of llama_cpp so both sides can import it cheaply.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from lollma_tui.core.backends.base import ChatMessage, LoadedModel, ReplyStats
from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings, SamplingSettings
from lollma_tui.core.workers.wire import EV_ERROR, EV_HELLO, OP_CANCEL, OP_SHUTDOWN, decode, encode

__all__ = ["EV_ERROR", "EV_HELLO", "OP_CANCEL", "OP_SHUTDOWN", "decode", "encode"]

# Requests (app → worker)
OP_LOAD = "load"
OP_CHAT = "chat"
OP_TOKENIZE = "tokenize"

# Events (worker → app)
EV_LOADED = "loaded"
EV_DELTA = "delta"  # text, and thinking before it where the reply has a think block
EV_DONE = "done"
EV_TOKENS = "tokens"

# Error kinds carried by EV_ERROR
ERR_LOAD = "load"
ERR_CONTEXT = "context"
ERR_GENERATION = "generation"
ERR_PROTOCOL = "protocol"


def load_settings_to_wire(settings: LoadSettings) -> dict[str, Any]:
    wire = asdict(settings)
    wire["backend"] = str(settings.backend)
    return wire


def load_settings_from_wire(wire: dict[str, Any]) -> LoadSettings:
    values = dict(wire)
    values["backend"] = BackendKind(values["backend"])
    if values.get("n_gpu_layers") != AUTO:
        values["n_gpu_layers"] = int(values["n_gpu_layers"])
    return LoadSettings(**values)


def sampling_to_wire(sampling: SamplingSettings) -> dict[str, Any]:
    wire = asdict(sampling)
    wire["stop"] = list(sampling.stop)
    return wire


def sampling_from_wire(wire: dict[str, Any]) -> SamplingSettings:
    values = dict(wire)
    values["stop"] = tuple(values.get("stop") or ())
    return SamplingSettings(**values)


def messages_to_wire(messages: list[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


@dataclass(frozen=True, slots=True)
class WorkerReplyFigures:
    """What the worker measures for one reply; the app adds its own wall-clock figures."""

    finish_reason: str
    prompt_tokens: int
    prompt_tokens_evaluated: int
    prompt_ms: float
    gen_tokens: int
    gen_s: float
    """Seconds from the first to the last sampled token."""

    @property
    def prompt_tps(self) -> float | None:
        if self.prompt_tokens_evaluated <= 0 or self.prompt_ms <= 0:
            return None
        return self.prompt_tokens_evaluated / (self.prompt_ms / 1000.0)

    @property
    def gen_tps(self) -> float | None:
        if self.gen_tokens < 2 or self.gen_s <= 0:
            return None
        return (self.gen_tokens - 1) / self.gen_s

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> WorkerReplyFigures:
        return cls(
            finish_reason=str(wire["finish_reason"]),
            prompt_tokens=int(wire["prompt_tokens"]),
            prompt_tokens_evaluated=int(wire["prompt_tokens_evaluated"]),
            prompt_ms=float(wire["prompt_ms"]),
            gen_tokens=int(wire["gen_tokens"]),
            gen_s=float(wire["gen_s"]),
        )


@dataclass
class TokensMade:
    """Tokens the worker said it made, and when: the figures of a reply whose worker was killed
    to stop it (they said "0 tokens" under its text)."""

    first: tuple[int, float] | None = None
    last: tuple[int, float] | None = None
    tokens: int = 0

    def saw(self, count: object, at: float | None) -> None:
        if not isinstance(count, int):
            return
        self.tokens = max(self.tokens, count)
        if at is not None:
            self.first = self.first or (count, at)
            self.last = (count, at)

    def rate(self) -> float | None:
        if self.first is None or self.last is None or self.last[1] <= self.first[1]:
            return None
        return (self.last[0] - self.first[0]) / (self.last[1] - self.first[1])


def reply_stats(
    loaded: LoadedModel,
    started: float,
    first_at: float | None,
    figures: WorkerReplyFigures | None,
    made: TokensMade | None = None,
) -> ReplyStats:
    now = time.perf_counter()
    # Stopped while it read the prompt: llama.cpp counts evaluated tokens only at a sync, which
    # a stop between two batches never reaches, and "817 of 818 cached" was shown and saved.
    read = (
        figures
        if figures is not None and (figures.gen_tokens or figures.finish_reason != "cancelled")
        else None
    )
    return ReplyStats(
        setup=loaded.setup(),
        ttft_s=(first_at - started) if first_at is not None else None,
        prompt_tokens=figures.prompt_tokens if figures else None,
        prompt_tokens_evaluated=read.prompt_tokens_evaluated if read else None,
        prompt_tps=read.prompt_tps if read else None,
        gen_tokens=figures.gen_tokens if figures else made.tokens if made else 0,
        gen_tps=figures.gen_tps if figures else made.rate() if made else None,
        total_s=now - started,
    )


def loaded_from_wire(settings: LoadSettings, model: dict[str, Any], notes: tuple[str, ...]) -> LoadedModel:
    return LoadedModel(
        settings=settings,
        name=str(model["name"]),
        architecture=str(model["architecture"]),
        quant=str(model["quant"]),
        n_layers=model.get("n_layers"),
        n_ctx=int(model["n_ctx"]),
        n_ctx_train=model.get("n_ctx_train"),
        n_gpu_layers=int(model["n_gpu_layers"]),
        gpu_offload_supported=bool(model["gpu_offload_supported"]),
        chat_format=str(model["chat_format"]),
        chat_format_source=model["chat_format_source"],
        size_bytes=model.get("size_bytes"),
        n_params=model.get("n_params"),
        load_s=float(model["load_s"]),
        n_threads=model.get("n_threads"),
        n_threads_batch=model.get("n_threads_batch"),
        n_batch=model.get("n_batch"),
        repack=bool(model.get("repack", True)),
        notes=(*(model.get("notes") or ()), *notes),
    )

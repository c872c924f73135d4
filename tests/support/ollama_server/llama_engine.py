"""Real tokens for the test server: the project's own llama.cpp backend behind the Ollama API.

The adapter speaks only the `Backend` protocol, so it maps Ollama's runner options to
`LoadSettings` and its sampling options to `SamplingSettings`, and the reply's `ReplyStats`
back to Ollama's final-chunk metrics.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

from lollma_tui.core.backends.base import (
    Backend,
    BackendError,
    ChatMessage,
    ReplyDone,
    TextDelta,
    ThinkingDelta,
)
from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings, SamplingSettings, SettingsError

from .catalog import ModelSpec
from .engines import EngineError, Finish, GenerationJob, Piece, RunnerOptions

_ROLES = ("system", "user", "assistant")


def load_settings(spec: ModelSpec, runner: RunnerOptions) -> LoadSettings:
    if spec.gguf_path is None:
        raise EngineError(f"{spec.name} has no GGUF file for the llama.cpp engine")
    return LoadSettings(
        backend=BackendKind.LLAMA_CPP,
        model=str(spec.gguf_path),
        n_gpu_layers=AUTO if runner.num_gpu < 0 else runner.num_gpu,
        n_ctx=runner.num_ctx,
        n_threads=runner.num_thread or None,
        n_batch=runner.num_batch,
        use_mmap=runner.use_mmap is not False,
    )


def sampling_settings(options: dict[str, Any]) -> SamplingSettings:
    """Ollama's effective sampling options, clamped into the ranges our settings accept."""
    seed = int(options.get("seed", -1))
    num_predict = int(options.get("num_predict", -1))
    return SamplingSettings(
        temperature=min(max(float(options.get("temperature", 0.8)), 0.0), 5.0),
        top_p=min(max(float(options.get("top_p", 0.9)), 1e-6), 1.0),
        top_k=max(int(options.get("top_k", 40)), 0),
        min_p=min(max(float(options.get("min_p", 0.0)), 0.0), 0.999),
        repeat_penalty=min(max(float(options.get("repeat_penalty", 1.0)), 1e-6), 5.0),
        seed=seed if seed >= 0 else None,
        max_tokens=num_predict if num_predict > 0 else None,
        stop=tuple(options.get("stop") or ()),
    )


class LlamaCppEngine:
    """Serves every model through one `Backend` (one model loaded at a time, like a runner)."""

    def __init__(self, backend_factory: Callable[[], Backend]) -> None:
        self._factory = backend_factory
        self._backend: Backend | None = None
        self._loaded: tuple[str, LoadSettings] | None = None

    def _get(self) -> Backend:
        if self._backend is None:
            self._backend = self._factory()
        return self._backend

    async def load(self, spec: ModelSpec, runner: RunnerOptions) -> None:
        settings = load_settings(spec, runner)
        try:
            await self._get().load(settings)
        except BackendError as error:
            self._loaded = None
            raise EngineError(str(error)) from error
        self._loaded = (spec.name, settings)

    async def unload(self, spec: ModelSpec) -> None:
        if self._loaded is not None and self._loaded[0] == spec.name and self._backend is not None:
            await self._backend.unload()
            self._loaded = None

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()
            self._backend = None

    async def generate(self, job: GenerationJob) -> AsyncGenerator[Piece | Finish, None]:
        backend = self._get()
        if self._loaded is None or self._loaded[0] != job.spec.name:
            await self.load(job.spec, job.runner)
        messages = [ChatMessage(m["role"], m["content"]) for m in job.messages if m["role"] in _ROLES]  # type: ignore[arg-type]
        try:
            sampling = sampling_settings(job.options)
        except SettingsError as error:
            raise EngineError(str(error)) from error
        stream = backend.stream_chat(messages, sampling)
        finished = False
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    yield Piece(content=event.text)
                elif isinstance(event, ThinkingDelta):
                    yield Piece(thinking=event.text)
                elif isinstance(event, ReplyDone):
                    finished = True
                    yield _finish(event)
                    return
        except BackendError as error:
            finished = True
            raise EngineError(str(error)) from error
        finally:
            if not finished:
                # The HTTP client went away: stop the worker's generation as well.
                await backend.cancel()
            await stream.aclose()  # type: ignore[attr-defined]


def _finish(done: ReplyDone) -> Finish:
    stats = done.stats
    prompt = stats.prompt_tokens or 0
    evaluated = stats.prompt_tokens_evaluated if stats.prompt_tokens_evaluated is not None else prompt
    prompt_ns = int(evaluated / stats.prompt_tps * 1e9) if stats.prompt_tps else 0
    eval_ns = int(stats.gen_tokens / stats.gen_tps * 1e9) if stats.gen_tps else int(stats.total_s * 1e9)
    return Finish(
        done_reason="length" if done.finish_reason == "length" else "stop",
        prompt_eval_count=prompt,
        prompt_eval_duration_ns=prompt_ns,
        eval_count=stats.gen_tokens,
        eval_duration_ns=max(eval_ns, 1),
        cached_tokens=prompt - evaluated,
    )

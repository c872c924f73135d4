"""Where the test server's replies come from.

An `Engine` loads a model with runner options and turns a generation job into `Piece`s and one
closing `Finish`. `ScriptedEngine` replies deterministically from `Script`s (text, thinking,
token rate, counts) and emulates the runner's prompt cache; `llama_engine.LlamaCppEngine`
produces real tokens.
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .catalog import ModelSpec


class EngineError(Exception):
    """The engine failed: before the first piece this is a 500, afterwards an error line."""


@dataclass(frozen=True)
class RunnerOptions:
    """The effective runner options a model was loaded with (api.Options.Runner)."""

    num_ctx: int
    num_batch: int
    num_gpu: int
    """-1 means "let the server decide" (all layers when they fit)."""
    main_gpu: int
    use_mmap: bool | None
    num_thread: int
    num_ctx_auto: bool = False
    num_batch_auto: bool = False


@dataclass(frozen=True)
class GenerationJob:
    spec: ModelSpec
    runner: RunnerOptions
    messages: tuple[dict[str, str], ...]
    """role/content pairs after the model's system prompt was applied."""
    prompt: str
    """The rendered prompt text (what the runner would tokenize)."""
    options: dict[str, Any]
    """Sampling options: defaults, then the model's PARAMETERs, then the request's options."""
    think: bool
    raw: bool = False


@dataclass(frozen=True)
class Piece:
    content: str = ""
    thinking: str = ""


@dataclass(frozen=True)
class Finish:
    done_reason: str
    prompt_eval_count: int
    prompt_eval_duration_ns: int
    eval_count: int
    eval_duration_ns: int
    cached_tokens: int = 0
    """Prompt tokens served from the cache (counted in prompt_eval_count, as Ollama does)."""


class Engine(Protocol):
    async def load(self, spec: ModelSpec, runner: RunnerOptions) -> None: ...

    async def unload(self, spec: ModelSpec) -> None: ...

    def generate(self, job: GenerationJob) -> AsyncGenerator[Piece | Finish, None]: ...

    async def close(self) -> None: ...


# Chat-template markers such as <|im_start|> count as one token, as they do in real vocabularies.
_TOKEN = re.compile(r"<\|[^|<>]+\|>|\w+|[^\w\s]")
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")


def tokenize(text: str) -> list[str]:
    """A word-level stand-in for a tokenizer: stable, and good enough to count and cache."""
    return _TOKEN.findall(text)


def token_ids(text: str) -> list[int]:
    """Deterministic ids for the word tokens, for /api/generate's ``context``."""
    return [zlib.crc32(t.encode()) % 32000 for t in tokenize(text)]


def split_pieces(text: str) -> list[str]:
    """Split reply text into token-sized pieces that concatenate back to the text."""
    pieces = _PIECE.findall(text)
    assert "".join(pieces) == text, "pieces must cover the text"
    return pieces


@dataclass(frozen=True)
class Script:
    """One scripted reply."""

    text: str = "Hello! I am a scripted reply from the test server."
    thinking: str = "The user greets me. I should answer briefly."
    """Streamed first, as ``message.thinking``, when the model thinks and the request allows it."""
    pieces: Sequence[str] | None = None
    """Explicit content pieces; by default `text` is split into word-sized pieces."""
    tokens_per_second: float = 0.0
    """Pace of the pieces; 0 streams as fast as possible. Also sets the reported eval_duration."""
    prompt_tokens_per_second: float = 2000.0
    """Sets prompt_eval_duration for the tokens actually evaluated (not the cached ones)."""
    prompt_eval_count: int | None = None
    """Override the reported prompt token count (default: the rendered prompt's word tokens)."""
    eval_count: int | None = None
    """Override the reported generated token count (default: one per piece sent)."""
    done_reason: str = "stop"

    def content_pieces(self) -> list[str]:
        return list(self.pieces) if self.pieces is not None else split_pieces(self.text)


@dataclass
class ScriptedEngine:
    """Replies from a queue of scripts, then from `default`; loads instantly."""

    default: Script = field(default_factory=Script)
    scripts: deque[Script] = field(default_factory=deque)
    _cache: dict[str, list[str]] = field(default_factory=dict)

    def queue(self, *scripts: Script | str) -> None:
        for script in scripts:
            self.scripts.append(Script(text=script) if isinstance(script, str) else script)

    async def load(self, spec: ModelSpec, runner: RunnerOptions) -> None:
        self._cache.pop(spec.name, None)

    async def unload(self, spec: ModelSpec) -> None:
        self._cache.pop(spec.name, None)

    async def close(self) -> None:
        self._cache.clear()

    def _next_script(self) -> Script:
        try:
            return self.scripts.popleft()
        except IndexError:
            return self.default

    async def generate(self, job: GenerationJob) -> AsyncGenerator[Piece | Finish, None]:
        script = self._next_script()
        prompt_tokens = tokenize(job.prompt)
        previous = self._cache.get(job.spec.name, [])
        common = 0
        for mine, theirs in zip(prompt_tokens, previous, strict=False):
            if mine != theirs:
                break
            common += 1
        prompt_count = (
            script.prompt_eval_count if script.prompt_eval_count is not None else len(prompt_tokens)
        )
        # llama.cpp always evaluates at least the last prompt token.
        cached = min(common, max(prompt_count - 1, 0))
        evaluated = prompt_count - cached
        prompt_ns = (
            int(evaluated / script.prompt_tokens_per_second * 1e9) if script.prompt_tokens_per_second else 0
        )

        stops = [s for s in job.options.get("stop") or [] if s]
        limit = int(job.options.get("num_predict", -1) or -1)
        planned: list[Piece] = []
        if job.think and "thinking" in job.spec.capabilities and script.thinking:
            planned += [Piece(thinking=p) for p in split_pieces(script.thinking)]
        planned += [Piece(content=p) for p in script.content_pieces()]

        delay = 1.0 / script.tokens_per_second if script.tokens_per_second > 0 else 0.0
        started = time.perf_counter()
        sent = 0
        reply = ""
        done_reason = script.done_reason
        for piece in planned:
            if 0 < limit <= sent:
                done_reason = "length"
                break
            if piece.content and stops:
                candidate = reply + piece.content
                hits = [candidate.find(s) for s in stops if s in candidate]
                if hits:
                    cut = min(hits) - len(reply)
                    if cut > 0:
                        yield Piece(content=piece.content[:cut])
                    done_reason = "stop"
                    break
            if delay:
                await asyncio.sleep(delay)
            reply += piece.content
            sent += 1
            yield piece
        eval_ns = int(sent * delay * 1e9) if delay else max(int((time.perf_counter() - started) * 1e9), 1)
        self._cache[job.spec.name] = prompt_tokens + tokenize(reply)
        yield Finish(
            done_reason=done_reason,
            prompt_eval_count=prompt_count,
            prompt_eval_duration_ns=prompt_ns,
            eval_count=script.eval_count if script.eval_count is not None else sent,
            eval_duration_ns=eval_ns,
            cached_tokens=cached,
        )

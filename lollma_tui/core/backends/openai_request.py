"""The body of a chat request to an OpenAI-compatible server, and the reading of its chunks.

Standard OpenAI fields always go out (temperature, top_p, seed, max_tokens, stop). llama.cpp's
samplers that the OpenAI API lacks (top_k, min_p, repeat_penalty) go in the body as extras,
which llama-server, llama-cpp-python's server, LM Studio and vLLM read; a server that rejects
unknown fields gets the plain request instead (see `OpenAIBackend`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lollma_tui.core.backends.base import ChatMessage
from lollma_tui.core.backends.openai_extras import ServerKind
from lollma_tui.core.checked import MAX_TEXT
from lollma_tui.core.models.quant_types import normalize_quant
from lollma_tui.core.settings import SamplingSettings

_REASONING_KEYS = ("reasoning_content", "reasoning")
"""llama-server and older vLLM say reasoning_content; newer vLLM and Ollama's /v1, reasoning."""
MAX_CHUNK_TEXT = 1 << 20
"""A single streamed chunk larger than this is a broken server, not a token."""


def chat_body(
    model: str,
    messages: Sequence[ChatMessage],
    sampling: SamplingSettings,
    *,
    full: bool,
    kind: ServerKind,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(keyword arguments for ``chat.completions.create``, its ``extra_body`` or None).

    `full` False sends standard fields only: no usage request, no llama.cpp samplers.
    """
    params: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "stream": True,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
    }
    if full:
        params["stream_options"] = {"include_usage": True}
    if sampling.max_tokens is not None:
        params["max_tokens"] = sampling.max_tokens
    if sampling.seed is not None:
        params["seed"] = sampling.seed
    if sampling.stop:
        params["stop"] = list(sampling.stop)
    if not full:
        return params, None
    penalty = "repetition_penalty" if kind is ServerKind.VLLM else "repeat_penalty"
    extra_body: dict[str, Any] = {
        "top_k": sampling.top_k,
        "min_p": sampling.min_p,
        penalty: sampling.repeat_penalty,
    }
    if kind is ServerKind.VLLM and messages and messages[-1].role == "assistant":
        # /continue: vLLM goes on from the last message only when asked (llama-server always does).
        extra_body |= {"continue_final_message": True, "add_generation_prompt": False}
    return params, extra_body


CONTINUES = frozenset({ServerKind.LLAMA_SERVER, ServerKind.VLLM})
"""Servers that continue a trailing assistant message rather than answer after it."""


@dataclass(frozen=True, slots=True)
class DeltaText:
    """The text a chunk's first choice carries, and whether it said why the reply ended."""

    content: str
    reasoning: str
    finish_reason: str | None


def delta_text(chunk: Any) -> DeltaText:
    """Text of one `ChatCompletionChunk`; oversized or non-string pieces are dropped."""
    choices = chunk.choices or ()
    if not choices:
        return DeltaText("", "", None)
    choice = choices[0]
    delta = choice.delta
    content = _bounded(getattr(delta, "content", None))
    extra: Mapping[str, Any] = getattr(delta, "model_extra", None) or {}
    reasoning = ""
    for key in _REASONING_KEYS:
        reasoning = _bounded(extra.get(key))
        if reasoning:
            break
    return DeltaText(content, reasoning, choice.finish_reason)


def _bounded(value: object) -> str:
    return value if isinstance(value, str) and len(value) <= MAX_CHUNK_TEXT else ""


def quant_in_names(*names: str | None) -> str:
    """The quantization a model id or file name spells, e.g. "Qwen2.5-7B-Q4_K_M.gguf" → "Q4_K_M"."""
    for name in names:
        for word in reversed(re.split(r"[-./:@\s]+", (name or "")[:MAX_TEXT])):
            found = normalize_quant(word)
            if found is not None:
                return found
    return ""

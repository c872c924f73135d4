"""The response shapes of the OpenAI-compatible servers we imitate, each named after its server.

Written from the servers' documentation (reference/backends.md §G):

* ``LLAMA_SERVER`` — llama.cpp's llama-server: `timings` on the last chunk, /props, /slots,
  /metrics (``llamacpp:*`` gauges), /health answering 503 while the model loads;
* ``VLLM`` — vLLM: usage only in a last chunk with empty `choices`, and only when the request
  asks for it with ``stream_options.include_usage``; /version; /metrics (``vllm:*`` gauges, one
  series per model name);
* ``LM_STUDIO`` — LM Studio: `stats` (tokens_per_second, time_to_first_token, generation_time,
  stop_reason) with `usage` on the last chunk, and /api/v0/models with loaded state,
  quantization, architecture and max context;
* ``PLAIN`` — a server with nothing beyond the OpenAI API (like llama-cpp-python's own).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Flavour(StrEnum):
    LLAMA_SERVER = "llama-server"
    VLLM = "vllm"
    LM_STUDIO = "lmstudio"
    PLAIN = "plain"


@dataclass
class ServedSpec:
    """One model the fake server offers."""

    id: str
    quantization: str = "Q4_K_M"
    arch: str = "llama"
    max_context: int = 8192
    loaded: bool = True


BUILD_INFO = "b4500-0abc123"
VLLM_VERSION = "0.9.1"


def chunk(
    model: str, delta: dict[str, Any] | None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choices = (
        [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }
    body.update(extra)
    return body


def models_list(flavour: Flavour, models: list[ServedSpec]) -> dict[str, Any]:
    owner = {Flavour.LLAMA_SERVER: "llamacpp", Flavour.VLLM: "vllm", Flavour.LM_STUDIO: "organization_owner"}
    return {
        "object": "list",
        "data": [
            {"id": m.id, "object": "model", "created": 0, "owned_by": owner.get(flavour, "me")}
            # vLLM's model cards say the context it serves each model with.
            | ({"max_model_len": m.max_context} if flavour is Flavour.VLLM else {})
            for m in models
        ],
    }


def lmstudio_models(models: list[ServedSpec]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": m.id,
                "object": "model",
                "type": "llm",
                "publisher": "lmstudio-community",
                "arch": m.arch,
                "compatibility_type": "gguf",
                "quantization": m.quantization,
                "state": "loaded" if m.loaded else "not-loaded",
                "max_context_length": m.max_context,
            }
            for m in models
        ],
    }


def llama_props(model_path: str, n_ctx: int, slots: int) -> dict[str, Any]:
    return {
        "default_generation_settings": {"n_ctx": n_ctx, "params": {"temperature": 0.8, "top_k": 40}},
        "total_slots": slots,
        "model_path": model_path,
        "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
        "build_info": BUILD_INFO,
    }


def llama_slots(n_ctx: int, busy: bool) -> list[dict[str, Any]]:
    return [{"id": 0, "id_task": 1, "n_ctx": n_ctx, "speculative": False, "is_processing": busy}]


def llama_metrics(kv_usage: float, running: int, deferred: int) -> str:
    return (
        "# HELP llamacpp:prompt_tokens_seconds Average prompt throughput in tokens/s.\n"
        "# TYPE llamacpp:prompt_tokens_seconds gauge\n"
        "llamacpp:prompt_tokens_seconds 812.5\n"
        "# TYPE llamacpp:predicted_tokens_seconds gauge\n"
        "llamacpp:predicted_tokens_seconds 198.7\n"
        "# TYPE llamacpp:kv_cache_usage_ratio gauge\n"
        f"llamacpp:kv_cache_usage_ratio {kv_usage}\n"
        "# TYPE llamacpp:requests_processing gauge\n"
        f"llamacpp:requests_processing {running}\n"
        "# TYPE llamacpp:requests_deferred gauge\n"
        f"llamacpp:requests_deferred {deferred}\n"
    )


def vllm_metrics(models: list[ServedSpec], kv_usage: float, running: int, waiting: int) -> str:
    lines = ["# HELP vllm:num_requests_running Number of requests in model execution batches."]
    lines.append("# TYPE vllm:num_requests_running gauge")
    lines += [f'vllm:num_requests_running{{model_name="{m.id}"}} {float(running)}' for m in models]
    lines.append("# TYPE vllm:num_requests_waiting gauge")
    lines += [f'vllm:num_requests_waiting{{model_name="{m.id}"}} {float(waiting)}' for m in models]
    lines.append("# TYPE vllm:kv_cache_usage_perc gauge")
    lines += [f'vllm:kv_cache_usage_perc{{engine="0",model_name="{m.id}"}} {kv_usage}' for m in models]
    return "\n".join(lines) + "\n"


def llama_timings(
    prompt_n: int, cache_n: int, prompt_ms: float, predicted_n: int, predicted_ms: float
) -> dict[str, Any]:
    return {
        "cache_n": cache_n,
        "prompt_n": prompt_n,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / max(prompt_n, 1),
        "prompt_per_second": prompt_n / (prompt_ms / 1000) if prompt_ms > 0 else 0.0,
        "predicted_n": predicted_n,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": predicted_ms / max(predicted_n, 1),
        "predicted_per_second": predicted_n / (predicted_ms / 1000) if predicted_ms > 0 else 0.0,
    }


def lmstudio_stats(tokens: int, generation_s: float, ttft_s: float, finish: str) -> dict[str, Any]:
    return {
        "tokens_per_second": tokens / generation_s if generation_s > 0 else 0.0,
        "time_to_first_token": ttft_s,
        "generation_time": generation_s,
        "stop_reason": "eosFound" if finish == "stop" else "maxPredictedTokensReached",
    }


def error_body(message: str, kind: str, code: int | str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope, which all three servers use."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}

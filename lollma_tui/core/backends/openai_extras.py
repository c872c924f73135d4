"""What an OpenAI-compatible server tells about itself beyond the OpenAI API, as plain records.

Detected, never assumed: each field is set only when an endpoint answered with it.

* llama-server (and llamafile): ``/props`` (context size, model path, build), ``/slots``,
  ``/metrics`` (with ``--metrics``), ``/health`` (503 while the model loads);
* vLLM: ``/metrics`` (KV-cache usage, running and waiting requests) and ``/version``;
* LM Studio: ``/api/v0/models`` (loaded state, quantization, architecture, max context);
* Ollama's /v1: recognised by ``/api/version``.

The parsers here are pure and bounded; `openai_probe` fetches the replies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from lollma_tui.core.checked import (
    WireError,
    integer,
    items,
    mapping,
    number,
    optional_bool,
    optional_integer,
    optional_text,
    text,
)

T = TypeVar("T")

MAX_MODELS = 5000
MAX_SLOTS = 1024
MAX_ID = 512
MAX_PATH = 4096
MAX_CTX = 1 << 24
MAX_METRIC_LINE = 2048


class ServerKind(StrEnum):
    LLAMA_SERVER = "llama-server"
    VLLM = "vLLM"
    LM_STUDIO = "LM Studio"
    OLLAMA = "Ollama"
    UNKNOWN = "OpenAI-compatible server"


@dataclass(frozen=True, slots=True)
class SlotState:
    """One llama-server slot (/slots)."""

    id: int
    n_ctx: int | None
    processing: bool | None


@dataclass(frozen=True, slots=True)
class ServerMetrics:
    """The gauges of /metrics worth showing; None where the server does not export one."""

    kv_cache_usage: float | None = None
    """0..1."""
    requests_running: int | None = None
    requests_waiting: int | None = None
    prompt_tps: float | None = None
    """llama-server's average prompt throughput since it started."""
    gen_tps: float | None = None


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A model the server offers (/v1/models), with LM Studio's details where it gives them."""

    id: str
    loaded: bool | None = None
    quantization: str | None = None
    architecture: str | None = None
    max_context: int | None = None
    model_type: str | None = None
    """LM Studio: "llm", "vlm", "embeddings"."""


@dataclass(frozen=True, slots=True)
class ServerExtras:
    """Everything found about one server; the model card and the panel show it."""

    kind: ServerKind = ServerKind.UNKNOWN
    version: str | None = None
    """llama-server's build_info, vLLM's or Ollama's version."""
    model_path: str | None = None
    n_ctx: int | None = None
    """Context size per slot, as llama-server reports it."""
    total_slots: int | None = None
    slots: tuple[SlotState, ...] = ()
    metrics: ServerMetrics | None = None
    models: tuple[ServedModel, ...] = ()
    """LM Studio's /api/v0/models entries (empty for other servers)."""
    loading: bool = False
    """/health answered 503: the server is up but still loading its model."""
    silent: bool = False
    """The last refresh got no answer from any of its endpoints: the figures are gone, not old."""
    endpoints: tuple[str, ...] = ()
    """The extra endpoints that answered, e.g. ("/props", "/slots", "/health")."""
    problems: tuple[str, ...] = field(default_factory=tuple)
    """Replies or entries that could not be read, each with its reason."""

    @property
    def label(self) -> str:
        """ "llama-server b4500", "vLLM 0.9.1", "LM Studio"…"""
        return f"{self.kind} {self.version}" if self.version else str(self.kind)

    def model(self, model_id: str) -> ServedModel | None:
        return next((m for m in self.models if m.id == model_id), None)

    def context_for(self, model_id: str) -> int | None:
        """The context the server runs `model_id` with, where it says."""
        if self.n_ctx is not None:
            return self.n_ctx
        found = self.model(model_id)
        return found.max_context if found is not None else None


def json_body(body: bytes, where: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise WireError(f"{where}: not JSON ({error})") from None


def read_props(data: object, extras: ServerExtras) -> ServerExtras:
    """llama-server's /props; raises WireError when it is not that shape at all."""
    props = mapping(data, "/props")
    settings = props.get("default_generation_settings")
    if settings is None and "build_info" not in props:
        raise WireError("/props: neither default_generation_settings nor build_info: not llama-server")
    problems: list[str] = []
    n_ctx = _or_note(
        problems,
        lambda: optional_integer(mapping(settings or {}, "/props.dgs"), "n_ctx", "/props", high=MAX_CTX),
    )
    return replace(
        extras,
        kind=ServerKind.LLAMA_SERVER,
        version=_or_note(problems, lambda: optional_text(props, "build_info", "/props", max_length=200)),
        model_path=_or_note(
            problems, lambda: optional_text(props, "model_path", "/props", max_length=MAX_PATH)
        ),
        n_ctx=n_ctx,
        total_slots=_or_note(
            problems, lambda: optional_integer(props, "total_slots", "/props", high=MAX_SLOTS)
        ),
        problems=(*extras.problems, *problems),
    )


def read_slots(data: object) -> tuple[tuple[SlotState, ...], list[str]]:
    slots: list[SlotState] = []
    problems: list[str] = []
    for i, entry in enumerate(items(data, "/slots", MAX_SLOTS)):
        where = f"/slots[{i}]"
        try:
            slot = mapping(entry, where)
            slots.append(
                SlotState(
                    id=integer(slot.get("id", i), f"{where}.id", high=MAX_SLOTS),
                    n_ctx=optional_integer(slot, "n_ctx", where, high=MAX_CTX),
                    processing=optional_bool(slot, "is_processing", where),
                )
            )
        except WireError as error:
            problems.append(str(error))
    return tuple(slots), problems


def read_lmstudio_models(data: object) -> tuple[tuple[ServedModel, ...], list[str]]:
    """LM Studio's /api/v0/models: ``{"data": [{id, state, quantization, arch, …}]}``."""
    entries = items(mapping(data, "/api/v0/models").get("data"), "/api/v0/models.data", MAX_MODELS)
    models: list[ServedModel] = []
    problems: list[str] = []
    for i, entry in enumerate(entries):
        where = f"/api/v0/models[{i}]"
        try:
            model = mapping(entry, where)
            state = optional_text(model, "state", where, max_length=40)
            models.append(
                ServedModel(
                    id=text(model.get("id"), f"{where}.id", max_length=MAX_ID),
                    loaded=None if state is None else state == "loaded",
                    quantization=optional_text(model, "quantization", where, max_length=40),
                    architecture=optional_text(model, "arch", where, max_length=80),
                    max_context=optional_integer(model, "max_context_length", where, high=MAX_CTX),
                    model_type=optional_text(model, "type", where, max_length=40),
                )
            )
        except WireError as error:
            problems.append(str(error))
    return tuple(models), problems


def served_context(entry: Mapping[str, object]) -> int | None:
    """vLLM's `max_model_len` in a /v1/models entry: the context it serves the model with."""
    value = entry.get("max_model_len")
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_CTX:
        return value
    return None


def read_model_ids(ids: Iterable[object]) -> tuple[tuple[str, ...], list[str]]:
    """/v1/models ids, each checked; a bad one is left out with its reason."""
    found: list[str] = []
    problems: list[str] = []
    for i, value in enumerate(ids):
        if i >= MAX_MODELS:
            problems.append(f"/models: more than {MAX_MODELS} models; the rest are not listed")
            break
        try:
            model_id = text(value, f"/models[{i}].id", max_length=MAX_ID)
            if not model_id.strip():
                raise WireError(f"/models[{i}].id: empty")
            found.append(model_id)
        except WireError as error:
            problems.append(str(error))
    return tuple(found), problems


# Prometheus gauge names per server; several spellings where versions renamed them.
_GAUGES: Mapping[str, str] = {
    "llamacpp:kv_cache_usage_ratio": "kv_cache_usage",
    "llamacpp:requests_processing": "requests_running",
    "llamacpp:requests_deferred": "requests_waiting",
    "llamacpp:prompt_tokens_seconds": "prompt_tps",
    "llamacpp:predicted_tokens_seconds": "gen_tps",
    "vllm:kv_cache_usage_perc": "kv_cache_usage",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage",
    "vllm:num_requests_running": "requests_running",
    "vllm:num_requests_waiting": "requests_waiting",
}


def read_metrics(body: str) -> tuple[ServerMetrics, ServerKind, list[str]]:
    """The gauges we show from a Prometheus text page; each wanted line is parsed on its own.

    vLLM labels its series by model; values of the same gauge are summed across labels.
    """
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    problems: list[str] = []
    kind = ServerKind.UNKNOWN
    for line in body.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        field_name = _GAUGES.get(name)
        if field_name is None:
            continue
        kind = ServerKind.LLAMA_SERVER if name.startswith("llamacpp:") else ServerKind.VLLM
        try:
            if len(line) > MAX_METRIC_LINE:
                raise WireError(f"/metrics {name}: line longer than {MAX_METRIC_LINE} characters")
            samples = [s for family in text_string_to_metric_families(line + "\n") for s in family.samples]
            high = 1.0 if field_name == "kv_cache_usage" else 1e9
            for sample in samples:
                value = number(sample.value, f"/metrics {name}", low=0.0, high=high)
                # Series per model (vLLM's labels): counts add up, a usage ratio does not.
                if field_name == "kv_cache_usage":
                    values[field_name] = max(values.get(field_name, 0.0), value)
                else:
                    values[field_name] = values.get(field_name, 0.0) + value
        except (WireError, ValueError) as error:
            problems.append(str(error) if isinstance(error, WireError) else f"/metrics {name}: {error}")

    def count(name: str) -> int | None:
        value = values.get(name)
        return None if value is None else round(value)

    metrics = ServerMetrics(
        kv_cache_usage=values.get("kv_cache_usage"),
        requests_running=count("requests_running"),
        requests_waiting=count("requests_waiting"),
        prompt_tps=values.get("prompt_tps"),
        gen_tps=values.get("gen_tps"),
    )
    return metrics, kind, problems


def _or_note(problems: list[str], read: Callable[[], T]) -> T | None:
    try:
        return read()
    except WireError as error:
        problems.append(str(error))
        return None

"""What Ollama reports about models, as plain frozen records the UI can hold.

Built from the ollama client's pydantic responses so nothing above the backend depends on them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ollama import ListResponse, ProcessResponse, ProgressResponse, ShowResponse


class _Details(Protocol):
    """The ``details`` object of tags, ps and show (the client does not export its type)."""

    @property
    def family(self) -> str | None: ...
    @property
    def parameter_size(self) -> str | None: ...
    @property
    def quantization_level(self) -> str | None: ...
    @property
    def format(self) -> str | None: ...


def placement_label(size: int, size_vram: int) -> str:
    """Where a loaded model lives, as ``ollama ps`` says it: "100% GPU", "72% GPU / 28% CPU"."""
    if size <= 0 or size_vram <= 0:
        return "100% CPU"
    if size_vram >= size:
        return "100% GPU"
    # Never round a split model to 100% or 0%: that would hide the split.
    gpu = min(99, max(1, round(size_vram * 100 / size)))
    return f"{gpu}% GPU / {100 - gpu}% CPU"


def same_model(a: str, b: str) -> bool:
    """Ollama names match case-insensitively, and a missing tag means ``latest``."""

    def full(name: str) -> str:
        name = name.strip().lower()
        return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"

    return full(a) == full(b)


@dataclass(frozen=True, slots=True)
class OllamaModel:
    """One installed model (/api/tags)."""

    name: str
    size_bytes: int
    digest: str
    modified_at: datetime | None
    family: str
    parameter_size: str
    """Ollama's humanised count, e.g. "1.1B", "494.03M"."""
    quantization: str
    """e.g. "Q4_K_M", "Q8_0", "F16"."""
    format: str


@dataclass(frozen=True, slots=True)
class OllamaRunningModel:
    """One loaded model (/api/ps)."""

    name: str
    size_bytes: int
    """Memory in use, RAM and VRAM together (weights, KV cache, buffers)."""
    vram_bytes: int
    context_length: int | None
    expires_at: datetime | None
    quantization: str

    @property
    def gpu_share(self) -> float:
        return min(self.vram_bytes / self.size_bytes, 1.0) if self.size_bytes > 0 else 0.0

    @property
    def placement(self) -> str:
        return placement_label(self.size_bytes, self.vram_bytes)


@dataclass(frozen=True, slots=True)
class OllamaModelInfo:
    """A model's make-up (/api/show): the GGUF facts the settings drawer needs."""

    name: str
    architecture: str
    n_layers: int | None
    n_ctx_train: int | None
    embedding_length: int | None
    head_count: int | None
    head_count_kv: int | None
    n_params: int | None
    family: str
    parameter_size: str
    quantization: str
    capabilities: tuple[str, ...]
    template: str

    @property
    def can_think(self) -> bool:
        return "thinking" in self.capabilities


@dataclass(frozen=True, slots=True)
class PullProgress:
    """One progress line of a pull: "pulling manifest", "pulling <digest>", ..., "success"."""

    status: str
    completed: int | None = None
    total: int | None = None
    digest: str | None = None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min((self.completed or 0) / self.total, 1.0)


def _details(details: _Details | None) -> tuple[str, str, str, str]:
    if details is None:
        return "", "", "", ""
    return (
        details.family or "",
        details.parameter_size or "",
        details.quantization_level or "",
        details.format or "",
    )


def models_from(response: ListResponse) -> list[OllamaModel]:
    models: list[OllamaModel] = []
    for item in response.models:
        family, parameter_size, quantization, fmt = _details(item.details)
        models.append(
            OllamaModel(
                name=item.model or "",
                size_bytes=_size(item.size),
                digest=item.digest or "",
                modified_at=item.modified_at,
                family=family,
                parameter_size=parameter_size,
                quantization=quantization,
                format=fmt,
            )
        )
    return models


def running_from(response: ProcessResponse) -> list[OllamaRunningModel]:
    running: list[OllamaRunningModel] = []
    for item in response.models:
        _, _, quantization, _ = _details(item.details)
        running.append(
            OllamaRunningModel(
                name=item.model or item.name or "",
                size_bytes=_size(item.size),
                vram_bytes=_size(item.size_vram),
                context_length=_size(item.context_length) or None,
                expires_at=item.expires_at,
                quantization=quantization,
            )
        )
    return running


_INT_MAX = (1 << 63) - 1
_MAX_LAYERS = 4096
"""As for GGUF headers (`gguf_header_reader.MAX_LAYERS`): planning allocates per layer."""


def _size(value: int | None) -> int:
    """A byte count or length from a reply; 0 when missing, negative or past 64 bits (a ratio
    of two such numbers would not even be a float)."""
    return value if value is not None and 0 <= value <= _INT_MAX else 0


def _int(info: Mapping[str, Any], key: str, limit: int = _INT_MAX) -> int | None:
    """A count from model info, or None: NaN, infinities, fractions, negatives, non-numbers
    and values past `limit` mean the server does not say."""
    value = info.get(key)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit:
        return value
    return None


def _check_finite(info: Mapping[str, Any]) -> None:
    """Go's JSON encoder cannot write NaN or infinities, so a reply holding one is not from a
    working Ollama: it is refused like any other malformed reply."""
    for key, value in info.items():
        items = value if isinstance(value, list) else (value,)
        if any(isinstance(item, float) and not math.isfinite(item) for item in items):
            raise ValueError(f"model info {key!r} is not a finite number")


def info_from(name: str, response: ShowResponse) -> OllamaModelInfo:
    info: Mapping[str, Any] = response.modelinfo or {}
    _check_finite(info)
    declared = info.get("general.architecture")
    arch = declared if isinstance(declared, str) else ""
    family, parameter_size, quantization, _ = _details(response.details)
    return OllamaModelInfo(
        name=name,
        architecture=arch or family,
        n_layers=_int(info, f"{arch}.block_count", _MAX_LAYERS),
        n_ctx_train=_int(info, f"{arch}.context_length"),
        embedding_length=_int(info, f"{arch}.embedding_length"),
        head_count=_int(info, f"{arch}.attention.head_count"),
        head_count_kv=_int(info, f"{arch}.attention.head_count_kv"),
        n_params=_int(info, "general.parameter_count"),
        family=family,
        parameter_size=parameter_size,
        quantization=quantization,
        capabilities=tuple(response.capabilities or ()),
        template=response.template or "",
    )


def progress_from(response: ProgressResponse) -> PullProgress:
    return PullProgress(
        status=response.status or "",
        completed=response.completed,
        total=response.total,
        digest=response.digest,
    )

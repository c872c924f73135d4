"""One measured row, with llama-bench's field names wherever a field means the same thing.

Tools that read llama-bench JSON (parse by key, as its README asks) read ours too; the keys we
add sit after llama-bench's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from lollma_tui.core.bench.hardware_info import HardwareInfo
from lollma_tui.core.bench.stats import Summary

BackendImpl = Literal["llama-cpp-python", "ollama", "openai"]

LLAMA_BENCH_FIELDS: tuple[str, ...] = (
    "build_commit",
    "build_number",
    "cpu_info",
    "gpu_info",
    "backends",
    "model_filename",
    "model_type",
    "model_size",
    "model_n_params",
    "n_batch",
    "n_ubatch",
    "n_threads",
    "type_k",
    "type_v",
    "n_gpu_layers",
    "flash_attn",
    "use_mmap",
    "n_prompt",
    "n_gen",
    "n_depth",
    "test_time",
    "avg_ns",
    "stddev_ns",
    "avg_ts",
    "stddev_ts",
    "samples_ns",
    "samples_ts",
)
"""In llama-bench's order (JSON flavour: CSV leaves out the two sample arrays)."""

CHAT_TEST = "chat"


def bench_test_name(n_prompt: int, n_gen: int, n_depth: int = 0) -> str:
    """``pp512``, ``tg128``, ``pp512+tg128``, with `` @ d512`` for a filled context."""
    if n_gen == 0:
        name = f"pp{n_prompt}"
    elif n_prompt == 0:
        name = f"tg{n_gen}"
    else:
        name = f"pp{n_prompt}+tg{n_gen}"
    return f"{name} @ d{n_depth}" if n_depth else name


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class BenchRecord:
    # --- llama-bench's fields ------------------------------------------------------------
    build_commit: str = ""
    build_number: int | None = None
    """llama.cpp's build number is not compiled into the Python wheel: None there."""
    cpu_info: str = ""
    gpu_info: str = ""
    backends: str = ""
    model_filename: str = ""
    model_type: str = ""
    model_size: int = 0
    model_n_params: int = 0
    n_batch: int = 2048
    n_ubatch: int = 512
    n_threads: int = 0
    type_k: str = "f16"
    type_v: str = "f16"
    n_gpu_layers: int = 0
    flash_attn: bool = False
    use_mmap: bool = True
    n_prompt: int = 0
    n_gen: int = 0
    n_depth: int = 0
    test_time: str = ""
    avg_ns: int = 0
    stddev_ns: int = 0
    avg_ts: float = 0.0
    stddev_ts: float = 0.0
    samples_ns: tuple[int, ...] = ()
    samples_ts: tuple[float, ...] = ()
    # --- ours ------------------------------------------------------------------------------
    test: str = ""
    backend_impl: BackendImpl = "llama-cpp-python"
    llama_cpp_python_version: str | None = None
    ollama_version: str | None = None
    model_name: str = ""
    quant: str = ""
    n_layers: int | None = None
    n_gpu_layers_requested: str = ""
    """As asked: "auto", "all" or a number; `n_gpu_layers` is what was used."""
    gpu_offload: bool = False
    """The llama.cpp build can offload to a GPU (False: every layer ran on the CPU)."""
    repack: bool | None = None
    """llama.cpp's repacked weight buffers were on (llama-bench has no field for it; None: Ollama)."""
    repetitions: int = 0
    avg_ttft_ns: int | None = None
    stddev_ttft_ns: int | None = None
    samples_ttft_ns: tuple[int, ...] = ()
    prompt_ts: float | None = None
    """Chat rows: prompt tokens/s as the chat pane shows it."""
    question: str | None = None
    chat_tokens: int | None = None
    """Chat rows: the reply length asked for (`n_gen` is the mean of what came)."""
    peak_rss_bytes: int | None = None
    peak_vram_bytes: int | None = None
    peak_ram_used_bytes: int | None = None
    peak_gpu_memory_used_bytes: int | None = None
    hardware: HardwareInfo | None = None
    fingerprint: str = ""
    run_id: str = ""
    server: str = ""
    """The address of the Ollama or OpenAI-compatible server a row was measured on; empty for
    llama.cpp in process. Rows of two servers measure two set-ups, whatever the model's name."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_chat(self) -> bool:
        return self.test == CHAT_TEST

    @property
    def kind(self) -> Literal["pp", "tg", "pp+tg", "chat"]:
        if self.is_chat:
            return "chat"
        if self.n_gen == 0:
            return "pp"
        if self.n_prompt == 0:
            return "tg"
        return "pp+tg"

    def with_summary(self, summary: Summary) -> BenchRecord:
        return replace(
            self,
            avg_ns=summary.avg_ns,
            stddev_ns=summary.stddev_ns,
            avg_ts=summary.avg_ts,
            stddev_ts=summary.stddev_ts,
            samples_ns=summary.samples_ns,
            samples_ts=summary.samples_ts,
            repetitions=len(summary.samples_ns),
        )

    def config_key(self) -> tuple[Any, ...]:
        """What must match for two rows to measure the same thing (the file may have moved)."""
        filename = self.model_filename.replace("\\", "/").rsplit("/", 1)[-1]
        return (
            self.backend_impl,
            filename,
            self.model_size,
            self.quant,
            self.n_gpu_layers,
            self.n_threads,
            self.n_batch,
            self.n_ubatch,
            self.type_k,
            self.type_v,
            self.flash_attn,
            self.repack,
            self.test,
            self.n_prompt if not self.is_chat else None,
            # A chat row's own length varies (a reply may end early): the length asked is the
            # set-up. Replies of 2 and of 64 tokens were compared, and "-41.7 %" shown.
            self.n_gen if not self.is_chat else self.chat_tokens,
            self.n_depth,
            self.question,
            self.server,
        )

    def to_dict(self) -> dict[str, Any]:
        """llama-bench's keys first, in its order, then ours."""
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "hardware":
                value = value.to_dict() if value is not None else None
            elif isinstance(value, tuple):
                value = list(value)
            data[f.name] = value
        ordered = {key: data[key] for key in LLAMA_BENCH_FIELDS}
        ordered.update((key, value) for key, value in data.items() if key not in ordered)
        return ordered

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchRecord:
        """Tolerant of unknown and missing keys (older files, llama-bench's own JSON)."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                continue
            if key == "hardware":
                values[key] = HardwareInfo.from_dict(value) if isinstance(value, Mapping) else None
            elif isinstance(value, list):
                values[key] = tuple(value)
            else:
                values[key] = value
        return cls(**values)

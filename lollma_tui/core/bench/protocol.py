"""The line protocol between a benchmark run and its bench worker process.

Same framing as the chat worker (`llamacpp_protocol.encode`/`decode`: one JSON object per
line). The worker says hello, takes one ``bench`` request, streams one event per timed run, and
exits: every configuration gets a fresh process, so one run's memory never colours the next.
Kept free of llama_cpp so both sides can import it cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lollma_tui.core.workers.wire import EV_ERROR, EV_HELLO, OP_SHUTDOWN, decode, encode

__all__ = [
    "EV_DONE",
    "EV_ERROR",
    "EV_HELLO",
    "EV_LOADED",
    "EV_SAMPLE",
    "EV_TEST_DONE",
    "OP_BENCH",
    "OP_SHUTDOWN",
    "BenchRequest",
    "BenchTest",
    "decode",
    "encode",
]

OP_BENCH = "bench"

EV_LOADED = "loaded"
EV_SAMPLE = "sample"
EV_TEST_DONE = "test_done"
EV_DONE = "done"


@dataclass(frozen=True, slots=True)
class BenchTest:
    n_prompt: int = 0
    n_gen: int = 0
    n_depth: int = 0

    @property
    def context(self) -> int:
        return self.n_prompt + self.n_gen + self.n_depth


@dataclass(frozen=True, slots=True)
class BenchRequest:
    model: str
    n_gpu_layers: int
    n_threads: int
    tests: tuple[BenchTest, ...]
    repetitions: int = 5
    n_batch: int = 2048
    n_ubatch: int = 512
    flash_attn: bool = False
    type_k: str = "f16"
    type_v: str = "f16"
    use_mmap: bool = True
    repack: bool = True
    """llama.cpp's repacked weight buffers (off = its --no-repack)."""
    warmup: bool = True
    seed: int = 1

    @property
    def n_ctx(self) -> int:
        """Sized for the largest test, as llama-bench sizes each context to its test."""
        return max((t.context for t in self.tests), default=1)

    def to_wire(self) -> dict[str, Any]:
        wire = asdict(self)
        wire["op"] = OP_BENCH
        wire["tests"] = [asdict(t) for t in self.tests]
        return wire

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> BenchRequest:
        values = {k: v for k, v in wire.items() if k != "op"}
        values["tests"] = tuple(BenchTest(**t) for t in values.get("tests") or ())
        return cls(**values)

"""Shared helpers for the store tests: fake clocks, sample stats, raw reads that bypass the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lollma_tui.core.backends.base import ReplyStats, RunSetup, StatsSource
from lollma_tui.core.settings import BackendKind, SamplingSettings


class FakeClock:
    """A clock that moves only when told to (`step` > 0: also on every read, for distinct stamps)."""

    def __init__(self, start: float, step: float = 0.0) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sample_stats(**changes: object) -> ReplyStats:
    # Every field differs from its default so a dropped field cannot round-trip by accident.
    setup = RunSetup(
        backend=BackendKind.OLLAMA,
        model="gemma-3-270m",
        quant="Q4_K_M",
        n_gpu_layers=12,
        n_layers=18,
        n_ctx=8192,
        n_threads=6,
        n_batch=256,
        flash_attn=True,
        kv_cache_type="q8_0",
        repack=False,
        source="/models/gemma-3-270m-Q4_K_M.gguf",
        gpu_share=0.625,
        server="http://gpu-box:11434",
        server_kind="Ollama 0.33.0",
    )
    values: dict[str, object] = {
        "setup": setup,
        "ttft_s": 0.187,
        "prompt_tokens": 42,
        "prompt_tokens_evaluated": 30,
        "prompt_tps": 812.25,
        "gen_tokens": 128,
        "gen_tps": 77.125,
        "total_s": 1.84,
        "load_s": 2.5,
        "source": StatsSource.SERVER_TIMINGS,
    }
    values.update(changes)
    return ReplyStats(**values)  # type: ignore[arg-type]


def sample_sampling() -> SamplingSettings:
    return SamplingSettings(
        temperature=0.3,
        top_p=0.5,
        top_k=7,
        min_p=0.01,
        repeat_penalty=1.25,
        seed=1234,
        max_tokens=99,
        stop=("</s>", "\nUser:"),
    )


def raw_rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Read the file with a separate plain connection, to see what is really on disk."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def dump(path: Path) -> str:
    """The whole database as SQL text, to compare before/after."""
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()

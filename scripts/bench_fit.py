"""Predicted RAM (the fit estimator) against the llama.cpp worker's measured RSS.

    uv run python scripts/bench_fit.py [--demo-ctx 512 2048 8192 32768] [--tiny-ctx 512 2048 4096]

For the demo model (Gemma 3 270M Q4_K_M) and a tiny generated llama, at several contexts, the
worker is loaded on the CPU and its RSS read with psutil right after the load and after one short
reply. The prediction for each row is `estimate_memory` with the tokens the worker has actually
evaluated by then (its load warm-up, then the reply's prompt and output), which is how the
estimator is meant to be compared with a live process. The "fit" column is the worst-case figure
a swap checks free RAM against (a full n_ubatch chunk at full context). Goal: within 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from gguf_factory import write_tiny_gguf  # noqa: E402

from lollma_tui.core.backends.base import ChatMessage, ReplyDone  # noqa: E402
from lollma_tui.core.backends.llamacpp import LlamaCppBackend  # noqa: E402
from lollma_tui.core.models.demo import ensure_demo_model  # noqa: E402
from lollma_tui.core.models.fit import (  # noqa: E402
    DEFAULT_PROCESS_OVERHEAD,
    FitParams,
    estimate_memory,
)
from lollma_tui.core.models.gguf_header import GGUFHeader, read_gguf_header  # noqa: E402
from lollma_tui.core.settings import LoadSettings, SamplingSettings  # noqa: E402

MiB = 1 << 20
WARM_UP_TOKENS = 2
"""The worker evaluates two tokens (then one) at load time so the first reply is timed fairly."""
PROMPT = "Explain in one sentence what a key-value cache does in a language model."
SAMPLING = SamplingSettings(temperature=0.0, seed=1, max_tokens=32)


@dataclass(frozen=True)
class Row:
    model: str
    n_ctx: int
    phase: str
    measured: int
    predicted: int
    worst_case: int

    @property
    def error(self) -> float:
        return (self.predicted - self.measured) / self.measured


def worker_baseline(log: Path) -> int:
    """RSS of a worker that has started (llama_cpp imported) but loaded nothing."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lollma_tui.core.backends.llamacpp_worker", "--log", str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()  # the hello line: imports are done
        return int(psutil.Process(process.pid).memory_info().rss)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


async def measure(model: Path, header: GGUFHeader, n_ctx: int, log: Path) -> list[Row]:
    backend = LlamaCppBackend(log_path=log)
    try:
        loaded = await backend.load(LoadSettings(model=str(model), n_ctx=n_ctx, n_gpu_layers=0))
        (pid,) = backend.process_ids()
        worker = psutil.Process(pid)
        params = FitParams.from_settings(loaded.settings)
        worst = estimate_memory(header, params).ram_total
        after_load = worker.memory_info().rss
        predicted_load = estimate_memory(
            header, params, context_tokens=WARM_UP_TOKENS, prompt_tokens=WARM_UP_TOKENS
        ).ram_total

        done: ReplyDone | None = None
        async for event in backend.stream_chat([ChatMessage("user", PROMPT)], SAMPLING):
            if isinstance(event, ReplyDone):
                done = event
        assert done is not None
        after_reply = worker.memory_info().rss
        prompt = done.stats.prompt_tokens or 0
        held = prompt + done.stats.gen_tokens
        predicted_reply = estimate_memory(
            header, params, context_tokens=held, prompt_tokens=max(prompt, WARM_UP_TOKENS)
        ).ram_total
    finally:
        await backend.close()
    name = model.name
    return [
        Row(name, n_ctx, "loaded", after_load, predicted_load, worst),
        Row(
            name, n_ctx, f"reply ({prompt}+{done.stats.gen_tokens} tok)", after_reply, predicted_reply, worst
        ),
    ]


def swa_note(header: GGUFHeader, contexts: list[int]) -> list[str]:
    lines = []
    for n_ctx in contexts:
        full = estimate_memory(header, FitParams(n_ctx=n_ctx, swa_full=True)).kv_total
        windowed = estimate_memory(header, FitParams(n_ctx=n_ctx, swa_full=False)).kv_total
        if full != windowed:
            lines.append(
                f"  ctx {n_ctx:>6}: KV {full / MiB:7.1f} MiB with swa_full (llama.cpp's default, "
                f"what the worker gets), {windowed / MiB:6.1f} MiB without"
            )
    return lines


def print_table(rows: list[Row]) -> None:
    head = (
        f"{'model':<28} {'ctx':>6}  {'phase':<22} {'RSS MiB':>8} {'pred MiB':>8} {'error':>7} {'fit MiB':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.model:<28} {r.n_ctx:>6}  {r.phase:<22} {r.measured / MiB:8.1f} {r.predicted / MiB:8.1f} "
            f"{r.error * 100:+6.1f}% {r.worst_case / MiB:8.1f}"
        )
    errors = [abs(r.error) for r in rows]
    worst = max(rows, key=lambda r: abs(r.error))
    print(
        f"\nworst |error| {max(errors) * 100:.1f}% ({worst.model} ctx {worst.n_ctx}, {worst.phase}); "
        f"median |error| {statistics.median(errors) * 100:.1f}%; "
        f"within 10%: {sum(e <= 0.10 for e in errors)}/{len(errors)}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--demo-ctx", type=int, nargs="*", default=[512, 2048, 8192, 32768])
    parser.add_argument("--tiny-ctx", type=int, nargs="*", default=[512, 2048, 4096])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-fit-") as folder:
        tmp = Path(folder)
        log = tmp / "llama.log"
        baseline = worker_baseline(log)
        print(
            f"worker RSS before any load: {baseline / MiB:.1f} MiB "
            f"(the estimator assumes {DEFAULT_PROCESS_OVERHEAD / MiB:.0f} MiB)\n"
        )
        models: list[tuple[Path, list[int]]] = []
        if args.demo_ctx:
            models.append((ensure_demo_model(), args.demo_ctx))
        if args.tiny_ctx:
            models.append((write_tiny_gguf(tmp / "tiny-llama-f16.gguf"), args.tiny_ctx))
        rows: list[Row] = []
        notes: list[str] = []
        for model, contexts in models:
            header = read_gguf_header(model)
            for n_ctx in contexts:
                rows += await measure(model, header, n_ctx, log)
            notes += swa_note(header, contexts)
        print_table(rows)
        if notes:
            print("\nsliding-window layers (Gemma 3):")
            print("\n".join(notes))


if __name__ == "__main__":
    asyncio.run(main())

"""Generation speed through the app's backend (worker process + pipe) vs llama-cpp-python in-process.

Same model, settings, prompt and greedy sampling, alternated run by run in one process:

    uv run python scripts/perf/ipc.py [--model PATH] [--runs 5] [--tokens 128] [--quick]

Both sides are timed the same way, at the consumer: from the first piece of text to the last,
over the tokens llama.cpp generated. The goal is a ratio (worker / direct) of at least 0.97.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _prompts import QUESTIONS
from _support import QUICK_HELP, in_process_repack, repack_setting, tiny_model

from lollma_tui.core.backends.base import ChatMessage, ReplyDone, TextDelta
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.backends.llamacpp_worker import default_threads
from lollma_tui.core.backends.repack import set_repack
from lollma_tui.core.models.demo import ensure_demo_model
from lollma_tui.core.settings import LoadSettings, SamplingSettings


def direct_engine(model: Path, n_ctx: int, threads: int, repack: bool) -> Any:
    import llama_cpp

    set_repack(llama_cpp, repack)
    # Keep llama.cpp's load log off this terminal, as the worker does.
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        llm = llama_cpp.Llama(
            str(model),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=max(threads, os.cpu_count() or threads),
            n_batch=512,
            n_ubatch=512,
            verbose=False,
        )
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)
    if "tokenizer.chat_template" not in llm.metadata:
        llm.chat_format = "gemma" if "gemma" in llm.metadata.get("general.architecture", "") else "chatml"
    return llm


def run_direct(llm: Any, question: str, sampling: SamplingSettings) -> tuple[float, int]:
    import llama_cpp

    llm.reset()
    llm._ctx.kv_cache_clear()
    llm._ctx.reset_timings()
    first = last = 0.0
    for chunk in llm.create_chat_completion(
        [{"role": "user", "content": question}],
        stream=True,
        temperature=sampling.temperature,
        top_k=sampling.top_k,
        top_p=sampling.top_p,
        min_p=sampling.min_p,
        repeat_penalty=sampling.repeat_penalty,
        seed=sampling.seed,
        max_tokens=sampling.max_tokens,
    ):
        if chunk["choices"][0]["delta"].get("content"):
            now = time.perf_counter()
            first = first or now
            last = now
    perf = llama_cpp.llama_perf_context(llm.ctx)
    return last - first, int(perf.n_eval) + 1


async def run_worker(
    backend: LlamaCppBackend, question: str, sampling: SamplingSettings
) -> tuple[float, int]:
    first = last = 0.0
    tokens = 0
    async for event in backend.stream_chat([ChatMessage("user", question)], sampling):
        if isinstance(event, TextDelta) and event.text:
            now = time.perf_counter()
            first = first or now
            last = now
        elif isinstance(event, ReplyDone):
            tokens = event.stats.gen_tokens
    return last - first, tokens


async def stop_latency(backend: LlamaCppBackend, question: str) -> float:
    """Seconds from asking the worker to stop (after 20 pieces) to the reply's end."""
    sampling = SamplingSettings(temperature=0.7, repeat_penalty=1.3, max_tokens=1000)
    pieces = 0
    asked = 0.0
    async for event in backend.stream_chat([ChatMessage("user", question)], sampling):
        if isinstance(event, TextDelta):
            pieces += 1
            if pieces == 20:
                asked = time.perf_counter()
                asyncio.get_running_loop().create_task(backend.cancel())
        elif isinstance(event, ReplyDone):
            return time.perf_counter() - asked if asked else float("nan")
    return float("nan")


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="GGUF file (default: the demo model)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP + ": one run on the tiny model")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.tokens, args.ctx = 1, 16, 512
    scratch = Path(tempfile.mkdtemp())
    model = args.model or (tiny_model(scratch) if args.quick else ensure_demo_model())
    threads = default_threads()
    sampling = SamplingSettings(
        temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, seed=1, max_tokens=args.tokens
    )
    repack = in_process_repack(model)
    backend = LlamaCppBackend(log_path=scratch / "bench.log")
    await backend.load(
        LoadSettings(
            model=str(model), n_ctx=args.ctx, n_threads=threads, n_batch=512, repack=repack_setting(repack)
        )
    )
    llm = direct_engine(model, args.ctx, threads, repack)
    # One untimed warm-up each, so both sides start with warm caches.
    await run_worker(backend, "hello", sampling)
    run_direct(llm, "hello", sampling)

    worker_rates: list[float] = []
    direct_rates: list[float] = []
    print(
        f"model {model.name} · {threads} threads · ctx {args.ctx} · greedy · {args.tokens} tokens"
        f" · repacked weights {repack_setting(repack)} on both sides"
    )
    print(f"{'run':>3}  {'worker tok/s':>12}  {'direct tok/s':>12}  {'tokens w/d':>10}")
    for run in range(args.runs):
        question = QUESTIONS[run % len(QUESTIONS)]
        order = ("worker", "direct") if run % 2 == 0 else ("direct", "worker")
        figures: dict[str, tuple[float, int]] = {}
        for side in order:
            if side == "worker":
                figures[side] = await run_worker(backend, question, sampling)
            else:
                figures[side] = run_direct(llm, question, sampling)
        (w_s, w_n), (d_s, d_n) = figures["worker"], figures["direct"]
        worker_rates.append((w_n - 1) / w_s)
        direct_rates.append((d_n - 1) / d_s)
        print(f"{run + 1:>3}  {worker_rates[-1]:>12.1f}  {direct_rates[-1]:>12.1f}  {w_n:>4}/{d_n:<5}")
    stops = [await stop_latency(backend, QUESTIONS[i % len(QUESTIONS)]) for i in range(args.runs)]
    await backend.close()
    print(
        "stop latency once tokens flow (Esc → reply ended), "
        + ", ".join(f"{s * 1000:.0f}" for s in stops)
        + f" ms; median {statistics.median(stops) * 1000:.0f} ms (goal ≤ 100 ms)"
    )
    worker = statistics.median(worker_rates)
    direct = statistics.median(direct_rates)
    print(
        f"median: worker {worker:.1f} tok/s, direct {direct:.1f} tok/s, "
        f"ratio {worker / direct:.3f} (goal ≥ 0.97)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

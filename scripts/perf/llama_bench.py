"""`lollma-tui bench`'s pp/tg figures against the same measurement made directly with
llama-cpp-python's low-level calls, alternated in one run; then the generation rate against
this machine's memory-bandwidth bound.

    uv run python scripts/perf/llama_bench.py [--model PATH] [--rounds 6] [--reps 5] [--quick]

Ours: a `BenchSession` (what `lollma-tui bench -p 512 -n 128 --ngl 0` runs), one fresh bench
worker process per round. Direct: a fresh process per round too (this script, run as a child),
`llama_batch_get_one` + `llama_decode` + `llama_synchronize` on random tokens, with no `Llama`
wrapper and none of our code, sized and threaded the same way (n_ctx = the largest test,
n_batch = min(2048, n_ctx) as `Llama` clamps it, n_ubatch 512, flash attention off). Both
follow llama-bench: a cleared cache per repetition, one untimed warm-up per test. The goal is
that the two agree within 5 % (medians of every repetition of every round).

The bandwidth bound: decoding one token reads every weight once, so tokens/s cannot exceed
(memory bandwidth) / (weight bytes). Bandwidth is measured here with a large numpy copy
(read + write bytes over time), so the bound is this machine's, not a datasheet's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _support import QUICK_HELP, in_process_repack, repack_setting, tiny_model

from lollma_tui.core.bench.protocol import BenchTest
from lollma_tui.core.bench.session import BenchSession, plan_sweep
from lollma_tui.core.bench.sweep import SweepSpec
from lollma_tui.core.models.demo import ensure_demo_model


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """llama.cpp logs loads and frees on fd 2; keep them off this terminal."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


class DirectBench:
    """llama-bench's pp and tg loops written against llama-cpp-python's C bindings."""

    def __init__(
        self, model: Path, n_ctx: int, threads: int, n_batch: int, n_ubatch: int, repack: bool
    ) -> None:
        import llama_cpp

        self.lib = llama_cpp
        llama_cpp.llama_backend_init()
        with quiet_stderr():
            mparams = llama_cpp.llama_model_default_params()
            mparams.n_gpu_layers = 0
            mparams.use_extra_bufts = repack  # llama.cpp's --no-repack when off
            self.model = llama_cpp.llama_model_load_from_file(str(model).encode(), mparams)
            cparams = llama_cpp.llama_context_default_params()
            cparams.n_ctx = n_ctx
            cparams.n_batch = n_batch
            cparams.n_ubatch = n_ubatch
            cparams.n_threads = threads
            cparams.n_threads_batch = threads
            # As `Llama(...)` sets it for our worker: off unless asked (llama.cpp's own default
            # is "auto", which turns it on for this model on the CPU).
            cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.model or not self.ctx:
            raise RuntimeError(f"llama.cpp could not load {model}")
        vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        self.bos = int(llama_cpp.llama_vocab_bos(vocab))
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab)) and self.bos >= 0
        self.n_batch = n_batch
        self.weight_bytes = int(llama_cpp.llama_model_size(self.model))
        self.rng = random.Random(1)

    def _decode(self, tokens: list[int]) -> None:
        array = (self.lib.llama_token * len(tokens))(*tokens)
        batch = self.lib.llama_batch_get_one(array, len(tokens))
        if self.lib.llama_decode(self.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def _clear(self) -> None:
        self.lib.llama_memory_clear(self.lib.llama_get_memory(self.ctx), True)

    def _first(self) -> int:
        return self.bos if self.add_bos else self.rng.randrange(self.n_vocab)

    def prompt(self, n: int) -> None:
        tokens = [self._first()] + [self.rng.randrange(self.n_vocab) for _ in range(n - 1)]
        for start in range(0, n, self.n_batch):
            self._decode(tokens[start : start + self.n_batch])
        self.lib.llama_synchronize(self.ctx)

    def generate(self, n: int) -> None:
        token = self._first()
        for _ in range(n):
            self._decode([token])
            self.lib.llama_synchronize(self.ctx)
            token = self.rng.randrange(self.n_vocab)

    def rates(self, test: BenchTest, reps: int) -> list[float]:
        """Tokens/s of each repetition, after one untimed warm-up (as llama-bench)."""
        self._clear()
        if test.n_prompt:
            self.prompt(test.n_prompt)
        else:
            self.generate(1)
        rates = []
        for _ in range(reps):
            self._clear()
            started = time.perf_counter_ns()
            if test.n_prompt:
                self.prompt(test.n_prompt)
            if test.n_gen:
                self.generate(test.n_gen)
            elapsed = time.perf_counter_ns() - started
            rates.append((test.n_prompt + test.n_gen) * 1e9 / elapsed)
        return rates

    def close(self) -> None:
        with quiet_stderr():
            self.lib.llama_free(self.ctx)
            self.lib.llama_model_free(self.model)


async def ours(
    model: Path, threads: int, n_prompt: int, n_gen: int, reps: int, repack: bool
) -> dict[str, list[float]]:
    spec = SweepSpec(
        repack=(repack_setting(repack),),
        models=(str(model),),
        gpu_layers=(0,),
        threads=(threads,),
        n_prompt=(n_prompt,),
        n_gen=(n_gen,),
        repetitions=reps,
        chat=False,
    )
    plan = await plan_sweep(spec)
    log = Path(tempfile.mkdtemp()) / "bench.log"
    run = await BenchSession(plan, log_path=log).run()
    if run.failures:
        raise RuntimeError("; ".join(f"{f.label}: {f.reason}" for f in run.failures))
    return {record.test: list(record.samples_ts) for record in run.records}


def direct_in_child(
    model: Path, threads: int, n_prompt: int, n_gen: int, reps: int, repack: bool
) -> dict[str, Any]:
    """The direct side in a fresh process, as the bench worker is: neither side gains from a
    process that has run the model before (its heap, its mappings, its threads)."""
    command = [
        sys.executable,
        __file__,
        "--direct-child",
        "--model",
        str(model),
        "-t",
        str(threads),
        "-p",
        str(n_prompt),
        "-n",
        str(n_gen),
        "--reps",
        str(reps),
        "--repack",
        repack_setting(repack),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_direct_child(model: Path, threads: int, tests: dict[str, BenchTest], reps: int, repack: bool) -> None:
    n_ctx = max(t.context for t in tests.values())
    direct = DirectBench(model, n_ctx, threads, n_batch=min(2048, n_ctx), n_ubatch=512, repack=repack)
    rates = {name: direct.rates(test, reps) for name, test in tests.items()}
    weight_bytes = direct.weight_bytes
    direct.close()
    print(json.dumps({"rates": rates, "weight_bytes": weight_bytes}))


def memory_bandwidth(mib: int = 512, reps: int = 5) -> float:
    """Bytes/s of a large copy (each byte read once and written once), best of `reps`."""
    import numpy as np

    src = np.ones(mib * 1024 * 1024 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - started)
    return 2 * src.nbytes / best


def describe(rates: list[float]) -> str:
    spread = statistics.stdev(rates) if len(rates) > 1 else 0.0
    return f"{statistics.mean(rates):8.1f} ± {spread:5.1f}"


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="GGUF file (default: the demo model)")
    parser.add_argument("--rounds", type=int, default=6, help="alternated rounds of both sides")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per test and round")
    parser.add_argument("-p", "--n-prompt", type=int, default=512)
    parser.add_argument("-n", "--n-gen", type=int, default=128)
    parser.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--direct-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repack", choices=("on", "off"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick", action="store_true", help=QUICK_HELP + ": one round of pp32/tg8 on the tiny model"
    )
    args = parser.parse_args()
    copy_mib = 512
    if args.quick:
        args.rounds, args.reps, args.n_prompt, args.n_gen, copy_mib = 1, 1, 32, 8, 64
        args.model = args.model or tiny_model(Path(tempfile.mkdtemp()))
    model = args.model or ensure_demo_model()
    tests = {
        f"pp{args.n_prompt}": BenchTest(n_prompt=args.n_prompt),
        f"tg{args.n_gen}": BenchTest(n_gen=args.n_gen),
    }
    if args.direct_child:
        run_direct_child(model, args.threads, tests, args.reps, args.repack == "on")
        return 0
    repack = in_process_repack(model)
    n_ctx = max(t.context for t in tests.values())
    weight_bytes = 0
    print(
        f"model {model.name} · {model.stat().st_size / 2**20:.1f} MiB file · "
        f"{args.threads} threads · n_ctx {n_ctx} · {args.rounds} rounds × {args.reps} reps · "
        f"repacked weights {repack_setting(repack)} on both sides"
    )
    samples: dict[str, dict[str, list[float]]] = {name: {"ours": [], "direct": []} for name in tests}
    print(f"{'round':>5}  {'test':<6} {'ours t/s':>17}  {'direct t/s':>17}  {'ratio':>6}")
    for round_ in range(args.rounds):
        order = ("ours", "direct") if round_ % 2 == 0 else ("direct", "ours")
        figures: dict[str, dict[str, list[float]]] = {}
        for side in order:
            if side == "ours":
                figures[side] = await ours(model, args.threads, args.n_prompt, args.n_gen, args.reps, repack)
            else:
                child = direct_in_child(model, args.threads, args.n_prompt, args.n_gen, args.reps, repack)
                figures[side] = child["rates"]
                weight_bytes = int(child["weight_bytes"])
        for name in tests:
            ours_rates, direct_rates = figures["ours"][name], figures["direct"][name]
            samples[name]["ours"] += ours_rates
            samples[name]["direct"] += direct_rates
            ratio = statistics.mean(ours_rates) / statistics.mean(direct_rates)
            print(
                f"{round_ + 1:>5}  {name:<6} {describe(ours_rates)}  {describe(direct_rates)}  {ratio:6.3f}"
            )

    print("all rounds (mean ± sd as llama-bench prints them; the ratio compares medians, which this")
    print("noisy 2-core machine's outliers move less):")
    worst = 0.0
    for name in tests:
        o, d = samples[name]["ours"], samples[name]["direct"]
        ratio = statistics.median(o) / statistics.median(d)
        worst = max(worst, abs(ratio - 1))
        print(
            f"  {name:<6} ours {describe(o)} (median {statistics.median(o):6.1f})  "
            f"direct {describe(d)} (median {statistics.median(d):6.1f})  ratio {ratio:.3f}"
        )
    verdict = "met" if worst <= 0.05 else "MISSED"
    print(f"largest disagreement {worst * 100:.1f} % (goal ≤ 5 %): {verdict}")

    bandwidth = memory_bandwidth(copy_mib)
    bound = bandwidth / weight_bytes
    tg = statistics.median(samples[f"tg{args.n_gen}"]["ours"])
    print(
        f"memory bandwidth (numpy copy, best of 5): {bandwidth / 1e9:.1f} GB/s → "
        f"bound {bound:.1f} tok/s for {weight_bytes / 2**20:.1f} MiB of weights per token; "
        f"tg{args.n_gen} {tg:.1f} tok/s = {tg / bound * 100:.0f} % of the bound"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

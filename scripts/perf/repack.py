"""What llama.cpp's repacked weights buy on this CPU, and what a repack crash costs a first reply.

    uv run python scripts/perf/repack.py [--model PATH] [-r 5] [--runs 3] [--quick]

1. pp512 / tg128 with repacking on and off, measured as `lollma-tui bench --repack on,off` does
   (llama-bench's method, a fresh worker per configuration), with the on/off ratio. On a CPU
   where repacking crashes, the "on" row fails and says so.
2. Launch → first reply token through the app's llama.cpp backend in three set-ups, alternated
   round by round: repacking works (no crash); a crash while loading and the fallback (the
   worker's test-only fault seam makes it crash as llama.cpp's AMX path does); and the
   fallback remembered from an earlier crash (straight to repacking off).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lollma_tui.core.backends import repack
from lollma_tui.core.backends.base import ChatMessage, TextDelta
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.models.demo import ensure_demo_model
from lollma_tui.core.settings import LoadSettings, SamplingSettings

GREEDY = SamplingSettings(temperature=0.0, seed=1, max_tokens=4)


def bench_rows(model: Path, prompt: int, gen: int, reps: int, env: dict[str, str]) -> list[dict[str, object]]:
    command = [
        sys.executable, "-m", "lollma_tui", "bench", "-m", str(model), "--repack", "on,off",
        "-p", str(prompt), "-n", str(gen), "-r", str(reps), "--no-chat", "--no-save", "-o", "json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600, check=False)
    if done.stderr.strip():
        print(done.stderr.strip(), file=sys.stderr)
    return json.loads(done.stdout) if done.stdout.strip() else []


async def first_token_s(model: Path, log: Path, memory: repack.RepackMemory) -> tuple[float, bool]:
    """Seconds from a new backend (a fresh worker, as at launch) to the first token of a reply."""
    started = time.perf_counter()
    backend = LlamaCppBackend(log_path=log, repack_memory=memory, keep_spare=False)
    try:
        loaded = await backend.load(LoadSettings(model=str(model), n_ctx=1024))
        async for event in backend.stream_chat([ChatMessage("user", "Say hello.")], GREEDY):
            if isinstance(event, TextDelta):
                break
        return time.perf_counter() - started, bool(loaded.repack)
    finally:
        await backend.close()


async def launch_rounds(model: Path, runs: int, folder: Path) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"repack works": [], "crash + fallback": [], "remembered fallback": []}
    for round_no in range(runs):
        memory = repack.RepackMemory(folder / f"memory-{round_no}.json")
        log = folder / f"llama-{round_no}.log"
        os.environ.pop(repack.FAULT_ENV, None)
        seconds, used = await first_token_s(model, log, repack.RepackMemory(folder / "never-crashed.json"))
        results["repack works"].append(seconds)
        os.environ[repack.FAULT_ENV] = "load"
        seconds, used = await first_token_s(model, log, memory)
        assert not used, "the fault seam should have forced the fallback"
        results["crash + fallback"].append(seconds)
        seconds, used = await first_token_s(model, log, memory)
        assert not used and log.read_text(errors="replace").count("fault injection") == 1
        results["remembered fallback"].append(seconds)
        os.environ.pop(repack.FAULT_ENV, None)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="GGUF file (default: the demo model)")
    parser.add_argument("-r", "--repetitions", type=int, default=5, help="bench repetitions per test")
    parser.add_argument("--runs", type=int, default=3, help="launch rounds per set-up")
    parser.add_argument("--quick", action="store_true", help="tiny inputs, seconds: checks the script works")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lollma-repack-") as tmp:
        folder = Path(tmp)
        env = dict(os.environ, LOLLMA_DATA_DIR=str(folder / "data"), LOLLMA_STATE_DIR=str(folder / "state"))
        env.pop(repack.FAULT_ENV, None)
        model = args.model or ensure_demo_model()
        prompt, gen, reps, runs = (512, 128, args.repetitions, args.runs)
        if args.quick:
            prompt, gen, reps, runs = (32, 8, 1, 1)
        print(f"model: {model.name}   cpu: {repack.cpu_identity()}")
        print(f"\n1. llama-bench method, pp{prompt} / tg{gen}, {reps} repetitions, repacking on vs off")
        rows = bench_rows(model, prompt, gen, reps, env)
        speeds = {(str(r["test"]), bool(r["repack"])): float(str(r["avg_ts"])) for r in rows}
        for test in (f"pp{prompt}", f"tg{gen}"):
            on, off = speeds.get((test, True)), speeds.get((test, False))
            ratio = f"{on / off:.2f}×" if on and off else "—"
            on_text = f"{on:8.1f}" if on else "  failed"
            off_text = f"{off:8.1f}" if off else "  failed"
            print(f"  {test:>6}  on {on_text} t/s   off {off_text} t/s   on/off {ratio}")

        print(f"\n2. launch → first reply token, median of {runs} alternated rounds")
        results = asyncio.run(launch_rounds(model, runs, folder))
        base = statistics.median(results["repack works"])
        for name, values in results.items():
            median = statistics.median(values)
            print(f"  {name:<20} {median:6.2f} s   ({median / base:.2f}× the no-crash launch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

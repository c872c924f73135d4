"""The openai backend and remote hardware: speed seen vs the server's own, ssh delay, monitor CPU.

    uv run python scripts/perf/openai_rate.py [--quick] [--runs 5] [--tokens 400] [--rate 200]
                                            [--snapshots 20] [--cpu-window 10]

1. Tokens/s. The OpenAI protocol test server from ``tests/support/openai_server`` speaks
   llama-server's dialect in a background thread of this process and paces its tokens at --rate
   (token k, from 0, at start + (k + 1) / rate); its last chunk carries llama-server `timings`
   measured on its own clock. Each run streams --tokens tokens through `OpenAIBackend` (the
   official `AsyncOpenAI` client) and measures at the consumer of `stream_chat`, first to last
   `TextDelta`, (n - 1) / elapsed. Ratio = seen / server (`predicted_per_second`). Goal ≥ 0.98.
2. Delay from sample to arrival over ssh on loopback: a real sshd on 127.0.0.1 (as in the tests)
   runs this checkout's ``lollma-tui monitor --jsonl --interval 1`` with the tests' fake NVML
   (two GPUs); the delay of a snapshot is its arrival (time.time() here) minus the moment the
   remote sampler started the tick (its wall_time): sampling, encoding and the ssh trip.
3. CPU the remote monitor costs at 1 s: user + system CPU time of the monitor process over
   --cpu-window seconds, after its first two ticks, as a share of one core. Goal < 1 %.

Timing on a shared machine is noisy: compare figures taken in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _support import QUICK_HELP, borrow_test_helpers

from lollma_tui.core.backends.base import ChatMessage, ReplyDone, TextDelta
from lollma_tui.core.backends.openai import OpenAIBackend
from lollma_tui.core.hardware.remote import LinkState, RemoteHardwareSampler
from lollma_tui.core.hardware.snapshots import SystemSnapshot
from lollma_tui.core.hardware.ssh_target import SshTarget
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings

borrow_test_helpers()

from openai_server import Flavour, OpenAITestServer  # noqa: E402
from sshd_server import ALIAS, fake_nvml_env, monitor_command, running_sshd  # noqa: E402

TPS_GOAL = 0.98
CPU_GOAL_PERCENT = 1.0


async def token_rates(runs: int, tokens: int, rate: float) -> list[tuple[float, float]]:
    """(seen by the app, the server's own) tokens/s per run."""
    results: list[tuple[float, float]] = []
    with OpenAITestServer(Flavour.LLAMA_SERVER, tokens_per_second=rate) as server:
        server.default.text = " ".join(f"w{i}" for i in range(tokens))
        backend = OpenAIBackend(server.base_url, timeout_s=120)
        try:
            await backend.load(LoadSettings(backend=BackendKind.OPENAI, model=server.models[0].id))
            for run in range(runs):
                arrivals: list[float] = []
                done: ReplyDone | None = None
                question = [ChatMessage("user", f"Run {run}: count.")]
                async for event in backend.stream_chat(question, SamplingSettings(max_tokens=tokens)):
                    if isinstance(event, TextDelta):
                        arrivals.append(time.perf_counter())
                    elif isinstance(event, ReplyDone):
                        done = event
                assert done is not None and len(arrivals) == tokens, (len(arrivals), tokens)
                seen = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
                results.append((seen, float(server.records.replies[-1]["predicted_per_second"])))
        finally:
            await backend.close()
    return results


def remote_figures(snapshots: int, cpu_window_s: float) -> tuple[list[float], float, int]:
    """(delays in s, the monitor's CPU % of one core, GPUs seen) over a real loopback ssh."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-openai-") as folder,
        running_sshd(Path(folder) / "sshd") as sshd,
    ):
        site = fake_nvml_env(Path(folder) / "site")
        delays: list[float] = []
        latest: list[SystemSnapshot] = []

        def on_snapshot(snapshot: SystemSnapshot) -> None:
            delays.append(time.time() - snapshot.wall_time)
            latest.append(snapshot)

        sampler = RemoteHardwareSampler(
            on_snapshot,
            SshTarget(ALIAS),
            interval_s=1.0,
            command=monitor_command(site, 1.0),
            ssh_options=sshd.options,
        )
        sampler.start()
        try:
            deadline = time.monotonic() + 30
            while len(delays) < 2:
                if time.monotonic() > deadline:
                    raise SystemExit(f"no snapshots over ssh: {sampler.status.message}")
                time.sleep(0.05)
            monitor = next(p for p in sshd.sessions() if "monitor" in " ".join(p.cmdline()))
            before, started = monitor.cpu_times(), time.monotonic()
            while len(delays) < snapshots + 2 or time.monotonic() - started < cpu_window_s:
                time.sleep(0.1)
                if sampler.status.state is not LinkState.LIVE:
                    raise SystemExit(f"the ssh link dropped: {sampler.status.message}")
            after, elapsed = monitor.cpu_times(), time.monotonic() - started
        finally:
            sampler.stop()
    cpu = (after.user + after.system - before.user - before.system) / elapsed * 100
    return delays[2:], cpu, len(latest[-1].gpus)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=QUICK_HELP + ": 2 runs of 100 tokens, 5 snapshots, 5 s of CPU"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=400)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--cpu-window", type=float, default=10.0)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.tokens, args.snapshots, args.cpu_window = 2, 100, 5, 5.0

    rates = asyncio.run(token_rates(args.runs, args.tokens, args.rate))
    print(f"tokens/s at {args.rate:g} tok/s served, {args.runs} runs of {args.tokens} tokens")
    print(f"{'run':>4} {'seen by the app':>16} {'server timings':>15} {'ratio':>7}")
    for i, (seen, server) in enumerate(rates, 1):
        print(f"{i:>4} {seen:>16.2f} {server:>15.2f} {seen / server:>7.4f}")
    ratio = statistics.median(seen / server for seen, server in rates)
    print(f"median ratio {ratio:.4f} (goal ≥ {TPS_GOAL})")

    delays, cpu, gpus = remote_figures(args.snapshots, args.cpu_window)
    ms = sorted(d * 1000 for d in delays)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(f"\nremote hardware over ssh on loopback: {len(ms)} snapshots, {gpus} GPUs (fake NVML)")
    print(f"sample → arrival  median {statistics.median(ms):.1f} ms · p95 {p95:.1f} ms · max {ms[-1]:.1f} ms")
    window = f"{args.cpu_window:g} s"
    print(f"monitor --jsonl at 1 s: {cpu:.2f} % of one core over {window} (goal < {CPU_GOAL_PERCENT} %)")
    met = ratio >= TPS_GOAL and cpu < CPU_GOAL_PERCENT
    print("goals met" if met else "goal missed")
    return 0 if met or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())

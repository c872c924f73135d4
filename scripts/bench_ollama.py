"""Tokens/s the app sees through `OllamaBackend` vs the rate the server streamed at.

    uv run python scripts/bench_ollama.py [--runs 5] [--tokens 400] [--rate 200] [--headroom-rate 1000]

The server is the Ollama-compatible test server from ``tests/support/ollama_server`` (this script
puts the ``tests/support`` folder on sys.path to import it). It runs in a background thread of this
process and speaks real HTTP on 127.0.0.1 to the official ``ollama.AsyncClient`` inside `OllamaBackend`; it
shares the GIL with the app, which can only make the app's side slower. Its scripted engine is
wrapped here (`PacedEngine`) so content chunks leave on a fixed, drift-free schedule (chunk k, from
0, at start + (k + 1) / rate) and so the moment each chunk was written to the HTTP response is
recorded.

Each run streams one reply of --tokens chunks (one token each, as Ollama streams) and measures,
on the same clock (time.perf_counter) and the same reply:

* server: first to last content chunk written by the server, (n - 1) / elapsed;
* app: at the consumer of `stream_chat`, first to last `TextDelta`, (n - 1) / elapsed;
* reported: `ReplyDone.stats.gen_tps`, which the backend computes from Ollama's
  eval_count / eval_duration on the final chunk (here eval_duration is the engine's measured span
  from the end of prompt processing to the last chunk written). Printed for reference only.

The ratio is app / server (consumer side over server side). Goal: ≥ 0.98 at 200 tok/s served.
A second rate (--headroom-rate, 0 to skip) is measured in the same runs, alternating the order run
by run, to show the headroom. Tokens are counted on both sides and the reply text compared with
what the server sent, so a lost or merged chunk shows (and makes the exit status 1). The lag
column is how long a chunk took from being written by the server to reaching the consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

# mypy finds the test server only with MYPYPATH=tests/support; either way this line is clean.
from bench_prompts import QUESTIONS  # noqa: E402
from ollama_server import (  # type: ignore[import-not-found, unused-ignore]  # noqa: E402
    TINYLLAMA_Q4,
    Finish,
    GenerationJob,
    OllamaTestServer,
    Piece,
    Script,
    ScriptedEngine,
)

from lollma_tui.core.backends.base import ChatMessage, ReplyDone, TextDelta  # noqa: E402
from lollma_tui.core.backends.ollama import OllamaBackend  # noqa: E402
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings  # noqa: E402

GOAL = 0.98
SENTENCE = (
    "the quick brown fox jumps over the lazy dog while a curious cat watches from the warm "
    "window sill and the river keeps flowing past the old mill ."
)
WORDS = SENTENCE.split()


@dataclass
class Trace:
    """One generation as the server streamed it."""

    rate: float
    started: float = 0.0
    """End of prompt processing: the schedule's origin."""
    written: list[float] = field(default_factory=list)
    """When each content chunk had been written to the HTTP response."""
    text: str = ""


@dataclass
class PacedEngine(ScriptedEngine):  # type: ignore[misc, unused-ignore]
    """The scripted engine, its content chunks paced at `rate` on an absolute schedule."""

    rate: float = 200.0
    traces: list[Trace] = field(default_factory=list)

    async def generate(self, job: GenerationJob) -> AsyncGenerator[Piece | Finish, None]:
        trace = Trace(self.rate)
        self.traces.append(trace)
        inner = super().generate(job)  # queued scripts have tokens_per_second=0: no pacing there
        trace.started = time.perf_counter()
        k = 0
        try:
            async for item in inner:
                if isinstance(item, Finish):
                    end = trace.written[-1] if trace.written else time.perf_counter()
                    span_ns = max(int((end - trace.started) * 1e9), 1)
                    yield dataclasses.replace(item, eval_duration_ns=span_ns)
                    return
                if item.content:
                    k += 1
                    wait = trace.started + k / trace.rate - time.perf_counter()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    yield item
                    # Resumed once the server has written the chunk and asks for the next one.
                    trace.written.append(time.perf_counter())
                    trace.text += item.content
                else:
                    yield item
        finally:
            await inner.aclose()


@dataclass
class Row:
    rate: float
    server_tps: float
    app_tps: float
    reported_tps: float | None
    server_n: int
    app_n: int
    reported_n: int
    intact: bool
    lags_s: list[float]

    @property
    def ratio(self) -> float:
        return self.app_tps / self.server_tps

    @property
    def lossless(self) -> bool:
        return self.intact and self.server_n == self.app_n == self.reported_n


def reply_pieces(n: int, offset: int) -> list[str]:
    words = [WORDS[(offset + i) % len(WORDS)] for i in range(n)]
    return [words[0].capitalize()] + [" " + w for w in words[1:]]


def per_second(times: list[float]) -> float:
    if len(times) < 2 or times[-1] <= times[0]:
        return float("nan")
    return (len(times) - 1) / (times[-1] - times[0])


async def measure(
    backend: OllamaBackend, server: OllamaTestServer, engine: PacedEngine, rate: float, n: int, run: int
) -> Row:
    pieces = reply_pieces(n, run)
    engine.rate = rate
    server.queue_reply(Script(pieces=pieces, thinking="", tokens_per_second=0.0))
    traces_before = len(engine.traces)
    sampling = SamplingSettings(max_tokens=n)
    times: list[float] = []
    texts: list[str] = []
    done: ReplyDone | None = None
    question = QUESTIONS[run % len(QUESTIONS)]
    async for event in backend.stream_chat([ChatMessage("user", question)], sampling):
        if isinstance(event, TextDelta) and event.text:
            times.append(time.perf_counter())
            texts.append(event.text)
        elif isinstance(event, ReplyDone):
            done = event
    if done is None or done.finish_reason == "cancelled":
        raise RuntimeError(f"the reply did not finish: {done}")
    (trace,) = engine.traces[traces_before:]
    app_text = "".join(texts)
    expected = "".join(pieces)
    lags = (
        [a - w for a, w in zip(times, trace.written, strict=True)] if len(times) == len(trace.written) else []
    )
    return Row(
        rate=rate,
        server_tps=per_second(trace.written),
        app_tps=per_second(times),
        reported_tps=done.stats.gen_tps,
        server_n=len(trace.written),
        app_n=len(times),
        reported_n=done.stats.gen_tokens,
        intact=app_text == trace.text == expected,
        lags_s=lags,
    )


def show(run: int, row: Row) -> None:
    reported = f"{row.reported_tps:.1f}" if row.reported_tps is not None else "—"
    tokens = f"{row.app_n}/{row.server_n}/{row.reported_n}"
    lag = (
        f"{statistics.median(row.lags_s) * 1000:.2f}/{max(row.lags_s) * 1000:.2f}"
        if row.lags_s
        else "count differs"
    )
    check = "ok" if row.lossless else "LOST"
    print(
        f"{run:>3}  {row.rate:>6.0f}  {row.server_tps:>12.1f}  {row.app_tps:>9.1f}  {reported:>14}  "
        f"{row.ratio:>6.4f}  {tokens:>15} {check:<4}  {lag:>13}"
    )


def summary(rows: list[Row]) -> tuple[float, float, float]:
    app = statistics.median(r.app_tps for r in rows)
    server = statistics.median(r.server_tps for r in rows)
    return app, server, app / server


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=400, help="content chunks per reply")
    parser.add_argument("--rate", type=float, default=200.0, help="tok/s served (the goal's rate)")
    parser.add_argument("--headroom-rate", type=float, default=1000.0, help="a second rate served, 0 to skip")
    args = parser.parse_args()
    if args.tokens < 2 or args.runs < 1 or args.rate <= 0 or args.headroom_rate < 0:
        parser.error("need --tokens ≥ 2, --runs ≥ 1, --rate > 0, --headroom-rate ≥ 0")
    rates = [args.rate] + ([args.headroom_rate] if args.headroom_rate else [])

    engine = PacedEngine()
    with OllamaTestServer(engine=engine) as server:
        backend = OllamaBackend(server.host, timeout_s=30.0)
        try:
            await backend.load(LoadSettings(backend=BackendKind.OLLAMA, model=TINYLLAMA_Q4.name))
            # One untimed reply, so connection and imports are warm for both rates.
            await measure(backend, server, engine, max(rates), min(args.tokens, 50), 0)

            rows: dict[float, list[Row]] = {rate: [] for rate in rates}
            print(
                f"{TINYLLAMA_Q4.name} on the test server (thread, 127.0.0.1) · {args.tokens} tokens "
                f"per reply · served at {' and '.join(f'{r:g}' for r in rates)} tok/s"
            )
            print(
                f"{'run':>3}  {'served':>6}  {'server tok/s':>12}  {'app tok/s':>9}  {'reported tok/s':>14}  "
                f"{'ratio':>6}  {'tokens app/srv/rep':>15}       {'lag med/max ms':>13}"
            )
            for run in range(args.runs):
                order = rates if run % 2 == 0 else rates[::-1]
                for rate in order:
                    row = await measure(backend, server, engine, rate, args.tokens, run + 1)
                    rows[rate].append(row)
                    show(run + 1, row)
        finally:
            await backend.close()

    everything = [row for group in rows.values() for row in group]
    lost = [row for row in everything if not row.lossless]
    print(
        f"tokens: {len(everything) - len(lost)}/{len(everything)} replies arrived whole "
        "(app = server = eval_count, text identical)"
        + ("" if not lost else f" — {len(lost)} LOST or merged chunks")
    )
    print("ratio = app / server, both timed first to last chunk; 'reported' is ReplyDone.stats.gen_tps")
    if args.headroom_rate:
        app, server_tps, ratio = summary(rows[args.headroom_rate])
        print(
            f"headroom, median at {args.headroom_rate:g} tok/s served: app {app:.1f} tok/s, "
            f"server {server_tps:.1f} tok/s, ratio {ratio:.4f}"
        )
    app, server_tps, ratio = summary(rows[args.rate])
    print(
        f"median at {args.rate:g} tok/s served: app {app:.1f} tok/s, server {server_tps:.1f} tok/s, "
        f"ratio {ratio:.4f} (goal ≥ {GOAL})"
    )
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

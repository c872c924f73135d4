"""Benchmark the conversation store: opening a long conversation, and the cost of saving a stream.

    uv run python scripts/perf/store.py [--messages 2000] [--tokens 200000] [--tail 50] [--quick]

Figures printed side by side:

- open: `open_store` + list the first page of conversations + load the tail window of a
  2,000-message conversation (new connection each run), with the Python memory it allocated
  (tracemalloc peak) and the process RSS growth; for comparison, loading the whole thread; then
  the same in a fresh interpreter, imports and close included, with the process's max RSS.
- write: time per `append_delta` against a loop that only concatenates the same strings (what
  the app does anyway to display the text), with the real clock; then streams paced at 100 and
  1,000 tokens/s on a simulated clock, so the once-a-second flushes are counted at their real
  frequency; and the cost of one flush.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from _prompts import WORDS, filler_text, sample_stats
from _support import QUICK_HELP

from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.opening import open_store
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.settings import SamplingSettings


def build(path: Path, messages: int, others: int) -> str:
    store = ChatStore.open(path)
    for n in range(others):
        chat = store.new_conversation()
        for i in range(10):
            store.add_message(chat.id, Message("user" if i % 2 == 0 else "assistant", filler_text(n + i, 40)))
    chat = store.new_conversation("You are a helpful assistant.")
    sampling = SamplingSettings()
    for i in range(messages // 2):
        store.add_message(chat.id, Message("user", filler_text(i, 30)))
        store.add_message(
            chat.id, Message("assistant", filler_text(i, 150), stats=sample_stats()), sampling=sampling
        )
    store.close()
    return chat.id


def _rss_kib() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() // 1024


def _open_and_show_tail(path: Path, tail: int) -> None:
    opened = open_store(path)
    page = opened.store.list_conversations(limit=50)
    window = opened.store.load(page[0].id, last=tail)
    assert len(window.conversation.messages) == min(tail, window.total)
    opened.store.close()


def measure_open(path: Path, tail: int, runs: int) -> dict[str, float]:
    times, full_times, peaks, rss = [], [], [], []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        opened = open_store(path)
        page = opened.store.list_conversations(limit=50)
        window = opened.store.load(page[0].id, last=tail)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        opened.store.load(page[0].id)
        full_times.append(time.perf_counter() - start)
        opened.store.close()
    # Memory in separate runs: tracemalloc slows Python code down and would skew the times.
    for _ in range(3):
        gc.collect()
        rss_before = _rss_kib()
        tracemalloc.start()
        _open_and_show_tail(path, tail)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        rss.append(_rss_kib() - rss_before)
    return {
        "open_ms": statistics.median(times) * 1e3,
        "open_peak_kib": statistics.median(peaks) / 1024,
        "open_rss_kib": statistics.median(rss),
        "full_ms": statistics.median(full_times) * 1e3,
        "total": window.total,
    }


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _time_loop(body: Callable[[], object]) -> float:
    start = time.perf_counter()
    body()
    return time.perf_counter() - start


def measure_write(path: Path, tokens: int) -> None:
    deltas = [WORDS[i % len(WORDS)] + " " for i in range(tokens)]
    store = ChatStore.open(path)
    chat = store.new_conversation()

    def baseline() -> None:
        text = ""
        for delta in deltas:
            text += delta

    def with_store() -> None:
        writer = store.start_reply(chat.id)
        text = ""
        for delta in deltas:
            text += delta
            writer.append_delta(delta)
        writer.finish(ReplyState.COMPLETE)

    base = min(_time_loop(baseline) for _ in range(5))
    real = min(_time_loop(with_store) for _ in range(5))
    per_token_ns = (real - base) / tokens * 1e9
    print(f"write, real clock, {tokens:,} deltas (best of 5):")
    print(f"  {'concatenation only':<28} {base / tokens * 1e9:8.0f} ns/token")
    print(f"  {'concatenation + store':<28} {real / tokens * 1e9:8.0f} ns/token")
    print(
        f"  {'store overhead':<28} {per_token_ns:8.0f} ns/token   ratio {real / base:.2f}x of the bare loop"
    )

    for rate in (100, 1000):
        fake = _FakeClock()
        paced = ChatStore.open(path, clock=fake)
        paced_chat = paced.new_conversation()
        writer = paced.start_reply(paced_chat.id)
        n = rate * 60  # one minute of streaming
        spent = 0.0
        for i in range(n):
            fake.now = i / rate
            start = time.perf_counter()
            writer.append_delta(deltas[i % len(deltas)])
            spent += time.perf_counter() - start
        start = time.perf_counter()
        writer.finish(ReplyState.COMPLETE)
        finish_s = time.perf_counter() - start
        budget = n / rate
        print(
            f"  {rate:>5} tok/s for 60 s: {writer.flushes} flushes, {spent / n * 1e6:6.2f} µs/token average,"
            f" store time {spent * 1e3:7.1f} ms = {spent / budget * 100:.3f}% of the stream"
            f" (limit 1%), finish {finish_s * 1e3:.2f} ms"
        )
        paced.close()

    writer = store.start_reply(chat.id)
    flush_times = []
    for _ in range(50):
        for delta in deltas[:100]:
            writer.append_delta(delta)
        flush_times.append(_time_loop(writer.flush))
    writer.finish(ReplyState.COMPLETE)
    median_us = statistics.median(flush_times) * 1e6
    print(f"  one flush (100 tokens, reply growing to 25 KB): median {median_us:.0f} µs")
    store.close()


# Run with `python -c` in a fresh interpreter: what a user waits for at start-up, imports included.
_CHILD = """
import resource, sys, time
start = time.perf_counter()
from lollma_tui.core.chat.opening import open_store
imported = time.perf_counter()
opened = open_store(__import__("pathlib").Path(sys.argv[1]))
page = opened.store.list_conversations(limit=50)
opened.store.load(page[0].id, last=int(sys.argv[2]))
shown = time.perf_counter()
opened.store.close()
closed = time.perf_counter()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((imported - start) * 1e3, (shown - imported) * 1e3, (closed - shown) * 1e3, rss)
"""


def measure_fresh_process(path: Path, tail: int, runs: int) -> None:
    rows = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(tail)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append([float(x) for x in result.stdout.split()])
    imports, shown, closed, rss = (statistics.median(column) for column in zip(*rows, strict=True))
    print(f"fresh process (median of {runs}):")
    print(
        f"  {'import the store modules':<28} {imports:8.2f} ms\n"
        f"  {'open + list 50 + last ' + str(tail):<28} {shown:8.2f} ms\n"
        f"  {'close':<28} {closed:8.2f} ms\n"
        f"  {'process max RSS':<28} {rss / 1024:8.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--others", type=int, default=200, help="other 10-message conversations")
    parser.add_argument("--tokens", type=int, default=200_000)
    parser.add_argument("--tail", type=int, default=50)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help=QUICK_HELP + ": 200 messages, 2,000 tokens, one run"
    )
    args = parser.parse_args()
    if args.quick:
        args.messages, args.others, args.tokens, args.runs = 200, 2, 2_000, 1

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.db"
        start = time.perf_counter()
        build(path, args.messages, args.others)
        size = path.stat().st_size
        print(
            f"built: {args.messages:,}-message conversation + {args.others} others,"
            f" {size / 2**20:.1f} MiB, in {time.perf_counter() - start:.1f} s"
        )
        figures = measure_open(path, args.tail, args.runs)
        print(f"open (median of {args.runs}), thread of {figures['total']:,} messages:")
        print(
            f"  {'open + list 50 + last ' + str(args.tail):<28} {figures['open_ms']:8.2f} ms"
            f"   Python peak {figures['open_peak_kib']:7.0f} KiB   RSS +{figures['open_rss_kib']:.0f} KiB"
        )
        print(f"  {'whole thread, for contrast':<28} {figures['full_ms']:8.2f} ms")
        measure_fresh_process(path, args.tail, min(args.runs, 5))
        measure_write(Path(folder) / "write.db", args.tokens)


if __name__ == "__main__":
    main()

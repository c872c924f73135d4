"""The history as the app uses it: opening a long conversation, and saving a reply as it streams.

    uv run python scripts/perf/history.py [--messages 2000] [--runs 7] [--replies 6] [--tokens 160]
                                          [--model PATH] [--quick]

Figures printed side by side, all measured in this one run:

- open: a headless `LollmaApp` (with no model load) starting on a history whose newest
  conversation has 2,000 messages, from creating the app until that conversation is resumed and
  its tail mounted, against the same start on an empty history. Every run is a fresh process,
  long and empty alternating, so the RSS growth from app start to mounted tail belongs to that
  run alone. Then one earlier page mounted, as scrolling to the top does. Goal: under 0.5 s.
- write: the real llama.cpp backend on the demo model (greedy, fixed max tokens) streams the same
  reply with and without the store path the app uses (`AsyncStore` + `StreamingReply`: `add` per
  piece, `flush_if_due`, `finish`), alternating in one process; tokens/s of both, timed at the
  consumer as the app sees them, and their ratio (goal: the store costs under 1%). Then the raw
  cost per call of `StreamingReply.add` and `flush_if_due`, and the flushes per reply.

Data, state and config folders are temporary; the demo model is assembled in the usual cache
folder (LOLLMA_CACHE_DIR if set), as the app itself does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from _prompts import WORDS, filler_text, sample_stats
from _support import QUICK_HELP, tiny_model

from lollma_tui.core.backends.base import ChatMessage, ReplyDone, TextDelta
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.backends.llamacpp_worker import default_threads
from lollma_tui.core.chat.async_store import AsyncStore, StreamingReply
from lollma_tui.core.chat.conversation import Conversation, Message, ReplyState
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.chat.writer import ReplyWriter, state_for
from lollma_tui.core.models.demo import ensure_demo_model
from lollma_tui.core.settings import LoadSettings, SamplingSettings, StartupOptions

PROMPT = "Write a long story about a lighthouse keeper."
GOAL_OPEN_S = 0.5
GOAL_STORE_COST = 0.01


def build_history(path: Path, messages: int, others: int) -> None:
    """`others` short conversations, then the long one, so that it is the one resumed."""
    with ChatStore.open(path) as store:
        for n in range(others):
            short = Conversation(title=f"chat {n}")
            for i in range(10):
                short.messages.append(Message("user" if i % 2 == 0 else "assistant", filler_text(n + i, 40)))
            store.create_conversation(short)
        long = Conversation(title="the long one", system_prompt="You are a helpful assistant.")
        for i in range(messages // 2):
            long.messages.append(Message("user", filler_text(i, 30)))
            long.messages.append(Message("assistant", filler_text(i, 150), stats=sample_stats()))
        store.create_conversation(long)


# -- open: one app start per process ----------------------------------------------------------


def _child_open(history: Path, expect: int) -> None:
    """Start the app once on `history`, print its figures as one JSON line."""
    import lollma_tui.ui.app as app_module
    from lollma_tui.ui.app import LollmaApp
    from lollma_tui.ui.screens.chat_pages import EARLIER_PAGE, TAIL_MESSAGES

    marks: dict[str, float] = {}

    class MarkedApp(LollmaApp):
        # Textual resolves CSS paths next to the module of the class that names them: this one.
        CSS_PATH = [str(Path(app_module.__file__).parent / css) for css in LollmaApp.CSS_PATH]

        def on_ready(self) -> None:
            # No super() call: Textual runs every class's handler, LollmaApp's (which opens the
            # history) right after this one.
            marks["ready"] = time.perf_counter()

    def without_model(app: LollmaApp) -> None:
        """The model load would compete for the CPU with what is measured; it is not part of it."""
        chat = app.chat_screen
        chat.models.load_first = lambda *_: None  # type: ignore[method-assign]
        open_conversation = chat.open_conversation

        async def timed(conversation_id: str, focus_message: str | None = None, **options: Any) -> None:
            marks["conversation"] = time.perf_counter()
            await open_conversation(conversation_id, focus_message, **options)
            marks["conversation"] = time.perf_counter() - marks["conversation"]

        chat.open_conversation = timed  # type: ignore[method-assign]

    async def painted(app: LollmaApp) -> None:
        """Wait until what is mounted now has been laid out and drawn once."""
        drawn = asyncio.Event()
        app.call_after_refresh(drawn.set)
        await drawn.wait()

    options = StartupOptions(load=LoadSettings(model="none.gguf"), history_path=history)

    async def run() -> dict[str, float]:
        process = psutil.Process()
        gc.collect()
        rss_before = process.memory_info().rss
        start = time.perf_counter()
        app = MarkedApp(options)
        without_model(app)
        chat = app.chat_screen
        figures: dict[str, float] = {}
        measured = False
        try:
            async with app.run_test(size=(120, 40)):

                def resumed() -> bool:
                    if chat.history.store is None:
                        return False
                    if any(w.group == "history-open" and w.is_running for w in app.workers):
                        return False
                    if expect == 0:
                        return True
                    shown = len(chat.chat_log.turns())
                    return len(chat.conversation.messages) == expect and shown == min(TAIL_MESSAGES, expect)

                while not resumed():
                    if time.perf_counter() - start > 60:
                        raise RuntimeError(
                            "the conversation was not resumed within 60 s: store"
                            f" {'open' if chat.history.store else 'not open'},"
                            f" {len(chat.conversation.messages)} messages,"
                            f" {len(chat.chat_log.turns())} turns shown,"
                            f" workers {[(w.group, w.state.name) for w in app.workers]}"
                        )
                    await asyncio.sleep(0.001)
                resumed_at = time.perf_counter()
                await painted(app)
                figures["ready_s"] = marks["ready"] - start
                figures["open_s"] = resumed_at - start
                figures["history_s"] = resumed_at - marks["ready"]
                figures["conversation_s"] = marks.get("conversation", 0.0)
                figures["painted_s"] = time.perf_counter() - start
                figures["rss_mib"] = (process.memory_info().rss - rss_before) / 2**20
                if expect:
                    chat_log = chat.chat_log
                    before = len(chat_log.turns())
                    page_start = time.perf_counter()
                    await chat.pages.mount_earlier(keep_place=False)
                    figures["page_s"] = time.perf_counter() - page_start
                    await painted(app)
                    figures["page_painted_s"] = time.perf_counter() - page_start
                    if len(chat_log.turns()) != before + EARLIER_PAGE:
                        raise RuntimeError("mounting an earlier page did not add a page of turns")
                measured = True
        except Exception as error:
            # A fault of the app while it shuts down: the figures were taken before it, so they
            # stand, and the parent reports the fault.
            if not measured:
                raise
            faults.append(f"{type(error).__name__}: {error}")
        return figures

    faults: list[str] = []
    figures = asyncio.run(run())
    print(json.dumps({"figures": figures, "shutdown_error": faults[0] if faults else None}))


shutdown_errors: list[str] = []
"""Faults the app raised while shutting down after a measured start (reported, not hidden)."""


def _open_in_child(history: Path, expect: int, env: dict[str, str]) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child-open", str(history), "--expect", str(expect)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"open run failed:\n{result.stderr[-3000:]}")
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    if reply["shutdown_error"]:
        shutdown_errors.append(reply["shutdown_error"])
    figures: dict[str, float] = reply["figures"]
    return figures


def measure_open(folder: Path, messages: int, others: int, runs: int, env: dict[str, str]) -> None:
    long_path = folder / "long" / "history.db"
    empty_path = folder / "empty" / "history.db"
    long_path.parent.mkdir()
    empty_path.parent.mkdir()
    start = time.perf_counter()
    build_history(long_path, messages, others)
    ChatStore.open(empty_path).close()
    print(
        f"history: a {messages:,}-message conversation + {others} of 10 messages,"
        f" {long_path.stat().st_size / 2**20:.1f} MiB, built in {time.perf_counter() - start:.1f} s"
    )
    # One untimed start first: the first process after a build pays for cold file caches.
    _open_in_child(empty_path, 0, env)
    long_runs: list[dict[str, float]] = []
    empty_runs: list[dict[str, float]] = []
    for run in range(runs):
        order = ((long_path, messages), (empty_path, 0))
        for path, expect in order if run % 2 == 0 else order[::-1]:
            (long_runs if expect else empty_runs).append(_open_in_child(path, expect, env))

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    print(f"open in the app, headless, no model load (median of {runs} fresh processes each):")
    print(
        f"  {'':<30} {'app ready':>10} {'+ history':>10} {'= resumed':>10} {'painted':>9} {'RSS growth':>11}"
    )
    sides = ((f"{messages:,} messages, tail mounted", long_runs), ("empty history", empty_runs))
    for label, rows in sides:
        print(
            f"  {label:<30} {median(rows, 'ready_s') * 1e3:7.0f} ms {median(rows, 'history_s') * 1e3:7.0f} ms"
            f" {median(rows, 'open_s') * 1e3:7.0f} ms {median(rows, 'painted_s') * 1e3:6.0f} ms"
            f" {median(rows, 'rss_mib'):7.1f} MiB"
        )
    extra_ms = (median(long_runs, "open_s") - median(empty_runs, "open_s")) * 1e3
    extra_mib = median(long_runs, "rss_mib") - median(empty_runs, "rss_mib")
    print(
        f"  {'difference (the conversation)':<30} {'':>21} {extra_ms:+7.0f} ms {'':>9} {extra_mib:+7.1f} MiB"
    )
    conversation_ms = median(long_runs, "conversation_s") * 1e3
    print(
        f"  open_conversation alone (tail read, whole thread read, 30 turns mounted):"
        f" {conversation_ms:.0f} ms"
    )
    goal_ms = GOAL_OPEN_S * 1e3
    # The app's own start is in the first figure, so the goal is judged three ways.
    for label, value in (
        ("from app start to resumed", median(long_runs, "open_s") * 1e3),
        ("the conversation's cost (long - empty)", extra_ms),
        ("open_conversation alone", conversation_ms),
    ):
        verdict = "met" if value < goal_ms else "MISSED"
        print(f"  goal < {goal_ms:.0f} ms, {label:<40} {value:6.0f} ms  {verdict} ({value / goal_ms:.2f}×)")
    print(
        f"  one earlier page (scroll to the top): {median(long_runs, 'page_s') * 1e3:.0f} ms mounted,"
        f" {median(long_runs, 'page_painted_s') * 1e3:.0f} ms painted"
    )
    if shutdown_errors:
        print(
            f"  NOTE: {len(shutdown_errors)} of {2 * runs + 1} app runs raised while shutting down"
            f" (after their figures were taken): {sorted(set(shutdown_errors))}"
        )
    print(
        "  every run, resumed ms: long "
        + " ".join(f"{row['open_s'] * 1e3:.0f}" for row in long_runs)
        + " · empty "
        + " ".join(f"{row['open_s'] * 1e3:.0f}" for row in empty_runs)
    )


# -- write: the store on the token path --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamRun:
    rate: float
    """Tokens/s at the consumer: (tokens - 1) over first piece → last piece, as ipc.py times it."""
    worker_rate: float | None
    """Tokens/s as llama.cpp measured it in the worker."""
    tokens: int
    text: str
    flushes: int
    finish_ms: float


async def stream_once(
    backend: LlamaCppBackend, sampling: SamplingSettings, store: AsyncStore | None, conversation_id: str
) -> StreamRun:
    writer: ReplyWriter | None = None
    saved: StreamingReply | None = None
    if store is not None:
        writer = await store.run(store.store.start_reply, conversation_id)
        saved = store.streaming(writer)
    text = ""
    first = last = 0.0
    done: ReplyDone | None = None
    async for event in backend.stream_chat([ChatMessage("user", PROMPT)], sampling):
        if isinstance(event, TextDelta):
            now = time.perf_counter()
            first = first or now
            last = now
            text += event.text
            # Exactly what the chat screen's ReplyStreamer does per piece.
            if saved is not None:
                saved.add(event.text)
                saved.flush_if_due()
        elif isinstance(event, ReplyDone):
            done = event
    assert done is not None
    finish_ms = 0.0
    if saved is not None and writer is not None:
        started = time.perf_counter()
        await saved.finish(state_for(done.finish_reason), stats=done.stats, sampling=sampling)
        finish_ms = (time.perf_counter() - started) * 1e3
    tokens = done.stats.gen_tokens
    return StreamRun(
        rate=(tokens - 1) / (last - first),
        worker_rate=done.stats.gen_tps,
        tokens=tokens,
        text=text,
        flushes=writer.flushes if writer is not None else 0,
        finish_ms=finish_ms,
    )


async def per_call_costs(calls: int) -> tuple[float, float, float]:
    """ns per call of `add`, of `flush_if_due` when not due, and of the bare loop, in memory."""
    store = AsyncStore()
    await store.open(None)
    conversation = await store.run(store.store.new_conversation)
    writer = await store.run(store.store.start_reply, conversation.id)
    # Never due: this measures the call itself, not the writes.
    reply = StreamingReply(store, writer, interval_s=1e9)
    pieces = [f"{WORDS[i % len(WORDS)]} " for i in range(calls)]
    best_add = best_due = best_bare = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _piece in pieces:
            pass
        best_bare = min(best_bare, time.perf_counter_ns() - start)
        start = time.perf_counter_ns()
        for piece in pieces:
            reply.add(piece)
        best_add = min(best_add, time.perf_counter_ns() - start)
        start = time.perf_counter_ns()
        for _piece in pieces:
            reply.flush_if_due()
        best_due = min(best_due, time.perf_counter_ns() - start)
    await reply.finish(ReplyState.COMPLETE)
    await store.close()
    return best_add / calls, best_due / calls, best_bare / calls


async def measure_write(model: Path, replies: int, tokens: int, calls: int, folder: Path) -> None:
    threads = default_threads()
    # Greedy and seeded: every run writes the same reply, so both sides do the same work.
    sampling = SamplingSettings(temperature=0.0, repeat_penalty=1.3, seed=1, max_tokens=tokens)
    backend = LlamaCppBackend(log_path=folder / "llama.cpp.log")
    await backend.load(LoadSettings(model=str(model), n_ctx=2048, n_threads=threads))
    store = AsyncStore()
    await store.open(folder / "stream" / "history.db")
    conversation = await store.run(store.store.new_conversation)
    try:
        await stream_once(backend, sampling, None, conversation.id)  # warm-up, untimed
        runs: dict[bool, list[StreamRun]] = {False: [], True: []}
        print(
            f"write while streaming: {model.name}, {threads} threads, greedy, {tokens} tokens max,"
            f" {replies} replies each side, alternating"
        )
        print(f"  {'reply':>5} {'bare tok/s':>11} {'store tok/s':>12} {'ratio':>7} {'flushes':>8}")
        for i in range(replies):
            for with_store in (False, True) if i % 2 == 0 else (True, False):
                runs[with_store].append(
                    await stream_once(backend, sampling, store if with_store else None, conversation.id)
                )
            bare, saved = runs[False][-1], runs[True][-1]
            print(
                f"  {i + 1:>5} {bare.rate:>11.1f} {saved.rate:>12.1f} {saved.rate / bare.rate:>7.3f}"
                f" {saved.flushes:>8}"
            )
    finally:
        await backend.close()
        await store.close()

    bare_rate = statistics.median(r.rate for r in runs[False])
    store_rate = statistics.median(r.rate for r in runs[True])
    worker_bare = statistics.median(r.worker_rate or 0.0 for r in runs[False])
    worker_store = statistics.median(r.worker_rate or 0.0 for r in runs[True])
    same_text = len({r.text for r in runs[False] + runs[True]}) == 1
    token_counts = sorted({r.tokens for r in runs[False] + runs[True]})
    cost = 1 - store_rate / bare_rate
    pair_ratios = [saved.rate / bare.rate for bare, saved in zip(runs[False], runs[True], strict=True)]
    print(
        f"  median tok/s at the consumer: bare {bare_rate:.1f}, with the store {store_rate:.1f},"
        f" ratio {store_rate / bare_rate:.3f} (store cost {cost * 100:+.2f}%;"
        f" goal under {GOAL_STORE_COST * 100:.0f}%)"
    )
    print(
        f"  per-pair ratios: median {statistics.median(pair_ratios):.3f},"
        f" spread {min(pair_ratios):.3f}–{max(pair_ratios):.3f} (the run-to-run noise of this machine)"
    )
    print(
        f"  median tok/s in the worker:   bare {worker_bare:.1f}, with the store {worker_store:.1f},"
        f" ratio {worker_store / worker_bare:.3f}"
    )
    print(
        f"  tokens per reply {token_counts}; same text every run: {'yes' if same_text else 'NO'};"
        f" flushes per reply (the final write included)"
        f" {statistics.median(r.flushes for r in runs[True]):.0f};"
        f" finish() median {statistics.median(r.finish_ms for r in runs[True]):.2f} ms"
    )

    add_ns, due_ns, bare_ns = await per_call_costs(calls)
    per_token_ns = add_ns + due_ns
    share = per_token_ns * store_rate / 1e9
    print(f"per call, best of 5 × {calls:,} (the loop's own cost included):")
    print(f"  {'StreamingReply.add':<34} {add_ns:7.0f} ns")
    print(f"  {'flush_if_due() (not due)':<34} {due_ns:7.0f} ns")
    print(f"  {'the bare for loop':<34} {bare_ns:7.0f} ns")
    print(
        f"  per token {per_token_ns:.0f} ns; at {store_rate:.0f} tok/s that is"
        f" {per_token_ns * store_rate / 1e3:.1f} µs of every second = {share * 100:.4f}%"
        f" (plus one flush a second on the store's thread)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--others", type=int, default=50, help="other 10-message conversations")
    parser.add_argument("--runs", type=int, default=7, help="app starts per side")
    parser.add_argument("--replies", type=int, default=6, help="streamed replies per side")
    parser.add_argument("--tokens", type=int, default=160, help="max tokens per reply")
    parser.add_argument("--skip-open", action="store_true")
    parser.add_argument("--skip-write", action="store_true")
    parser.add_argument("--model", type=Path, help="GGUF file for the write side (default: the demo model)")
    parser.add_argument("--calls", type=int, default=200_000, help="calls per pass of the per-call costs")
    parser.add_argument(
        "--quick", action="store_true", help=QUICK_HELP + ": 200 messages, one start, the tiny model"
    )
    parser.add_argument("--child-open", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.messages, args.others, args.runs, args.replies, args.tokens = 200, 2, 1, 1, 16
        args.calls = 2_000
    if args.child_open is not None:
        _child_open(args.child_open, args.expect)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-history-") as name:
        folder = Path(name)
        # Set before anything reads them: nothing here touches the user's own history or config.
        for kind in ("data", "state", "config"):
            os.environ[f"LOLLMA_{kind.upper()}_DIR"] = str(folder / kind)
        env = dict(os.environ)
        print(f"python {sys.version.split()[0]} · {psutil.cpu_count()} CPUs · {sys.platform}")
        if not args.skip_open:
            measure_open(folder, args.messages, args.others, args.runs, env)
        if not args.skip_write:
            model = args.model or (tiny_model(folder) if args.quick else ensure_demo_model())
            asyncio.run(measure_write(model, args.replies, args.tokens, args.calls, folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())

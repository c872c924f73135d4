"""Generation speed in the installed app, in a real terminal with its panel on, against the
llama.cpp backend alone: what the UI takes from the model on this machine.

    uv run python scripts/perf/app_speed.py [--replies 12] [--tokens 128] [--model PATH]
                                            [--threads N] [--quick]

- app: `lollma-tui` in a private tmux server at 120×35, as shipped (hardware panel shown and
  sampling every second, the live tok/s figure, the reply streamed into the chat); each
  question is typed and sent as a person would, and the reply's generation tok/s (the figure
  its stats line shows) is read from the history it saved.
- backend: `LlamaCppBackend` in this process with the same model, context, threads and greedy
  sampling, and the same conversation (each question after the earlier questions and replies,
  as in the app), no UI at all.

Both are loaded once and answer in turns, reply by reply, the order alternating pair by pair;
while the backend answers, the app and its llama.cpp worker are stopped (SIGSTOP), so neither
side pays for the other. The ratio is app / backend; on a machine with as many llama.cpp
threads as cores, every millisecond the UI spends is taken from generation. Goal: ≥ 0.98.

On a machine shared with other work, llama.cpp's threads wait for each other at every token,
so another program's burst halves a reply's speed. So the CPU that programs other than the
two sides used during each reply is measured (the machine's busy time minus that of the side's
own processes and the terminal), each pair waits for a quiet moment (`--quiet`), and pairs where
others used more than `--quiet` of the machine during either reply are left out of the verdict
(every pair is printed, with that share).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from _prompts import QUESTIONS
from _support import QUICK_HELP, borrow_test_helpers, tiny_model

import lollma_tui
from lollma_tui.core.backends.base import ChatMessage, ReplyDone, TextDelta
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.backends.llamacpp_worker import default_threads
from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.models.demo import ensure_demo_model
from lollma_tui.core.settings import LoadSettings, SamplingSettings

borrow_test_helpers()

from tmux_support import Tmux  # noqa: E402


class Others:
    """CPU used by programs other than `ours` while a block runs, as a share of the machine."""

    def __init__(self, ours: list[psutil.Process]) -> None:
        self.ours = ours
        self.share = 0.0

    @staticmethod
    def _busy() -> float:
        times = psutil.cpu_times()
        # guest time is counted in user time already.
        counted = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        return counted - times.idle - getattr(times, "iowait", 0.0)

    def _own(self) -> float:
        total = 0.0
        for process in self.ours:
            try:
                family = [process, *process.children(recursive=True)]
            except psutil.Error:
                continue
            for member in family:
                try:
                    times = member.cpu_times()
                except psutil.Error:
                    continue
                total += times.user + times.system
        return total

    def __enter__(self) -> Others:
        self._start = (time.perf_counter(), self._busy(), self._own())
        return self

    def __exit__(self, *exc: object) -> None:
        wall0, busy0, own0 = self._start
        wall = time.perf_counter() - wall0
        others = (self._busy() - busy0) - (self._own() - own0)
        self.share = max(0.0, others) / (wall * (psutil.cpu_count() or 1))


def wait_for_quiet(ours: list[psutil.Process], threshold: float, within_s: float) -> float:
    """Wait (at most `within_s`) for a second in which other programs use under `threshold`."""
    deadline = time.monotonic() + within_s
    while True:
        with Others(ours) as others:
            time.sleep(1.0)
        if others.share < threshold or time.monotonic() > deadline:
            return others.share


GOAL = 0.98
COLUMNS, LINES = 120, 35
CTX = 4096
CONTEXT_FILL = 0.85
"""The share of the context the conversation may reach by the last question."""
TOKENS_PER_QUESTION = 40
"""A question and the chat template around it and its reply, at most (the longest is 5 words)."""
FINISHED = {ReplyState.COMPLETE, ReplyState.LENGTH}


def greedy(tokens: int) -> SamplingSettings:
    return SamplingSettings(
        temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, seed=1, max_tokens=tokens
    )


class AppSide:
    """The installed app in tmux, answering one question at a time; stopped in between."""

    def __init__(self, tmux: Tmux, model: Path, tokens: int, threads: int) -> None:
        self.tmux = tmux
        folder = Path(tempfile.mkdtemp(prefix="app-speed-"))
        env = {f"LOLLMA_{kind}_DIR": str(folder / kind.lower()) for kind in ("DATA", "STATE", "CONFIG")}
        command = Path(sys.executable).with_name("lollma-tui")
        line = (
            "env -u COLUMNS -u LINES "
            + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
            + f" {shlex.quote(str(command))} --model {shlex.quote(str(model))} --new --ctx {CTX}"
            f" --threads {threads} --temp 0 --repeat-penalty 1 --seed 1 --max-tokens {tokens}"
        )
        self.db = folder / "data" / "history.db"
        tmux.run("new-session", "-d", "-s", "app", "-x", str(COLUMNS), "-y", str(LINES), line)
        tmux.wait_for("app", lambda text: "● ready" in text, 120)
        self.terminal = psutil.Process(int(tmux.run("display", "-p", "#{pid}")))
        pane = psutil.Process(int(tmux.run("display", "-p", "-t", "app", "#{pane_pid}")))
        self.root = next(
            p for p in [pane, *pane.children(recursive=True)] if "lollma-tui" in " ".join(p.cmdline())
        )

    def _messages(self) -> list[Message]:
        if not self.db.exists():
            return []
        with ChatStore.open(self.db) as store:
            conversation_id = store.latest_conversation_id()
            if conversation_id is None:
                return []
            return store.load(conversation_id).conversation.messages

    def replies(self) -> list[tuple[str, float]]:
        """Text and generation tok/s of every finished reply saved so far."""
        messages = self._messages()
        return [
            (m.content, m.stats.gen_tps)
            for m in messages
            if m.role == "assistant" and m.state in FINISHED and m.stats is not None and m.stats.gen_tps
        ]

    def ask(self, question: str) -> tuple[str, float, float]:
        """The reply's text and tok/s, and the share of a core the app's own process (not its
        llama.cpp worker) used meanwhile."""
        count = len(self.replies()) + 1
        started, cpu = time.perf_counter(), sum(self.root.cpu_times()[:2])
        asked = sum(m.role == "user" for m in self._messages())
        self.tmux.run("send-keys", "-t", "app", "-l", question)
        # Enter again if the app was still wrapping up the previous reply and kept the text.
        deadline = time.monotonic() + 60
        while sum(m.role == "user" for m in self._messages()) == asked:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not take question {count}:\n{self.tmux.screen('app')}")
            self.tmux.run("send-keys", "-t", "app", "Enter")
            time.sleep(0.5)
        deadline = time.monotonic() + 300
        while len(self.replies()) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no finished reply {count} in the app:\n{self.tmux.screen('app')}")
            time.sleep(0.2)
        ui_share = (sum(self.root.cpu_times()[:2]) - cpu) / (time.perf_counter() - started)
        self.tmux.wait_for("app", lambda text: "● ready" in text, 30)
        return (*self.replies()[-1], ui_share)

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """The app and its workers do nothing meanwhile: not a sample, not a frame."""
        family = [self.root, *self.root.children(recursive=True)]
        for process in family:
            process.suspend()
        try:
            yield
        finally:
            for process in family:
                process.resume()
            time.sleep(1.0)  # the redraw and the missed sample after SIGCONT are not measured

    def close(self) -> None:
        if self.tmux.has_session("app"):  # gone already if the app ended: say why, not this
            self.tmux.run("kill-session", "-t", "app")


async def backend_reply(
    backend: LlamaCppBackend, history: list[ChatMessage], tokens: int
) -> tuple[str, float]:
    text, rate = "", 0.0
    async for event in backend.stream_chat(history, greedy(tokens)):
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, ReplyDone) and event.stats.gen_tps:
            rate = event.stats.gen_tps
    return text, rate


@dataclass(frozen=True)
class Pair:
    app: float
    """Tok/s of the app's reply."""
    backend: float
    """Tok/s of the backend's."""
    others: float
    """The most that other programs used of the machine during either reply."""
    ui: float
    """Share of a core the app's own process used while its reply was written."""


async def measure(
    model: Path, replies: int, tokens: int, threads: int, tmux: Tmux, quiet: float
) -> list[Pair]:
    backend = LlamaCppBackend(log_path=Path(tempfile.mkdtemp()) / "llama.log", keep_spare=False)
    await backend.load(LoadSettings(model=str(model), n_ctx=CTX, n_threads=threads))
    app = AppSide(tmux, model, tokens, threads)
    history: list[ChatMessage] = []
    pairs: list[Pair] = []
    this = psutil.Process()
    print(
        f"{'pair':>4}  {'first':<7}  {'app tok/s':>9}  {'backend tok/s':>13}  {'ratio':>6}  "
        f"{'others':>6}  {'app UI CPU':>10}  same text"
    )
    try:
        for index in range(replies):
            question = QUESTIONS[index % len(QUESTIONS)]
            history.append(ChatMessage("user", question))
            order = ("app", "backend") if index % 2 == 0 else ("backend", "app")
            ours = [this, app.root, app.terminal]
            wait_for_quiet(ours, quiet, 60.0)
            shares: list[float] = []
            for side in order:
                if side == "app":
                    with Others(ours) as others:
                        app_text, app_rate, ui_share = app.ask(question)
                else:
                    with app.stopped(), Others(ours) as others:
                        backend_text, backend_rate = await backend_reply(backend, history, tokens)
                shares.append(others.share)
            history.append(ChatMessage("assistant", backend_text))
            pairs.append(Pair(app_rate, backend_rate, max(shares), ui_share))
            same = "yes" if app_text.strip() == backend_text.strip() else "no"
            print(
                f"{index + 1:>4}  {order[0]:<7}  {app_rate:>9.1f}  {backend_rate:>13.1f}  "
                f"{app_rate / backend_rate:>6.3f}  {max(shares) * 100:>5.1f}%  "
                f"{ui_share * 100:>8.2f} %  {same}"
            )
    finally:
        app.close()
        await backend.close()
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replies", type=int, default=12, help="questions, each answered by both sides")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--model", type=Path, help="GGUF file (default: the demo model)")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument(
        "--quiet",
        type=float,
        default=0.05,
        help="share of the machine other programs may use during a counted pair (default 0.05)",
    )
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP + ": two replies of the tiny model")
    args = parser.parse_args()
    # The conversation grows by a question and a reply per pair, and both sides answer the whole
    # of it: past the context, the app asks what to do and the backend alone fails.
    fits = int(CTX * CONTEXT_FILL) // (args.tokens + TOKENS_PER_QUESTION)
    if args.replies > fits:
        parser.error(
            f"{args.replies} replies of up to {args.tokens} tokens do not fit the {CTX}-token context "
            f"(about {fits} do): ask for fewer --replies or --tokens"
        )
    scratch = Path(tempfile.mkdtemp(prefix="app-speed-"))
    if args.quick:
        args.replies, args.tokens = 2, 16
        args.model = args.model or tiny_model(scratch)
    model = args.model or ensure_demo_model()
    tmux = Tmux(scratch / "tmux.sock")
    tmux.run("new-session", "-d", "-s", "hold", "-x", str(COLUMNS), "-y", str(LINES), "cat")
    print(
        f"{model.name} · {args.threads} threads · ctx {CTX} · greedy · {args.tokens} tokens max · "
        f"{args.replies} replies per side, in turns · tmux {COLUMNS}×{LINES} · "
        f"{psutil.cpu_count()} logical CPUs · code from {Path(lollma_tui.__file__).parent}"
    )
    try:
        pairs = asyncio.run(measure(model, args.replies, args.tokens, args.threads, tmux, args.quiet))
    finally:
        tmux.kill_server()
    for label, chosen in (
        ("all pairs", pairs),
        (f"quiet pairs (others < {args.quiet:.0%})", [p for p in pairs if p.others < args.quiet]),
    ):
        if not chosen:
            print(f"{label}: none")
            continue
        app = statistics.median(p.app for p in chosen)
        backend = statistics.median(p.backend for p in chosen)
        ratios = [p.app / p.backend for p in chosen]
        ratio = statistics.median(ratios)
        verdict = "met" if ratio >= GOAL else "MISSED"
        print(
            f"{label}, {len(chosen)}: app in the terminal {app:.1f} tok/s, backend alone {backend:.1f} "
            f"tok/s; per-pair ratio median {ratio:.3f}, spread {min(ratios):.3f}–{max(ratios):.3f} "
            f"(goal ≥ {GOAL}): {verdict}; the app's own process used "
            f"{statistics.median(p.ui for p in chosen) * 100:.2f} % of a core while writing a reply"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

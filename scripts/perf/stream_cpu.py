"""CPU of the `lollma-tui` process while a reply streams at 100 tok/s, against a plain client that
prints the same stream into the same terminal.

    uv run python scripts/perf/stream_cpu.py [--rate 100] [--seconds 40] [--rounds 2] [--quick]

Both sides run in one private tmux server, in a 120×35 window, one at a time. The server is the
Ollama-compatible test server from the test tree, in a thread of this process, its content
chunks paced on a fixed schedule (`PacedEngine` from ollama_rate.py). Every reply is the same
Markdown document (headings, paragraphs, lists, fenced code), one word-sized chunk per token.

- app: the installed `lollma-tui --backend ollama` in a fresh process per round, hardware panel
  on as shipped; the question is typed into it as a person would.
- print: a dozen lines of Python with the official `ollama` client that print each chunk as it
  comes (what `ollama run` does): the floor a terminal program pays for this stream.

For each side the process's CPU time (user + system, all its threads) is read with psutil over
windows of the same stream: an early window (seconds 1 to 1 + W after the first chunk), a late
one (the last W seconds) and the whole stream; the tmux server's CPU in the same windows shows
what the terminal itself spends drawing. Growth = late / early: 1.0 means the cost does not
depend on how long the reply already is. Before the question, the app's idle CPU is read too.
Goal: the app ≤ 3 % of one core at 100 tok/s, late ≈ early.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from _prompts import QUESTIONS
from _support import QUICK_HELP, borrow_test_helpers

import lollma_tui

borrow_test_helpers()

from ollama_rate import PacedEngine, Trace  # noqa: E402
from ollama_server import TINYLLAMA_Q4, OllamaTestServer, Script  # noqa: E402
from ollama_server.engines import split_pieces  # noqa: E402
from tmux_support import Tmux  # noqa: E402

GOAL_PERCENT = 3.0
COLUMNS, LINES = 120, 35
READY_TEXT = "Message, or /command"

PRINTING_CLIENT = """
import sys
import ollama

host, model, question = sys.argv[1:4]
stream = ollama.Client(host=host).chat(
    model=model, messages=[{"role": "user", "content": question}], stream=True
)
for part in stream:
    print(part.message.content or "", end="", flush=True)
print()
print("printing-client-done", flush=True)
sys.stdin.readline()
"""

CODE = """```python
def moving_average(values, window):
    total = sum(values[:window])
    yield total / window
    for old, new in zip(values, values[window:]):
        total += new - old
        yield total / window
```"""


def markdown_reply(tokens: int) -> list[str]:
    """`tokens` word-sized chunks of a Markdown document that reads like a model's long answer."""
    sections: list[str] = []
    k = 0
    while True:
        k += 1
        sections.append(
            f"## Part {k}: how the cache keeps up\n\n"
            "The model reads the **whole prompt** once, then writes one token at a time; each new "
            "token looks back at every earlier one through the *key-value cache*, so the cost of a "
            f"step grows with the context. In part {k} we look at what that means in practice.\n\n"
            "- the prompt is evaluated in batches of `n_batch` tokens\n"
            "- generation is bound by memory bandwidth, not arithmetic\n"
            "- a longer context means a larger cache to read per token\n\n"
            f"{CODE}\n\n"
            "| setting | effect |\n|---|---|\n| `n_ctx` | cache size |\n| `n_threads` | speed |\n\n"
            "That is why a small model on a laptop can still answer quickly, and why the numbers on "
            "the right of the screen move as the reply gets longer.\n\n"
        )
        pieces = split_pieces("".join(sections))
        if len(pieces) >= tokens:
            return pieces[:tokens]


@dataclass
class Window:
    """CPU seconds per wall second of each watched process over one stretch of the stream."""

    process: float
    terminal: float


@dataclass
class Side:
    name: str
    idle: float | None
    early: Window
    late: Window
    whole: Window
    tokens: int

    @property
    def growth(self) -> float:
        return self.late.process / self.early.process if self.early.process else float("nan")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def find_process(root: psutil.Process, needle: str) -> psutil.Process:
    """The process in `root`'s tree whose command line names `needle` (the pane's shell execs
    into it or starts it as a child, depending on the shell)."""
    for process in [root, *root.children(recursive=True)]:
        try:
            if any(needle in part for part in process.cmdline()):
                return process
        except psutil.Error:
            continue
    raise RuntimeError(f"no process running {needle} under pid {root.pid}")


class Watch:
    """Reads the CPU of the measured process and of the tmux server at given moments."""

    def __init__(self, process: psutil.Process, terminal: psutil.Process) -> None:
        self.process = process
        self.terminal = terminal

    def read(self) -> tuple[float, float, float]:
        return time.perf_counter(), cpu_seconds(self.process), cpu_seconds(self.terminal)

    def over(self, start: float, end: float) -> Window:
        """Sleep until `start`, read, sleep until `end`, read: the share of one core in between."""
        pause_until(start)
        t0, p0, s0 = self.read()
        pause_until(end)
        t1, p1, s1 = self.read()
        return Window((p1 - p0) / (t1 - t0), (s1 - s0) / (t1 - t0))


def pause_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def wait_for_trace(engine: PacedEngine, before: int, within: float = 30.0) -> Trace:
    deadline = time.monotonic() + within
    while len(engine.traces) <= before or not engine.traces[before].started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server never started streaming the reply")
        time.sleep(0.005)
    trace: Trace = engine.traces[before]
    return trace


def measure_stream(
    watch: Watch, engine: PacedEngine, before: int, tokens: int, rate: float, window_s: float
) -> tuple[Window, Window, Window]:
    trace = wait_for_trace(engine, before)
    start = trace.started
    end = start + tokens / rate
    whole_start = watch.read()
    early = watch.over(start + 1.0, start + 1.0 + window_s)
    late = watch.over(end - window_s - 0.2, end - 0.2)
    t1, p1, s1 = watch.read()
    t0, p0, s0 = whole_start
    whole = Window((p1 - p0) / (t1 - t0), (s1 - s0) / (t1 - t0))
    deadline = time.monotonic() + 30
    while len(trace.written) < tokens:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server wrote {len(trace.written)} of {tokens} chunks")
        time.sleep(0.05)
    return early, late, whole


def run_app(
    tmux: Tmux, env: dict[str, str], host: str, engine: PacedEngine, args: argparse.Namespace, round_: int
) -> Side:
    command = args.command or Path(sys.executable).with_name("lollma-tui")
    folders = Path(tempfile.mkdtemp(prefix="stream-cpu-app-"))
    app_env = {f"LOLLMA_{kind}_DIR": str(folders / kind.lower()) for kind in ("DATA", "STATE", "CONFIG")}
    line = (
        "env -u COLUMNS -u LINES "
        + " ".join(f"{k}={shlex.quote(v)}" for k, v in app_env.items())
        + f" {shlex.quote(str(command))} --backend ollama --ollama-host {host} "
        f"--model {TINYLLAMA_Q4.name} --new"
    )
    tmux.run("new-session", "-d", "-s", "app", "-x", str(COLUMNS), "-y", str(LINES), line)
    try:
        tmux.wait_for("app", lambda text: READY_TEXT in text and TINYLLAMA_Q4.name in text, 60)
        process = find_process(
            psutil.Process(int(tmux.run("display", "-p", "-t", "app", "#{pane_pid}"))), command.name
        )
        watch = Watch(process, psutil.Process(int(tmux.run("display", "-p", "#{pid}"))))
        time.sleep(args.settle)
        idle = watch.over(time.perf_counter(), time.perf_counter() + args.settle)
        before = len(engine.traces)
        tmux.run("send-keys", "-t", "app", "-l", QUESTIONS[round_ % len(QUESTIONS)])
        tmux.run("send-keys", "-t", "app", "Enter")
        early, late, whole = measure_stream(watch, engine, before, args.tokens, args.rate, args.window)
        # The stats line under the reply: the app has taken in the whole stream.
        tmux.wait_for("app", lambda text: "tok/s" in text and "writing" not in text, 30)
        return Side("app", idle.process, early, late, whole, len(engine.traces[before].written))
    finally:
        tmux.run("kill-session", "-t", "app")


def run_printer(
    tmux: Tmux, host: str, engine: PacedEngine, args: argparse.Namespace, round_: int, client: Path
) -> Side:
    question = QUESTIONS[round_ % len(QUESTIONS)]
    line = (
        f"env -u COLUMNS -u LINES {shlex.quote(sys.executable)} {shlex.quote(str(client))} "
        f"{host} {TINYLLAMA_Q4.name} {shlex.quote(question)}"
    )
    before = len(engine.traces)
    tmux.run("new-session", "-d", "-s", "print", "-x", str(COLUMNS), "-y", str(LINES), line)
    try:
        process = find_process(
            psutil.Process(int(tmux.run("display", "-p", "-t", "print", "#{pane_pid}"))), client.name
        )
        watch = Watch(process, psutil.Process(int(tmux.run("display", "-p", "#{pid}"))))
        early, late, whole = measure_stream(watch, engine, before, args.tokens, args.rate, args.window)
        tmux.wait_for("print", lambda text: "printing-client-done" in text, 30)
        return Side("print", None, early, late, whole, len(engine.traces[before].written))
    finally:
        tmux.run("kill-session", "-t", "print")


def percent(value: float) -> str:
    return f"{value * 100:6.2f} %"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=100.0, help="tok/s the server streams at")
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each reply at that rate")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of the early and late windows")
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds of both sides")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds the app idles before asking")
    parser.add_argument(
        "--command", type=Path, help="run this instead of the installed lollma-tui (an instrumented one)"
    )
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP + ": one 3 s reply per side")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.window, args.rounds, args.settle = 3.0, 0.8, 1, 0.5
    args.window = min(args.window, (args.seconds - 1.5) / 2)
    if args.window <= 0:
        parser.error("--seconds must leave room for two windows")
    args.tokens = int(args.seconds * args.rate)

    scratch = Path(tempfile.mkdtemp(prefix="stream-cpu-"))
    client = scratch / "printing_client.py"
    client.write_text(PRINTING_CLIENT)
    env = dict(os.environ)
    engine = PacedEngine(rate=args.rate)
    engine.default = Script(pieces=markdown_reply(args.tokens), thinking="", tokens_per_second=0.0)
    tmux = Tmux(scratch / "tmux.sock")
    sides: dict[str, list[Side]] = {"app": [], "print": []}
    print(
        f"{args.tokens} tokens of Markdown at {args.rate:g} tok/s ({args.seconds:g} s) · "
        f"tmux {COLUMNS}×{LINES} · windows of {args.window:g} s · {args.rounds} rounds · "
        f"{psutil.cpu_count()} logical CPUs · code from {Path(lollma_tui.__file__).parent}"
    )
    print(
        f"{'round':>5} {'side':<6} {'idle':>8} {'early':>8} {'late':>8} {'whole':>8} {'growth':>7}"
        f"  {'tmux early':>10} {'tmux late':>9}  tokens"
    )
    # One idle session holds the tmux server, so both sides draw into the same server process.
    tmux.run("new-session", "-d", "-s", "hold", "-x", str(COLUMNS), "-y", str(LINES), "cat")
    try:
        with OllamaTestServer(engine=engine) as server:
            for round_ in range(args.rounds):
                order = ("app", "print") if round_ % 2 == 0 else ("print", "app")
                for name in order:
                    if name == "app":
                        side = run_app(tmux, env, server.host, engine, args, round_)
                    else:
                        side = run_printer(tmux, server.host, engine, args, round_, client)
                    sides[name].append(side)
                    idle = percent(side.idle) if side.idle is not None else f"{'—':>8}"
                    print(
                        f"{round_ + 1:>5} {name:<6} {idle} {percent(side.early.process)} "
                        f"{percent(side.late.process)} {percent(side.whole.process)} {side.growth:7.2f}"
                        f"  {percent(side.early.terminal):>10} {percent(side.late.terminal):>9}  "
                        f"{side.tokens}/{args.tokens}"
                    )
    finally:
        tmux.kill_server()

    def median(name: str, pick: str) -> float:
        return statistics.median(getattr(side, pick).process for side in sides[name])

    app, printer = median("app", "whole"), median("print", "whole")
    growth = statistics.median(side.growth for side in sides["app"])
    print(
        f"median over the whole stream: app {app * 100:.2f} % of one core, printing client "
        f"{printer * 100:.2f} %, ratio {app / printer:.1f}× (goal: app ≤ {GOAL_PERCENT:g} %: "
        f"{'met' if app * 100 <= GOAL_PERCENT else 'MISSED'})"
    )
    print(
        f"app early {median('app', 'early') * 100:.2f} % → late {median('app', 'late') * 100:.2f} %, "
        f"growth {growth:.2f} (1.0 = no growth as the reply gets longer)"
    )
    lost = [side for group in sides.values() for side in group if side.tokens != args.tokens]
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())

"""What the hardware panel costs: CPU over a minute, and generation speed with it on and off.

    uv run python scripts/perf/panel.py [--seconds 60] [--rounds 3] [--replies 2] [--quick]

1. CPU, all measured over the same `--seconds` window, side by side:
   - the sampler thread alone, at 1 s with the default sources and our own pid tracked: its
     CPU time is read with `time.thread_time()` inside its own callback, so it is exactly
     that thread's (goal: under 1 % of one core);
   - `lollma-tui monitor` in a pseudo-terminal at 120×40, the panel visible and redrawn every
     second: the whole process (sampler, Textual, rendering);
   - `top -d 1`, `btop` and `nvitop` in the same kind of terminal where they are installed,
     for scale: the monitors people already run next to a model;
   - a Textual app that redraws one line of text every second: what Textual itself costs a
     program that changes its screen at that pace, the floor for any monitor built on it.
2. Generation tokens/s with the panel on and off: a headless `LollmaApp` on the demo model,
   greedy, the same questions. "On" is the app as shipped (side panel shown, sampling at 1 s,
   the live tok/s figure updating); "off" has no sampler thread and the side panel hidden.
   Each round starts one app of each kind, in alternating order. The rate is the reply's own
   generation tok/s, the figure the stats line shows. Goal: on / off ≥ 0.98. A third side,
   the llama.cpp backend alone with no app, shows what the whole UI costs: on a machine with
   as many llama.cpp threads as cores, every ms the UI spends is taken from generation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import functools
import os
import pty
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
from _prompts import QUESTIONS
from _support import QUICK_HELP, tiny_model

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.hardware import HardwareSampler, SystemSnapshot, default_sources
from lollma_tui.core.models.demo import ensure_demo_model
from lollma_tui.core.settings import LoadSettings, SamplingSettings, StartupOptions

if TYPE_CHECKING:
    from lollma_tui.ui.app import LollmaApp

MONITOR_GOAL = 1.5
"""`lollma-tui monitor` may cost at most this many times what `top -d 1` costs."""

SETTLE_S = 5.0
"""Start-up is not what is measured: each program runs this long before the window opens
(`--quick` shortens it)."""


def greedy(tokens: int) -> SamplingSettings:
    return SamplingSettings(
        temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, seed=1, max_tokens=tokens
    )


class ThreadClock:
    """The sampler's callback notes its own thread's CPU time and the wall clock."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, float]] = []

    def __call__(self, _: SystemSnapshot) -> None:
        self.marks.append((time.perf_counter(), time.thread_time()))

    def share_between(self, start: float, end: float) -> tuple[float, int]:
        """CPU seconds per wall second between the first and last tick inside [start, end]."""
        inside = [mark for mark in self.marks if start <= mark[0] <= end]
        if len(inside) < 2:
            return float("nan"), len(inside)
        (wall0, cpu0), (wall1, cpu1) = inside[0], inside[-1]
        return (cpu1 - cpu0) / (wall1 - wall0), len(inside) - 1


@contextlib.contextmanager
def in_terminal(argv: list[str], env: dict[str, str]) -> Iterator[psutil.Process]:
    """Run `argv` in a 120×40 pseudo-terminal whose output is read and thrown away."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
    )
    os.close(slave)

    def drain() -> None:
        # A full terminal buffer would block the program and make it look cheap.
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, name="pty-drain", daemon=True).start()
    try:
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        os.close(master)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    total = times.user + times.system
    for child in process.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.Error:
            continue
        total += child_times.user + child_times.system
    return total


TICKING_TEXTUAL_APP = """
import time
from textual.app import App
from textual.widgets import Static
class Ticking(App):
    def compose(self):
        yield Static(id="clock")
    def on_mount(self):
        self.set_interval(1.0, lambda: self.query_one("#clock", Static).update(time.strftime("%T")))
Ticking(driver_class=DRIVER).run()
"""
"""The floor any Textual program pays to redraw something every second: one line of text. Run
with Textual's own terminal driver, and with ours, whose input thread sleeps until a key comes."""

TEXTUAL_DRIVER = "from textual.drivers.linux_driver import LinuxDriver as DRIVER\n"
OUR_DRIVER = "from lollma_tui.ui.terminal_driver import ContinuableDriver as DRIVER\n"


def measure_cpu(seconds: float, settle_s: float = SETTLE_S) -> None:
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    programs: dict[str, list[str]] = {
        "lollma-tui monitor": [_installed_command(), "monitor"],
        "Textual app, one line each second": [sys.executable, "-c", TEXTUAL_DRIVER + TICKING_TEXTUAL_APP],
        "  the same on our terminal driver": [sys.executable, "-c", OUR_DRIVER + TICKING_TEXTUAL_APP],
    }
    for name, argv in {"top -d 1": ["top", "-d", "1"], "btop": ["btop"], "nvitop": ["nvitop"]}.items():
        if shutil.which(argv[0]):
            programs[name] = argv
    missing = [name for name in ("btop", "nvitop") if name not in programs]

    clock = ThreadClock()
    sampler = HardwareSampler(clock, default_sources(), interval_s=1.0)
    sampler.set_process_ids_provider(lambda: (os.getpid(),))
    with contextlib.ExitStack() as stack:
        processes = {name: stack.enter_context(in_terminal(argv, env)) for name, argv in programs.items()}
        sampler.start()
        time.sleep(settle_s)
        alive = {name: p for name, p in processes.items() if p.is_running()}
        before = {name: cpu_seconds(p) for name, p in alive.items()}
        start = time.perf_counter()
        time.sleep(seconds)
        end = time.perf_counter()
        after = {name: cpu_seconds(p) for name, p in alive.items() if p.is_running()}
    sampler.stop(2.0)
    window = end - start
    share, ticks = clock.share_between(start, end)
    print(f"CPU over {window:.0f} s, at a 1 s interval, % of one core ({os.cpu_count()} logical CPUs):")
    print(f"  {'sampler thread alone (' + str(ticks) + ' ticks)':<36} {share * 100:7.3f} %   goal < 1 %")
    for name in programs:
        if name in after:
            used = after[name] - before[name]
            print(f"  {name:<36} {used / window * 100:7.3f} %")
        else:
            print(f"  {name:<36} exited early; not measured")
    if missing:
        print(f"  not installed here, so not compared: {', '.join(missing)}")
    ours, top = "lollma-tui monitor", "top -d 1"
    if ours in after and top in after and after[top] > before[top]:
        ratio = (after[ours] - before[ours]) / (after[top] - before[top])
        verdict = "met" if ratio <= MONITOR_GOAL else "MISSED"
        print(f"  lollma-tui monitor / top -d 1 = {ratio:.2f} (goal ≤ {MONITOR_GOAL}): {verdict}")
        floor = "Textual app, one line each second"
        if floor in after:
            textual_ratio = (after[floor] - before[floor]) / (after[top] - before[top])
            print(
                f"  a Textual app redrawing one line each second / top -d 1 = {textual_ratio:.2f} "
                "(the floor for any Textual monitor)"
            )
        ours_floor = "  the same on our terminal driver"
        if ours_floor in after:
            floor_ratio = (after[ours_floor] - before[ours_floor]) / (after[top] - before[top])
            print(f"  the same on our terminal driver / top -d 1 = {floor_ratio:.2f}")


def _installed_command() -> str:
    command = Path(sys.executable).with_name("lollma-tui")
    return str(command) if command.exists() else "lollma-tui"


async def until(condition: Callable[[], bool], within: float = 120.0) -> None:
    # A plain sleep, not pilot.pause(): that waits for the screen to settle on every poll and
    # would add UI work of its own to what is measured.
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in time")
        await asyncio.sleep(0.1)


def replied(app: LollmaApp, replies_before: int) -> bool:
    chat = app.chat_screen
    return len(chat.chat_log.reply_turns()) > replies_before and not chat.is_generating


async def send_and_wait(app: LollmaApp, questions: list[str]) -> list[float]:
    """Type each question as a user would and wait for its reply; its generation tok/s each."""
    rates: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        chat = app.chat_screen
        await until(lambda: chat.models.backend.status.state == BackendState.READY)
        for question in questions:
            before = len(chat.chat_log.reply_turns())
            await pilot.click("#prompt")
            await pilot.press(*question)
            await pilot.press("enter")
            await until(functools.partial(replied, app, before))
            stats = chat.chat_log.reply_turns()[-1].message.stats
            if stats is None or not stats.gen_tps:
                raise RuntimeError("a reply came back without generation stats")
            rates.append(stats.gen_tps)
    return rates


async def replies(model: Path, panel: bool, questions: list[str], tokens: int, history: Path) -> list[float]:
    """Generation tok/s of each reply in a fresh headless app with the panel on or off."""
    from lollma_tui.ui.app import LollmaApp

    options = StartupOptions(
        load=LoadSettings(model=str(model), n_ctx=2048),
        sampling=greedy(tokens),
        new_conversation=True,
        history_path=history,
    )
    app = LollmaApp(options)
    if not panel:
        chat = app.chat_screen
        # No sampler thread and no panel updates: the panel folded away before it ever starts.
        chat.start_hardware = lambda: chat.sidebar.add_class("-hidden")  # type: ignore[method-assign]
    return await send_and_wait(app, questions)


async def backend_only(model: Path, questions: list[str], tokens: int) -> list[float]:
    """The same replies from the llama.cpp backend with no app at all: what the UI costs."""
    from lollma_tui.core.backends.base import ChatMessage, ReplyDone
    from lollma_tui.core.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(log_path=Path(tempfile.mkdtemp()) / "llama.log", keep_spare=False)
    rates: list[float] = []
    try:
        await backend.load(LoadSettings(model=str(model), n_ctx=2048))
        for question in questions:
            async for event in backend.stream_chat([ChatMessage("user", question)], greedy(tokens)):
                if isinstance(event, ReplyDone) and event.stats.gen_tps:
                    rates.append(event.stats.gen_tps)
    finally:
        await backend.close()
    return rates


async def measure_generation(model: Path, rounds: int, per_round: int, tokens: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="lollma-bench-panel-"))
    sides = ("on", "off", "no app")
    rates: dict[str, list[float]] = {side: [] for side in sides}
    print(
        f"generation, panel on vs off: {model.name}, greedy, {tokens} tokens max, "
        f"{rounds} rounds × {per_round} replies per side, a fresh app per side; "
        "'no app' is the backend alone, for scale"
    )
    print(f"{'round':>5}  {'on tok/s':>16}  {'off tok/s':>16}  {'no app tok/s':>16}")
    for round_ in range(rounds):
        questions = [QUESTIONS[(round_ * per_round + i) % len(QUESTIONS)] for i in range(per_round)]
        order = sides if round_ % 2 == 0 else tuple(reversed(sides))
        figures: dict[str, list[float]] = {}
        for side in order:
            if side == "no app":
                figures[side] = await backend_only(model, questions, tokens)
            else:
                history = folder / f"history-{round_}-{side}.db"
                figures[side] = await replies(model, side == "on", questions, tokens, history)
            rates[side] += figures[side]
        print(
            f"{round_ + 1:>5}  "
            + "  ".join(f"{' '.join(f'{r:6.1f}' for r in figures[side]):>16}" for side in sides)
        )
    on, off, bare = (statistics.median(rates[side]) for side in sides)
    verdict = "met" if on / off >= 0.98 else "MISSED"
    print(
        f"median: panel on {on:.1f} tok/s, off {off:.1f} tok/s, ratio {on / off:.3f} (goal ≥ 0.98): {verdict}"
    )
    print(f"the app with its panel against the backend alone: {on:.1f} / {bare:.1f} = {on / bare:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="the CPU window")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replies", type=int, default=2, help="replies per side and round")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--model", type=Path, help="GGUF file (default: the demo model)")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument(
        "--quick", action="store_true", help=QUICK_HELP + ": a 2 s window, one reply per side, the tiny model"
    )
    args = parser.parse_args()
    settle_s = SETTLE_S
    if args.quick:
        args.seconds, args.rounds, args.replies, args.tokens, settle_s = 2.0, 1, 1, 8, 1.5
    if not args.skip_cpu:
        measure_cpu(args.seconds, settle_s)
    if not args.skip_generation:
        model = args.model or (tiny_model(Path(tempfile.mkdtemp())) if args.quick else ensure_demo_model())
        asyncio.run(measure_generation(model, args.rounds, args.replies, args.tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main())

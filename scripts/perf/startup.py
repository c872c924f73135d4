"""Time to first frame of the installed `lollma-tui` command, next to a bare Textual app.

    uv run python scripts/perf/startup.py [--runs 5] [--quick]

Each command runs in a pseudo-terminal (80×24); the clock stops when the first frame's text
(the chat input's placeholder, or the bare app's label) has been written. The bare Textual app
shows the floor that Python plus Textual set on this machine; the ratio is our cost above it.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from _support import QUICK_HELP

GOAL_RATIO = 1.3
"""The first frame may take at most this many times a bare Textual app's."""

BARE_APP = """
from textual.app import App
from textual.widgets import Static
class Bare(App):
    def compose(self):
        yield Static("bare-textual-ready")
Bare().run()
"""


_CSI = re.compile(rb"\x1b\[[0-9;:?<>=]*[ -/]*[@-~]")
"""A control sequence (a style, a cursor move) in what the program wrote."""


def time_to_text(
    argv: list[str], marker: bytes, env: dict[str, str], timeout: float = 30.0
) -> tuple[float, float]:
    """Seconds until `marker` was written, and the CPU seconds the program had used by then."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    started = time.perf_counter()
    seen = b""
    try:
        while True:
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{argv[0]} showed no first frame in {timeout} s")
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                raise RuntimeError(f"{argv[0]} exited before its first frame") from None
            seen += chunk
            # Styles split the text: the prompt's cursor sits on the "M" of its placeholder.
            if marker in _CSI.sub(b"", seen):
                elapsed = time.perf_counter() - started
                os.kill(pid, signal.SIGKILL)
                _, _, usage = os.wait4(pid, 0)
                pid = 0
                return elapsed, usage.ru_utime + usage.ru_stime
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def compile_package(env: dict[str, str]) -> Path:
    """Write the bytecode of the `lollma_tui` this environment imports, as an install does
    (uv and pip compile it): with PYTHONDONTWRITEBYTECODE set, a checkout would otherwise be
    compiled from source at every start."""
    where = subprocess.run(
        [sys.executable, "-c", "import lollma_tui, os; print(os.path.dirname(lollma_tui.__file__))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run([sys.executable, "-m", "compileall", "-q", where], env=env, check=True)
    return Path(where)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP + ": one timed run each")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    bindir = Path(sys.executable).parent
    command = str(bindir / "lollma-tui")
    scratch = Path(tempfile.mkdtemp())
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "LOLLMA_STATE_DIR": str(scratch / "state"),
        "LOLLMA_DATA_DIR": str(scratch / "data"),
        "LOLLMA_CONFIG_DIR": str(scratch / "config"),
    }
    bare_script = scratch / "bare.py"
    bare_script.write_text(BARE_APP)
    package = compile_package(env)
    ours: list[tuple[float, float]] = []
    bare: list[tuple[float, float]] = []
    # Untimed warm-up of both, so the page cache is hot for every timed run.
    time_to_text([command], b"Message, or /command", env)
    time_to_text([sys.executable, str(bare_script)], b"bare-textual-ready", env)
    print(f"lollma-tui from {package}; wall time to the first frame, and CPU time used by then")
    for run in range(args.runs):
        ours.append(time_to_text([command], b"Message, or /command", env))
        bare.append(time_to_text([sys.executable, str(bare_script)], b"bare-textual-ready", env))
        print(
            f"run {run + 1}: lollma-tui {ours[-1][0] * 1000:.0f} ms ({ours[-1][1] * 1000:.0f} ms CPU) · "
            f"bare Textual app {bare[-1][0] * 1000:.0f} ms ({bare[-1][1] * 1000:.0f} ms CPU)"
        )
    ours_wall, ours_cpu = (statistics.median(run[i] for run in ours) for i in (0, 1))
    bare_wall, bare_cpu = (statistics.median(run[i] for run in bare) for i in (0, 1))
    print(
        f"median first frame: lollma-tui {ours_wall * 1000:.0f} ms, "
        f"bare Textual app {bare_wall * 1000:.0f} ms, "
        f"ratio {ours_wall / bare_wall:.2f} (goal ≤ {GOAL_RATIO}: "
        f"{'met' if ours_wall / bare_wall <= GOAL_RATIO else 'MISSED'})"
    )
    print(
        f"median CPU to the first frame (steadier than wall time on a shared machine): lollma-tui "
        f"{ours_cpu * 1000:.0f} ms, bare {bare_cpu * 1000:.0f} ms, ratio {ours_cpu / bare_cpu:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

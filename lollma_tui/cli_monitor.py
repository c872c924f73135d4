"""`lollma-tui monitor`: parse its options and run the monitor app."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lollma_tui.core.hardware.sampler import DEFAULT_INTERVAL_S, IntervalError, validate_interval


def _interval(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {value!r}") from None
    try:
        return validate_interval(seconds)
    except IntervalError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _port(value: str) -> int:
    if not (value.isdecimal() and 1 <= int(value) <= 65535):
        raise argparse.ArgumentTypeError(f"expected a TCP port from 1 to 65535, not {value!r}")
    return int(value)


def _pid(value: str) -> int:
    if not (value.isdecimal() and int(value) > 0):
        raise argparse.ArgumentTypeError(f"expected a process id (a whole number above 0), not {value!r}")
    return int(value)


def build_monitor_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lollma-tui monitor",
        description="Watch CPU, RAM, GPUs and local LLM servers, without loading a model.",
    )
    parser.add_argument(
        "--interval",
        "-i",
        type=_interval,
        default=DEFAULT_INTERVAL_S,
        metavar="SECONDS",
        help=f"sampling interval, 0.25 to 5 (default {DEFAULT_INTERVAL_S:g}); + and - change it live",
    )
    parser.add_argument(
        "--theme", metavar="NAME", help="colour theme (lollma-dark, lollma-light, lollma-amber, …)"
    )
    parser.add_argument(
        "--pid",
        type=_pid,
        action="append",
        default=[],
        metavar="PID",
        help="also show this process and its children (repeatable)",
    )
    parser.add_argument(
        "--jsonl",
        action="store_true",
        help="no screen: print one hardware snapshot per line as JSON (what --hw-host runs remotely)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        metavar="PORT",
        help="with --jsonl: also follow the process listening on this TCP port (an LLM server)",
    )
    return parser


def monitor_main(argv: Sequence[str] | None = None) -> int:
    """Run the monitor until the user quits; bad options exit with status 2 (argparse)."""
    parser = build_monitor_parser()
    args = parser.parse_args(argv)
    if args.port is not None and not args.jsonl:
        # The full-screen monitor follows no server: accepted, the flag would quietly do nothing.
        parser.error("--port works with --jsonl only")
    if args.jsonl:
        from lollma_tui.cli_monitor_jsonl import run_jsonl

        return run_jsonl(args.interval, args.pid, args.port)
    from lollma_tui.cli import screen_in_utf8, terminal_problem

    problem = terminal_problem()
    if problem is not None:
        parser.exit(2, f"lollma-tui monitor: error: {problem.replace('lollma-tui', 'lollma-tui monitor')}\n")
    from lollma_tui.core.config_file import read_config
    from lollma_tui.ui.monitor_app import MonitorApp
    from lollma_tui.ui.themes import DEFAULT_THEME

    theme = args.theme or read_config().theme or DEFAULT_THEME
    screen_in_utf8()
    app = MonitorApp(interval_s=args.interval, theme=theme, process_ids=args.pid)
    app.run()
    if app.ended_by is not None:
        return 128 + app.ended_by  # as a shell reports a process a signal ended
    return app.return_code or 0  # 1 when Textual ended the app on an error it showed

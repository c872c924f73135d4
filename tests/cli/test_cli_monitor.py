"""`lollma-tui monitor` options."""

from __future__ import annotations

from typing import Any

import pytest

from lollma_tui.cli_monitor import build_monitor_parser, monitor_main
from lollma_tui.ui.monitor_app import MonitorApp


def test_defaults() -> None:
    args = build_monitor_parser().parse_args([])
    assert args.interval == 1.0 and args.theme is None and args.pid == []


@pytest.mark.parametrize("value", ["0.1", "6", "nan", "fast"])
def test_an_interval_out_of_range_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        monitor_main(["--interval", value])
    assert exit_info.value.code == 2
    assert "--interval" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["99999", "-1", "0", "http"])
def test_a_port_that_is_none_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Accepted before, it matched no process ever, without a word.
    with pytest.raises(SystemExit) as exit_info:
        monitor_main(["--jsonl", "--port", value])
    assert exit_info.value.code == 2
    assert "expected a TCP port from 1 to 65535" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-5", "x"])
def test_a_pid_that_is_none_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    # 0 and -5 were accepted, then shown as "pid -5 not running", or dropped unsaid.
    with pytest.raises(SystemExit) as exit_info:
        monitor_main([f"--pid={value}"])
    assert exit_info.value.code == 2
    assert "expected a process id" in capsys.readouterr().err


def test_a_port_without_jsonl_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # The full-screen monitor follows no server: it ran, and "no LLM server running" stayed.
    with pytest.raises(SystemExit) as exit_info:
        monitor_main(["--port", "8080"])
    assert exit_info.value.code == 2
    assert "--port works with --jsonl only" in capsys.readouterr().err


def test_options_reach_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[MonitorApp] = []

    def run(self: MonitorApp, *args: Any, **kwargs: Any) -> None:
        started.append(self)

    monkeypatch.setattr(MonitorApp, "run", run)
    monkeypatch.setattr("lollma_tui.cli.terminal_problem", lambda: None)  # no terminal under pytest
    assert monitor_main(["--interval", "0.5", "--theme", "lollma-amber", "--pid", "1", "--pid", "2"]) == 0
    (app,) = started
    assert app.hardware.interval_s == 0.5
    assert app.requested_theme == "lollma-amber"
    assert app.watched_pids == (1, 2)


def test_an_app_textual_ends_on_an_error_exits_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    # Textual shows the error and ends the app; the command exited 0 all the same.
    real_run = MonitorApp.run

    def headless(self: MonitorApp, *args: Any, **kwargs: Any) -> Any:
        return real_run(self, headless=True, size=(80, 24))

    def failing_mount(self: MonitorApp) -> None:
        raise RuntimeError("a bug in the app")

    monkeypatch.setattr(MonitorApp, "run", headless)
    monkeypatch.setattr(MonitorApp, "on_mount", failing_mount)
    monkeypatch.setattr("lollma_tui.cli.terminal_problem", lambda: None)
    assert monitor_main(["--interval", "0.5"]) == 1

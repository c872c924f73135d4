"""The hosts view on a bare app: one row per host, server text shown literally, Enter picks one."""

from __future__ import annotations

from textual.app import App
from textual.widgets import DataTable, Static

from lollma_tui.core.hardware.ssh_target import SshTarget
from lollma_tui.core.host_reports import HostReport
from lollma_tui.core.hosts import HostEntry
from lollma_tui.core.settings import BackendKind
from lollma_tui.ui.screens.hosts import HostsScreen

REPORTS = [
    HostReport(HostEntry("local", BackendKind.LLAMA_CPP), True, "llama.cpp in this app"),
    HostReport(
        HostEntry("box", BackendKind.OPENAI, "http://box:8080/v1", hw=SshTarget("box", "me")),
        True,
        "llama-server b4500",
        models=("a", "b", "c", "d", "e"),
        loaded=("a",),
        gpu_summary="2 GPUs: NVIDIA RTX 4090, RTX 3090",
    ),
    HostReport(
        HostEntry("evil", BackendKind.OPENAI, "http://evil/v1"), False, "[bold red]boom[/]\x1b[2J\x07"
    ),
]


class HostApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.chosen: list[str | None] = []

    def on_mount(self) -> None:
        self.push_screen(HostsScreen([r.entry for r in REPORTS], REPORTS), self.chosen.append)


async def test_rows_show_each_host_literally_and_enter_picks_one() -> None:
    app = HostApp()
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == 3
        cells = [str(cell) for cell in table.get_row("box")]
        assert cells[:4] == ["  box", "openai", "http://box:8080/v1", "✓ llama-server b4500"]
        assert cells[4] == "a, b, c (+2)" and cells[5] == "a" and cells[6].startswith("2 GPUs")
        evil = [str(cell) for cell in table.get_row("evil")]
        # Markup stays text, and the control characters are gone.
        assert evil[3] == "✗ [bold red]boom[/]"  # shown as text, the escape sequence gone whole
        await pilot.press("down", "enter")
        await pilot.pause()
    assert app.chosen == ["box"]


async def test_escape_closes_without_choosing() -> None:
    app = HostApp()
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert app.chosen == [None]


async def test_rows_wait_for_the_reports_and_mark_the_host_in_use() -> None:
    app = HostApp()
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause()
        screen = HostsScreen([r.entry for r in REPORTS], active="box")
        await app.push_screen(screen)
        await pilot.pause()
        table = screen.query_one(DataTable)
        assert table.cursor_row == 1, "the view opens on the host the chat is on"
        assert [str(c) for c in table.get_row("box")][:4] == [
            "▶ box",
            "openai",
            "http://box:8080/v1",
            "asking…",
        ]
        screen.reports = (REPORTS[1],)
        await pilot.pause()
        assert str(table.get_row("box")[3]) == "✓ llama-server b4500"
        assert str(table.get_row("local")[3]) == "asking…"


async def test_a_long_state_is_cut_in_its_row_and_the_highlighted_host_is_shown_whole() -> None:
    # A server's error is a sentence or two; in its row it pushed the models, loaded and GPU
    # columns off to the right at 110 columns, and its own end was cut with no way to read it.
    reason = (
        "No OpenAI-compatible server answers at http://10.0.0.7:8080/v1 (connection refused): "
        "is llama-server running there, and does the address name its port?"
    )
    down = HostReport(HostEntry("far", BackendKind.OPENAI, "http://10.0.0.7:8080/v1"), False, reason)
    reports = [*REPORTS[:2], down]
    app = App[None]()
    async with app.run_test(size=(110, 30)) as pilot:
        screen = HostsScreen([r.entry for r in reports], reports)
        await app.push_screen(screen)
        await pilot.pause()
        table = screen.query_one(DataTable)
        state = str(table.get_row("far")[3])
        assert state.startswith("✗ No OpenAI-compatible server") and state.endswith("…")
        assert len(state) <= 42
        detail = screen.query_one("#hosts-detail", Static)
        assert str(detail.render()).startswith("local · llama.cpp · this machine\nllama.cpp in this app")
        await pilot.press("down")
        await pilot.pause()
        assert "models: a, b, c, d, e\nloaded: a\nGPUs: 2 GPUs: NVIDIA RTX 4090, RTX 3090" in str(
            detail.render()
        )
        await pilot.press("down")
        await pilot.pause()
        shown = str(detail.render())
        assert reason in shown and "models:" not in shown
        assert detail.region.right <= 110 and detail.region.height >= 3  # wrapped, on screen

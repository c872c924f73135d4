"""The hosts view: every configured machine, whether it answers, its models, what is loaded.

Takes plain `HostReport`s (core/host_reports.py); asking the hosts is the caller's work. Choosing
a row dismisses the screen with that host's name (what `/host NAME` will do); Escape, with None.
Server text is shown literally: every cell is a `Text` (no markup parsing) with its control
characters dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from lollma_tui.core.host_reports import HostReport
from lollma_tui.ui.literal import literal_text

MODELS_SHOWN = 3


def _models_cell(report: HostReport) -> str:
    if not report.models:
        return "—"
    shown = ", ".join(report.models[:MODELS_SHOWN])
    more = len(report.models) - MODELS_SHOWN
    return shown + (f" (+{more})" if more > 0 else "")


def _cell(text: str, style: str = "") -> Text:
    return literal_text(text, one_line=True, style=style)


def host_row(report: HostReport) -> tuple[Text, ...]:
    entry = report.entry
    return (
        _cell(entry.name, "bold"),
        _cell(str(entry.kind)),
        _cell(entry.url or "this machine"),
        _cell("● " + report.message, "green" if report.reachable else "red"),
        _cell(_models_cell(report)),
        _cell(", ".join(report.loaded) or "—"),
        _cell(report.gpu_summary or ("via ssh " + str(entry.hw) if entry.hw else "—")),
    )


class HostsScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    HostsScreen { align: center middle; }
    #hosts-dialog { width: 90%; height: auto; max-height: 90%; border: round $accent; padding: 0 1; }
    #hosts-table { height: auto; max-height: 20; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close", id="hosts.close")]

    def __init__(self, reports: Sequence[HostReport]) -> None:
        super().__init__()
        self.reports = tuple(reports)

    def compose(self) -> ComposeResult:
        with Vertical(id="hosts-dialog"):
            yield Static("Hosts — Enter moves the chat there, Esc closes", markup=False)
            yield DataTable(id="hosts-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("host", "kind", "address", "state", "models", "loaded", "GPUs")
        for report in self.reports:
            table.add_row(*host_row(report), key=report.entry.name)
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    def action_close(self) -> None:
        self.dismiss(None)

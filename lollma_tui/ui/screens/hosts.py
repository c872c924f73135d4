"""The hosts view: every known machine, whether it answers, its models, what is loaded, its GPUs.

It opens at once with one row per host ("asking…") and shows the `HostReport`s
(core/host_reports.py) when the chat screen hands them down; asking the hosts is the caller's
work. Choosing a row dismisses the screen with that host's name (what `/host NAME` does);
Escape, with None. Server text is shown literally: every cell is a `Text` (no markup parsing)
without control characters (`ui/literal.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from lollma_tui.core.checked import one_line
from lollma_tui.core.host_reports import HostReport
from lollma_tui.core.hosts import HostEntry
from lollma_tui.ui.literal import literal, literal_text

MODELS_SHOWN = 3
DETAIL_MODELS_SHOWN = 24
STATE_WIDTH = 40
"""A server's state past this many characters (an error's whole text) is cut in its row; the
line under the table gives the highlighted host's in full."""
ASKING = "asking…"


def _models_cell(report: HostReport, shown: int = MODELS_SHOWN) -> str:
    if not report.models:
        return "—"
    listed = ", ".join(report.models[:shown])
    more = len(report.models) - shown
    return listed + (f" (+{more})" if more > 0 else "")


def _gpus(report: HostReport) -> str:
    entry = report.entry
    return report.gpu_summary or ("via ssh " + str(entry.hw) if entry.hw else "—")


def _cell(text: str, style: str = "") -> Text:
    return literal_text(text, one_line=True, style=style)


def _head(entry: HostEntry, active: bool) -> tuple[Text, ...]:
    return (
        _cell(("▶ " if active else "  ") + entry.name, "bold"),
        _cell(str(entry.kind)),
        _cell(entry.url or "this machine"),
    )


def _state_cell(report: HostReport) -> Text:
    # The mark says it, not only its colour (NO_COLOR made the red text all but invisible);
    # the reason is in the text's own colour, readable in any theme.
    mark = Text("✓ ", "green") if report.reachable else Text("✗ ", "red")
    return mark + _cell(one_line(report.message, STATE_WIDTH))


def host_row(report: HostReport, *, active: bool = False) -> tuple[Text, ...]:
    entry = report.entry
    return (
        *_head(entry, active),
        _state_cell(report),
        _cell(_models_cell(report)),
        _cell(", ".join(report.loaded) or "—"),
        _cell(_gpus(report)),
    )


def host_detail(entry: HostEntry, report: HostReport | None) -> str:
    """The highlighted host in full, under the table: a row cuts a long state and lists only the
    first models, and on a narrow terminal the last columns are off to the right."""
    where = entry.url or "this machine"
    if report is None:
        return f"{entry.name} · {entry.kind} · {where}\n{ASKING}"
    lines = [f"{entry.name} · {entry.kind} · {where}", report.message]
    if report.reachable or report.models:
        lines.append(f"models: {_models_cell(report, DETAIL_MODELS_SHOWN)}")
        lines.append(f"loaded: {', '.join(report.loaded) or '—'}")
    lines.append(f"GPUs: {_gpus(report)}")
    return "\n".join(lines)


def waiting_row(entry: HostEntry, *, active: bool = False) -> tuple[Text, ...]:
    return (*_head(entry, active), _cell(ASKING, "italic"), _cell(""), _cell(""), _cell(""))


class HostsScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    HostsScreen { align: center middle; }
    #hosts-dialog { width: 90%; height: auto; max-height: 90%; border: round $accent; padding: 0 1; }
    #hosts-table { height: auto; max-height: 20; }
    #hosts-detail { height: auto; margin-top: 1; color: $text-muted; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close", id="hosts.close")]

    reports: reactive[tuple[HostReport, ...]] = reactive(tuple, init=False)
    """What each host answered; rows of hosts not in it yet say "asking…"."""

    def __init__(
        self, hosts: Sequence[HostEntry], reports: Sequence[HostReport] = (), *, active: str | None = None
    ) -> None:
        super().__init__()
        self.hosts = tuple(hosts) or tuple(r.entry for r in reports)
        self.active = active
        """The host the chat is on now, marked ▶."""
        self.set_reactive(HostsScreen.reports, tuple(reports))

    def compose(self) -> ComposeResult:
        with Vertical(id="hosts-dialog"):
            yield Static("Hosts — Enter moves the chat there, Esc closes", markup=False)
            yield DataTable(id="hosts-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="hosts-detail", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("host", "kind", "address", "state", "models", "loaded", "GPUs")
        self._fill(table)
        names = [entry.name for entry in self.hosts]
        if self.active in names:
            # Start on the host the chat is on: Enter there changes nothing, and the others are
            # a key away.
            table.move_cursor(row=names.index(self.active))
        table.focus()

    def watch_reports(self) -> None:
        if self.is_mounted:
            self._fill(self.query_one(DataTable))

    def _fill(self, table: DataTable[Text]) -> None:
        by_name = {r.entry.name: r for r in self.reports}
        row = table.cursor_row
        table.clear()
        for entry in self.hosts:
            report = by_name.get(entry.name)
            active = entry.name == self.active
            cells = host_row(report, active=active) if report else waiting_row(entry, active=active)
            table.add_row(*cells, key=entry.name)
        table.move_cursor(row=row)
        self._show_detail(table.cursor_row)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.cursor_row)

    def _show_detail(self, row: int) -> None:
        if not 0 <= row < len(self.hosts):
            return
        entry = self.hosts[row]
        report = next((r for r in self.reports if r.entry.name == entry.name), None)
        self.query_one("#hosts-detail", Static).update(literal(host_detail(entry, report)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    def action_close(self) -> None:
        self.dismiss(None)

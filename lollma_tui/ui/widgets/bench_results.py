"""The bench results table: llama-bench's columns, filled a row at a time as rows are measured.

The columns come from the core's formatters (the CLI prints the same ones), with TTFT and peak
RSS always shown; cells are Rich `Text` of `plain` text, so a model name is never read as markup
and its control characters never reach the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from lollma_tui.core.bench.formatters import Column, layout_for_sweep, repack_column
from lollma_tui.core.bench.records import BenchRecord
from lollma_tui.core.bench.sweep import SweepSpec
from lollma_tui.ui.literal import plain

EMPTY_CELL = "—"


def columns_for(spec: SweepSpec | None) -> list[Column]:
    """llama-bench's columns plus any parameter the sweep moved off its default."""
    if spec is None:
        return layout_for_sweep(2048, 512, False, chat=True, llama=True)
    # chat=True keeps the TTFT column even when only pp/tg rows come (they show a dash).
    return layout_for_sweep(
        spec.batch, spec.n_ubatch, spec.flash_attn, chat=True, llama=True, repack=repack_column(spec.repack)
    )


def cell(column: Column, record: BenchRecord) -> Text:
    value = plain(column.value(record), one_line=True).strip()
    return Text(value or EMPTY_CELL, justify="right" if column.right else "left", no_wrap=True)


class BenchTable(DataTable[Text]):
    """Rows of one run, in the order they were measured; `records` gives them back."""

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, name=name, id=id, classes=classes)
        self._columns: list[Column] = []
        self._records: list[BenchRecord] = []

    def on_mount(self) -> None:
        self.start(None)

    @property
    def records(self) -> tuple[BenchRecord, ...]:
        return tuple(self._records)

    def start(self, spec: SweepSpec | None) -> None:
        """Empty the table and lay its columns out for `spec` (None: llama-bench's defaults)."""
        self.clear(columns=True)
        self._records = []
        self._columns = columns_for(spec)
        for column in self._columns:
            self.add_column(column.title, key=column.title)

    def add_record(self, record: BenchRecord) -> None:
        self._records.append(record)
        self.add_row(*(cell(c, record) for c in self._columns), key=str(len(self._records)))

    def column_titles(self) -> Sequence[str]:
        return [c.title for c in self._columns]

    def row_texts(self, index: int) -> list[str]:
        """The cells of row `index` as shown, for checks and copy-paste."""
        return [str(value) for value in self.get_row_at(index)]

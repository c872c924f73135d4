"""Print rows as llama-bench does: a markdown table, CSV, JSON or JSON lines.

`RowWriter` prints each row as soon as it is measured (as llama-bench does), so a stopped run
still leaves a complete table or a valid JSON document behind; `format_records` formats a
finished list in one go.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from lollma_tui.core.bench.compare import Comparison
from lollma_tui.core.bench.records import BenchRecord
from lollma_tui.core.safe_text import clean_text

OutputFormat = Literal["md", "csv", "json", "jsonl"]
FORMATS: tuple[OutputFormat, ...] = ("md", "csv", "json", "jsonl")

_DEFAULT_BATCH = 2048
_DEFAULT_UBATCH = 512
_CSV_SKIP = frozenset({"samples_ns", "samples_ts", "samples_ttft_ns", "hardware"})


def format_size(n_bytes: int | None) -> str:
    """llama-bench's size column ("1.50 GiB"), so the tables compare with its own."""
    if not n_bytes:
        return "—"
    if n_bytes >= 1 << 30:
        return f"{n_bytes / (1 << 30):.2f} GiB"
    return f"{n_bytes / (1 << 20):.2f} MiB"


def format_params(count: int) -> str:
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return str(count)


def format_rate(avg: float, stddev: float) -> str:
    return f"{avg:.2f} ± {stddev:.2f}"


def _ngl(record: BenchRecord) -> str:
    requested = record.n_gpu_layers_requested
    if requested == "server":
        return requested  # an OpenAI-compatible server does not say
    if requested in ("auto", "all") and requested != str(record.n_gpu_layers):
        return f"{requested} ({record.n_gpu_layers})"
    return str(record.n_gpu_layers)


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: int
    value: Callable[[BenchRecord], str]
    right: bool = True


def _columns(batch: bool, ubatch: bool, fa: bool, chat: bool, repack: bool = False) -> list[Column]:
    columns = [
        Column("model", 30, lambda r: r.model_type or r.model_name, right=False),
        Column("size", 10, lambda r: format_size(r.model_size)),
        Column("params", 9, lambda r: format_params(r.model_n_params) if r.model_n_params else "—"),
        Column("backend", 10, lambda r: r.backends, right=False),
        Column("ngl", 9, _ngl),
        Column("threads", 7, lambda r: str(r.n_threads) if r.n_threads else "default"),
    ]
    if batch:
        columns.append(Column("n_batch", 7, lambda r: str(r.n_batch)))
    if ubatch:
        columns.append(Column("n_ubatch", 8, lambda r: str(r.n_ubatch)))
    if fa:
        columns.append(Column("fa", 2, lambda r: "1" if r.flash_attn else "0"))
    if repack:
        columns.append(Column("repack", 6, lambda r: "" if r.repack is None else "1" if r.repack else "0"))
    columns.append(Column("test", 13, lambda r: r.test))
    columns.append(Column("t/s", 20, lambda r: format_rate(r.avg_ts, r.stddev_ts)))
    if chat:
        columns.append(
            Column("ttft", 9, lambda r: f"{r.avg_ttft_ns / 1e6:.0f} ms" if r.avg_ttft_ns is not None else "")
        )
    columns.append(Column("peak RSS", 10, lambda r: format_size(r.peak_rss_bytes)))
    return columns


def layout_for(records: Sequence[BenchRecord], *, chat: bool | None = None) -> list[Column]:
    """Columns for these rows: llama-bench's, plus any parameter that is not at its default."""
    llama = [r for r in records if r.backend_impl == "llama-cpp-python" and not r.is_chat]
    return _columns(
        batch=any(r.n_batch != _DEFAULT_BATCH for r in llama),
        ubatch=any(r.n_ubatch != _DEFAULT_UBATCH for r in llama),
        fa=any(r.flash_attn for r in records),
        chat=any(r.is_chat for r in records) if chat is None else chat,
        repack=any(r.repack is False for r in records),
    )


def repack_column(modes: Sequence[str]) -> bool:
    """Whether a sweep's rows need a repack column: repacking swept, or asked "auto" on a CPU
    whose repacked path crashes for many files (an AMX Xeon), where rows of one table then
    differ in it and their speeds are not comparable without it."""
    from lollma_tui.core.backends.repack import cpu_has_amx

    return tuple(modes) != ("auto",) or cpu_has_amx()


def layout_for_sweep(
    n_batch: int, n_ubatch: int, flash_attn: bool, chat: bool, llama: bool, repack: bool = False
) -> list[Column]:
    """Columns decided before any row exists, for a table printed row by row."""
    return _columns(
        batch=llama and n_batch != _DEFAULT_BATCH,
        ubatch=llama and n_ubatch != _DEFAULT_UBATCH,
        fa=flash_attn,
        chat=chat,
        repack=llama and repack,
    )


def _cell(column: Column, text: str) -> str:
    # A model's name comes from its file or its GGUF metadata: an escape sequence in either
    # would retitle or recolour the terminal the table is printed to.
    text = clean_text(text, keep_lines=False)
    return text.rjust(column.width) if column.right else text.ljust(column.width)


def markdown_header(columns: Sequence[Column]) -> str:
    titles = "| " + " | ".join(_cell(c, c.title) for c in columns) + " |"
    rules = (
        "| " + " | ".join(("-" * (c.width - 1) + ":") if c.right else "-" * c.width for c in columns) + " |"
    )
    return f"{titles}\n{rules}"


def markdown_row(columns: Sequence[Column], record: BenchRecord) -> str:
    return "| " + " | ".join(_cell(c, c.value(record).replace("|", "/")) for c in columns) + " |"


def csv_fields() -> list[str]:
    return [name for name in BenchRecord().to_dict() if name not in _CSV_SKIP]


def _csv_value(value: Any) -> Any:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"  # llama-bench's CSV writes its flags as numbers
    return "" if value is None else value


def _csv_line(values: Sequence[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


class TextSink(Protocol):
    """Where `RowWriter` writes: a file, or a stream guarded against its reader leaving."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class RowWriter:
    """Prints rows to `out` as they come; call `finish` once at the end (also after a stop)."""

    def __init__(self, fmt: OutputFormat, out: TextSink, columns: Sequence[Column] | None = None) -> None:
        self.fmt = fmt
        self.out = out
        self.columns = list(columns) if columns is not None else _columns(False, False, False, False)
        self.count = 0

    def row(self, record: BenchRecord) -> None:
        first = self.count == 0
        self.count += 1
        if self.fmt == "md":
            if first:
                self.out.write(markdown_header(self.columns) + "\n")
            self.out.write(markdown_row(self.columns, record) + "\n")
        elif self.fmt == "csv":
            fields = csv_fields()
            if first:
                self.out.write(_csv_line(fields))
            data = record.to_dict()
            self.out.write(_csv_line([_csv_value(data[f]) for f in fields]))
        elif self.fmt == "jsonl":
            self.out.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
        else:
            text = json.dumps(record.to_dict(), ensure_ascii=False, indent=2)
            indented = "\n".join("  " + line for line in text.splitlines())
            self.out.write(("[\n" if first else ",\n") + indented)
        self.out.flush()

    def finish(self, build: str = "") -> None:
        if self.fmt == "md" and self.count and build:
            self.out.write(f"\nbuild: {build}\n")
        elif self.fmt == "json":
            self.out.write("\n]\n" if self.count else "[]\n")
        self.out.flush()


def format_records(records: Sequence[BenchRecord], fmt: OutputFormat, build: str = "") -> str:
    buffer = io.StringIO()
    writer = RowWriter(fmt, buffer, layout_for(records))
    for record in records:
        writer.row(record)
    writer.finish(build)
    return buffer.getvalue()


_NOT_COMPARED = frozenset({"size", "params", "backend", "peak RSS"})
"""The same for a configuration in both runs, so only width in the comparison."""


def format_comparison(comparisons: Sequence[Comparison]) -> str:
    """A markdown table: each row against the last saved run of the same configuration.

    A change marked "~" is within the two runs' combined standard deviations: noise; "?" has
    a run timed once, whose noise is not known. The rows keep the table's columns for what
    was swept (repack, batch sizes, flash attention), or two rows would read the same.
    """
    shown = [
        c for c in layout_for([c.record for c in comparisons], chat=False) if c.title not in _NOT_COMPARED
    ]
    columns = [*shown, Column("before", 20, lambda r: ""), Column("change", 10, lambda r: "")]
    lines = [markdown_header(columns)]
    for comparison in comparisons:
        record, previous = comparison.record, comparison.previous
        if previous is None:
            before, change = "new", ""
        else:
            before = format_rate(previous.avg_ts, previous.stddev_ts)
            delta = comparison.change
            mark = "" if comparison.significant else " ~" if comparison.noise_known else " ?"
            change = "" if delta is None else f"{delta * 100:+.1f} %{mark}"
        cells = [_cell(c, c.value(record)) for c in columns[:-2]]
        cells += [_cell(columns[-2], before), _cell(columns[-1], change)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

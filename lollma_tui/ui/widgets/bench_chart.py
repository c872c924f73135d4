"""A horizontal bar chart of tokens/s per configuration, one group per pp/tg test.

Bars are drawn with block characters in eighths of a cell, each group scaled to its own fastest
row, so pp512 (thousands of t/s) and tg128 (tens) both use the full width. Colours come from the
component classes, which ``ui/bench_screens.tcss`` maps to theme variables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual.app import RenderResult
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from lollma_tui.core.bench.records import BenchRecord
from lollma_tui.ui.literal import plain

CHARTED_KINDS: tuple[str, ...] = ("pp", "tg")
"""Only llama-bench's synthetic tests: a chat row's rate measures something else."""

EIGHTHS = " ▏▎▍▌▋▊▉"
FULL_BLOCK = "█"
EMPTY_TEXT = "bars appear as rows are measured"
_LABEL_MAX = 28
_VALUE_WIDTH = 10


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    rate: float
    best: bool = False


@dataclass(frozen=True, slots=True)
class BarGroup:
    test: str
    """llama-bench's test name: "pp512", "tg128", "tg128 @ d512"."""
    kind: str
    bars: tuple[Bar, ...]


def bar_label(record: BenchRecord, *, with_model: bool) -> str:
    threads = f"{record.n_threads}t" if record.n_threads else "default t"
    label = f"{record.quant or '?'} · ngl {record.n_gpu_layers} · {threads}"
    # The model's name comes from its file; the label is drawn as plain text beside the bar.
    return plain(f"{record.model_name} {label}" if with_model else label, one_line=True)


def bar_groups(records: Iterable[BenchRecord]) -> tuple[BarGroup, ...]:
    """The rows to chart, grouped by test in the order the tests first appear."""
    charted = [r for r in records if r.kind in CHARTED_KINDS and r.avg_ts > 0]
    with_model = len({r.model_name for r in charted}) > 1
    by_test: dict[str, list[BenchRecord]] = {}
    for record in charted:
        by_test.setdefault(record.test, []).append(record)
    groups: list[BarGroup] = []
    for test, rows in by_test.items():
        fastest = max(r.avg_ts for r in rows)
        bars = tuple(
            Bar(bar_label(r, with_model=with_model), r.avg_ts, best=r.avg_ts == fastest and len(rows) > 1)
            for r in rows
        )
        groups.append(BarGroup(test, rows[0].kind, bars))
    return tuple(groups)


def bar_text(fraction: float, width: int) -> str:
    """A bar `fraction` of `width` cells long, to an eighth of a cell; at least a sliver."""
    if width <= 0:
        return ""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    eighths = max(1, eighths)
    full, rest = divmod(eighths, 8)
    return FULL_BLOCK * full + (EIGHTHS[rest] if rest else "")


def rate_text(rate: float) -> str:
    return f"{rate:,.1f}" if rate < 100_000 else f"{rate:,.0f}"


class BenchChart(Widget):
    """Shows `records` (set by the bench screen) as bars; non-pp/tg rows are left out."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "bench-chart--heading",
        "bench-chart--label",
        "bench-chart--pp",
        "bench-chart--tg",
        "bench-chart--value",
        "bench-chart--best",
    }
    """
    | Class | Description |
    | :- | :- |
    | `bench-chart--heading` | A test's name above its bars. |
    | `bench-chart--label` | The configuration beside a bar. |
    | `bench-chart--pp` | Prompt processing bars. |
    | `bench-chart--tg` | Generation bars. |
    | `bench-chart--value` | The t/s figure after a bar. |
    | `bench-chart--best` | Added to the fastest bar's figure in each group. |
    """

    records: reactive[tuple[BenchRecord, ...]] = reactive((), layout=True)
    """The rows to chart; assign a new tuple to redraw."""

    def __init__(
        self,
        records: Sequence[BenchRecord] = (),
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(BenchChart.records, tuple(records))

    @property
    def groups(self) -> tuple[BarGroup, ...]:
        return bar_groups(self.records)

    def render(self) -> RenderResult:
        groups = self.groups
        if not groups:
            return Content.styled(EMPTY_TEXT, self.get_visual_style("bench-chart--label", partial=True))
        heading = self.get_visual_style("bench-chart--heading", partial=True)
        label_style = self.get_visual_style("bench-chart--label", partial=True)
        value_style = self.get_visual_style("bench-chart--value", partial=True)
        best_style = self.get_visual_style("bench-chart--value", "bench-chart--best", partial=True)
        width = self.content_size.width
        label_width = min(_LABEL_MAX, max((len(b.label) for g in groups for b in g.bars), default=0))
        bar_width = max(1, width - label_width - _VALUE_WIDTH - 3)
        lines: list[Content] = []
        for group in groups:
            bar_style = self.get_visual_style(f"bench-chart--{group.kind}", partial=True)
            lines.append(Content.styled(f"{group.test} · t/s", heading))
            top = max(bar.rate for bar in group.bars)
            for bar in group.bars:
                label = bar.label if len(bar.label) <= label_width else bar.label[: label_width - 1] + "…"
                drawn = bar_text(bar.rate / top if top > 0 else 0.0, bar_width)
                lines.append(
                    Content.assemble(
                        (f"{label:<{label_width}} ", label_style),
                        (f"{drawn:<{bar_width}}", bar_style),
                        (
                            f" {rate_text(bar.rate):>{_VALUE_WIDTH}}",
                            best_style if bar.best else value_style,
                        ),
                    )
                )
        return Content("\n").join(lines)

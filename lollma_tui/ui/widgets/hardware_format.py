"""Short texts and one-line charts for the hardware panel; plain functions, no Textual.

Every formatter takes ``None`` for "not available" and answers "—". Sizes, rates and percentages
are the app's one set (`core.formatting`), offered here next to the panel's own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from lollma_tui.core.formatting import MISSING, counted, percent, rate, size, used_of_total
from lollma_tui.core.hardware import Level, Metric, classify

__all__ = ["MISSING", "counted", "percent", "rate", "size", "used_of_total"]

BARS = "▁▂▃▄▅▆▇█"
"""One-cell bars from "a sample, near zero" to "full scale"; a blank cell means no sample."""

_LEVEL_ORDER = {Level.OK: 0, Level.WARM: 1, Level.HOT: 2}


def temperature(value: float | None) -> str:
    return MISSING if value is None else f"{value:.0f}°C"


def power(draw: float | None, limit: float | None) -> str:
    """ "215/450 W", "215 W", or "—"."""
    if draw is None:
        return MISSING if limit is None else f"{MISSING}/{limit:.0f} W"
    if limit:
        return f"{draw:.0f}/{limit:.0f} W"
    return f"{draw:.0f} W"


def clock(mhz: float | None) -> str:
    if mhz is None:
        return MISSING
    return f"{mhz / 1000:.2f} GHz" if mhz >= 1000 else f"{mhz:.0f} MHz"


def level_of(metric: Metric, value: float | None) -> Level | None:
    """The colour class for `value`, or None when there is nothing to colour."""
    return None if value is None else classify(metric, value)


def worst(levels: Iterable[Level | None]) -> Level:
    found = [level for level in levels if level is not None]
    return max(found, key=_LEVEL_ORDER.__getitem__) if found else Level.OK


def spark(values: Sequence[float | None], width: int, scale: float | None = None, window: int = 0) -> str:
    """`values` (oldest first) as a `width`-cell bar chart, newest at the right.

    Each cell summarises ``ceil(window / width)`` samples by their maximum, so a short burst
    stays visible. With `scale` bars are drawn against that fixed full scale (100 for a
    percentage, the total for memory), so idle noise stays low; without it against the
    largest value shown. Cells without any sample are blank.
    """
    if width <= 0:
        return ""
    per_cell = max(1, math.ceil(max(window, len(values)) / width)) if window else 1
    cells: list[float | None] = []
    end = len(values)
    while len(cells) < width and end > 0:
        bucket = [v for v in values[max(0, end - per_cell) : end] if v is not None and not math.isnan(v)]
        cells.append(max(bucket) if bucket else None)
        end -= per_cell
    cells.reverse()
    full = scale if scale else max((c for c in cells if c is not None), default=0.0)
    text = []
    for cell in cells:
        if cell is None:
            text.append(" ")
            continue
        fraction = min(max(cell / full, 0.0), 1.0) if full > 0 else 0.0
        text.append(BARS[min(int(fraction * len(BARS)), len(BARS) - 1)])
    return "".join(text).rjust(width)


def core_strip(per_core: Sequence[float], width: int) -> str:
    """One cell per logical core (0–100 %), cores folded together by maximum when they outnumber `width`."""
    if not per_core or width <= 0:
        return ""
    per_cell = math.ceil(len(per_core) / width)
    cells = math.ceil(len(per_core) / per_cell)
    return spark(list(per_core), cells, scale=100.0, window=len(per_core))

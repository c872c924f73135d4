"""How figures read everywhere: sizes, token rates, durations, percentages.

Every formatter takes ``None`` for "not available" and answers `MISSING`. The llama-bench tables
keep llama-bench's own fixed formats (`core.bench.formatters`), so their columns compare with it.
Lines that describe a run's set-up or a reply's speed are in `core.backends.describe`.
"""

from __future__ import annotations

MISSING = "—"
KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40


def _number(value: float) -> str:
    # Three significant figures read well in a narrow column: 7.93 → 7.9, 123.4 → 123.
    if value >= 100 or value == 0:
        return f"{value:.0f}"
    text = f"{value:.1f}"
    return text.removesuffix(".0") if text.endswith(".0") and value >= 10 else text


def _unit_for(n_bytes: int) -> tuple[int, str]:
    for factor, unit in ((TiB, "TiB"), (GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if n_bytes >= factor:
            return factor, unit
    return 1, "B"


def size(n_bytes: int | None) -> str:
    """ "412 MiB", "7.9 GiB", "0 B"; negative sizes keep their sign."""
    if n_bytes is None:
        return MISSING
    factor, unit = _unit_for(abs(n_bytes))
    sign = "-" if n_bytes < 0 else ""
    return f"{sign}{_number(abs(n_bytes) / factor)} {unit}"


def used_of_total(used: int | None, total: int | None) -> str:
    """ "7.9/24 GiB": both in the unit of the total, so the two figures compare at a glance."""
    if not total:
        return size(used)
    factor, unit = _unit_for(total)
    used_text = MISSING if used is None else _number(used / factor)
    total_value = total / factor
    total_text = (
        f"{total_value:.0f}" if abs(total_value - round(total_value)) < 0.05 else _number(total_value)
    )
    return f"{used_text}/{total_text} {unit}"


def rate(tokens_per_s: float | None) -> str:
    """Tokens a second: "77.3", "123"."""
    if tokens_per_s is None:
        return MISSING
    return f"{tokens_per_s:.0f}" if tokens_per_s >= 100 else f"{tokens_per_s:.1f}"


def seconds(value: float | None) -> str:
    """ "0.19 s", "12.3 s"."""
    if value is None:
        return MISSING
    if value < 10:
        return f"{value:.2f} s"
    return f"{value:.1f} s"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """ "1 thread", "2 threads", "0 code blocks": a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def percent(value: float | None) -> str:
    """A value already in percent (0–100): "63%"."""
    return MISSING if value is None else f"{value:.0f}%"


def share(fraction: float | None) -> str:
    """A fraction (0–1) as a percentage: 0.634 → "63%"."""
    return MISSING if fraction is None else percent(fraction * 100)

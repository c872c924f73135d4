"""What the Ollama server's Go runtime does to bytes on the wire, redone in Python.

Clients parse these shapes, so they are reproduced exactly: Go's JSON encoding (compact, HTML
characters escaped), RFC 3339 timestamps with trimmed nanoseconds, `time.ParseDuration`, and
Ollama's humanised parameter counts.
"""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

FOREVER_NS = (1 << 63) - 1
"""A negative keep_alive becomes Go's largest Duration: expires_at lands in the year ~2318."""


def go_json(value: Any) -> bytes:
    """Encode like Go's `json.Marshal`: compact, UTF-8 kept, `<`, `>`, `&` and U+2028/9 escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # Those characters only ever occur inside JSON strings, so a plain replace is safe.
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text.encode()


def go_time(ns: int | None = None, *, utc: bool = True) -> str:
    """RFC 3339 with up to nine fractional digits, trailing zeros trimmed, like Go's RFC3339Nano.

    `utc=True` gives the ``Z`` form Ollama uses for ``created_at``; otherwise the local offset,
    as in ``modified_at`` and ``expires_at``.
    """
    if ns is None:
        ns = time.time_ns()
    seconds, nanos = divmod(ns, 1_000_000_000)
    if utc:
        moment = datetime.fromtimestamp(seconds, UTC)
    else:
        offset = time.localtime(min(seconds, 2**31 - 1)).tm_gmtoff
        moment = datetime.fromtimestamp(seconds, timezone(timedelta(seconds=offset)))
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    delta = moment.utcoffset() or timedelta(0)
    if delta == timedelta(0):
        return text + "Z"
    total = int(delta.total_seconds())
    sign = "+" if total >= 0 else "-"
    hours, minutes = divmod(abs(total) // 60, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_NUMBER = re.compile(r"(\d*)(?:\.(\d*))?")
_UNIT = re.compile(r"[^\d.]+")


class GoDurationError(ValueError):
    pass


def parse_go_duration(text: str) -> int:
    """`time.ParseDuration`: ``"1h30m"``, ``"300ms"``, ``"-1m"``, ``"0"``; returns nanoseconds."""
    quoted = json.dumps(text, ensure_ascii=False)
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise GoDurationError(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        number = _NUMBER.match(rest)
        assert number is not None  # the pattern matches the empty string
        whole, fraction = number.group(1), number.group(2)
        if not whole and not fraction:
            raise GoDurationError(f"time: invalid duration {quoted}")
        rest = rest[number.end() :]
        unit_match = _UNIT.match(rest)
        if unit_match is None:
            raise GoDurationError(f"time: missing unit in duration {quoted}")
        unit = unit_match.group(0)
        rest = rest[unit_match.end() :]
        if unit not in _UNIT_NS:
            raise GoDurationError(
                f"time: unknown unit {json.dumps(unit, ensure_ascii=False)} in duration {quoted}"
            )
        total += float(f"{whole or '0'}.{fraction or '0'}") * _UNIT_NS[unit]
    if total > FOREVER_NS:
        raise GoDurationError(f"time: invalid duration {quoted}")
    return -int(total) if negative else int(total)


def _go_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return type(value).__name__


def parse_keep_alive(value: Any) -> int:
    """The request's ``keep_alive`` as nanoseconds; negative values mean forever (FOREVER_NS).

    A JSON number is seconds (fractions allowed); a string is a Go duration, so a unit-less
    ``"300"`` is an error (``"0"`` is the one unit-less string Go accepts).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise GoDurationError(f"unsupported duration type: '{_go_type_name(value)}'")
    if isinstance(value, str):
        ns = parse_go_duration(value)
        return FOREVER_NS if ns < 0 else ns
    if value < 0:
        return FOREVER_NS
    if math.isinf(value) or value * 1e9 >= FOREVER_NS:
        return FOREVER_NS
    return int(value * 1_000_000_000)


def human_number(count: int) -> str:
    """Ollama's parameter_size: ``"1.1B"``, ``"8.0B"``, ``"70B"``, ``"494.03M"``, ``"135M"``."""
    if count >= 1_000_000_000:
        value = count / 1_000_000_000
        return f"{value:.0f}B" if value == math.floor(value) else f"{value:.1f}B"
    if count >= 1_000_000:
        value = count / 1_000_000
        return f"{value:.0f}M" if value == math.floor(value) else f"{value:.2f}M"
    if count >= 1_000:
        return f"{count / 1_000:.0f}K"
    return str(count)


def go_quote(value: Any) -> str:
    """Go's ``%#v`` for the scalar and string values a Modelfile PARAMETER holds."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == math.floor(value):
        return str(int(value))
    return str(value)

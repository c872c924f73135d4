"""Checked reads of values in data that came from elsewhere: a server's JSON, a remote monitor.

Every reader names where the value sits (``where``) and raises `WireError` with that place and
the reason when the value is missing, of the wrong type, not finite, out of range or too big.
Callers catch it per item, so one bad entry costs that entry, not the whole reply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lollma_tui.core.safe_text import clean_text

MAX_TEXT = 4096
"""Longest string accepted unless a reader asks for another limit."""


class WireError(ValueError):
    """A value from outside is unusable; the message starts with where it was."""


def mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise WireError(f"{where}: expected an object, got {_kind(value)}")
    return value


def items(value: object, where: str, max_items: int) -> Sequence[Any]:
    if not isinstance(value, list):
        raise WireError(f"{where}: expected a list, got {_kind(value)}")
    if len(value) > max_items:
        raise WireError(f"{where}: {len(value)} entries, more than the {max_items} accepted")
    return value


def number(value: object, where: str, *, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite int or float (never a bool) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WireError(f"{where}: expected a number, got {_kind(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise WireError(f"{where}: {value!r} is not a finite number")
    if not low <= result <= high:
        raise WireError(f"{where}: {result:g} is outside {low:g}..{high:g}")
    return result


def integer(value: object, where: str, *, low: int = 0, high: int = (1 << 63) - 1) -> int:
    """An int (a float with no fraction is accepted: JSON writers differ) within [low, high]."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"{where}: expected an integer, got {_kind(value)}")
    if not low <= value <= high:
        raise WireError(f"{where}: {value} is outside {low}..{high}")
    return value


def text(value: object, where: str, *, max_length: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise WireError(f"{where}: expected a string, got {_kind(value)}")
    if len(value) > max_length:
        raise WireError(f"{where}: {len(value)} characters, more than the {max_length} accepted")
    return value


def optional_number(data: Mapping[str, Any], key: str, where: str, **limits: float) -> float | None:
    value = data.get(key)
    return None if value is None else number(value, f"{where}.{key}", **limits)


def optional_integer(data: Mapping[str, Any], key: str, where: str, **limits: int) -> int | None:
    value = data.get(key)
    return None if value is None else integer(value, f"{where}.{key}", **limits)


def optional_text(data: Mapping[str, Any], key: str, where: str, *, max_length: int = MAX_TEXT) -> str | None:
    value = data.get(key)
    return None if value is None else text(value, f"{where}.{key}", max_length=max_length)


def optional_bool(data: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise WireError(f"{where}.{key}: expected true/false, got {_kind(value)}")
    return value


def one_line(value: object, limit: int = 300) -> str:
    """`value` as one line of at most `limit` characters, for a message quoting a server."""
    line = without_controls(" ".join(str(value).split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def without_controls(value: str) -> str:
    """`value` as one line without escape sequences or control characters, for a table cell or
    a status: text from elsewhere must not steer the terminal (the one rule, `clean_text`)."""
    return clean_text(value, keep_lines=False)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)

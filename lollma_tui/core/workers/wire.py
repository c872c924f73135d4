"""The line framing every worker speaks: one JSON object per line, in both directions."""

from __future__ import annotations

import json
from typing import Any

# What every worker says and understands, whatever else its own protocol adds.
EV_HELLO = "hello"
EV_ERROR = "error"
OP_SHUTDOWN = "shutdown"
OP_CANCEL = "cancel"

PARENT_PID_ENV = "LOLLMA_WORKER_PARENT"
"""Tells the child which process it must not outlive."""

MAX_LINE_BYTES = 16 * 1024 * 1024
"""The longest line either side accepts; a longer one is a protocol error, never a hang."""


class ProtocolError(ValueError):
    """A line that is not one JSON object within the limit."""


def encode(message: dict[str, Any]) -> bytes:
    # ASCII escapes: a path that is not UTF-8 (its bytes kept as lone surrogates) must travel too.
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"a line of {len(line)} bytes (the limit is {MAX_LINE_BYTES})")
    try:
        value = json.loads(line)
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"expected a JSON object, got {type(value).__name__}")
    return value

"""What the test server saw and did, for tests to assert on, and the faults tests inject.

The server thread appends; the test thread reads. Every change goes through `Records.changed()`
so `wait_for` can block until a condition holds instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .engines import RunnerOptions


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    body: Any
    """The parsed JSON body, or None when there was none or it was not JSON."""
    raw: bytes
    headers: dict[str, str]


@dataclass
class GenerationRecord:
    """One chat or generate request that reached generation (mutated while it streams)."""

    endpoint: Literal["chat", "generate"]
    model: str
    stream: bool
    options: dict[str, Any]
    """The request's ``options`` exactly as received."""
    think: Any
    keep_alive: Any
    messages: list[dict[str, Any]]
    prompt: str
    pieces_sent: int = 0
    text: str = ""
    thinking: str = ""
    done: bool = False
    done_reason: str | None = None
    disconnected: bool = False
    """The client went away before the reply was complete (cancellation reached the server)."""
    error: str | None = None
    cached_tokens: int | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None


@dataclass(frozen=True)
class LoadRecord:
    model: str
    options: RunnerOptions
    requested: dict[str, Any]
    """The runner options as the request sent them (absent keys left out)."""
    reason: Literal["load", "reload"]


@dataclass(frozen=True)
class UnloadRecord:
    model: str
    reason: Literal["request", "keep_alive", "reload", "evicted", "deleted"]


@dataclass
class Faults:
    """Failures and delays to inject; the error queues are consumed one per occasion."""

    load_delay_s: float = 0.0
    first_token_delay_s: float = 0.0
    piece_delay_s: float = 0.0
    """Extra pause before every piece: keeps any engine's reply in flight for cancel tests."""
    pull_step_delay_s: float = 0.0
    tags_delay_s: float = 0.0
    """A pause before /api/tags answers: a server whose model list hangs."""
    load_errors: deque[str] = field(default_factory=deque)
    """Each real (re)load takes the next message and fails with a 500 carrying it."""
    stream_errors: deque[tuple[int, str]] = field(default_factory=deque)
    """Each generation takes the next (after_pieces, message): an error after that many pieces."""
    raw_replies: dict[str, deque[tuple[int, bytes, str]]] = field(default_factory=dict)
    """Path -> (status, body, content type) answered as is, one per request, before any handler:
    replies no real server sends (NaN, wrong shapes, broken JSON)."""


class Records:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.requests: list[RequestRecord] = []
        self.generations: list[GenerationRecord] = []
        self.loads: list[LoadRecord] = []
        self.unloads: list[UnloadRecord] = []
        self.abandoned: list[str] = []
        """Requests whose client left before any reply, e.g. ``"load tinyllama:1b-q4_K_M"``."""

    def changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def add_request(self, record: RequestRecord) -> None:
        with self._cond:
            self.requests.append(record)
            self._cond.notify_all()

    def add_generation(self, record: GenerationRecord) -> None:
        with self._cond:
            self.generations.append(record)
            self._cond.notify_all()

    def add_load(self, record: LoadRecord) -> None:
        with self._cond:
            self.loads.append(record)
            self._cond.notify_all()

    def add_unload(self, record: UnloadRecord) -> None:
        with self._cond:
            self.unloads.append(record)
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self.requests.clear()
            self.generations.clear()
            self.loads.clear()
            self.unloads.clear()
            self.abandoned.clear()

    def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """Block until `predicate()` is truthy; return its value. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                self._cond.wait(min(left, 0.05))

"""Fixtures for the conversation store tests, and the OpenAI protocol test server and backend
factory for the chat-record tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openai_server.fixtures import llama_server, make_openai_backend
from store_helpers import FakeClock

from lollma_tui.core.chat.store import ChatStore

make_backend = make_openai_backend

__all__ = ["llama_server", "make_backend"]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.db"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def wall() -> FakeClock:
    # One second per read: every row gets a distinct, ordered timestamp.
    return FakeClock(1_764_000_000.0, step=1.0)


@pytest.fixture
def store(db_path: Path, clock: FakeClock, wall: FakeClock) -> Iterator[ChatStore]:
    opened = ChatStore.open(db_path, clock=clock, wall_clock=wall)
    yield opened
    opened.close()


@pytest.fixture
def reopen(db_path: Path, clock: FakeClock, wall: FakeClock) -> Iterator[Callable[[], ChatStore]]:
    """Open the same file again (a fresh connection), closing whatever it opened at the end."""
    opened: list[ChatStore] = []

    def _open() -> ChatStore:
        store = ChatStore.open(db_path, clock=clock, wall_clock=wall)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()

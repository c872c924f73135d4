"""Fixtures for the history command: real store files in the test's own data folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from history_support import FakeClock, Saved, add_turn, sample_stats

from lollma_tui.core.chat.conversation import Conversation, ReplyState
from lollma_tui.core.chat.opening import default_store_path
from lollma_tui.core.chat.store import ChatStore


@pytest.fixture
def history_path() -> Path:
    # LOLLMA_DATA_DIR points into tmp_path (root conftest), and the CLI runs with that environment.
    return default_store_path()


@pytest.fixture
def saved(history_path: Path) -> Saved:
    """Three conversations written through the store API, closed before the CLI runs."""
    store = ChatStore.open(history_path, wall_clock=FakeClock())
    try:
        quantum = store.create_conversation(Conversation(title="Quantum chat"))
        _, quantum_reply = add_turn(
            store,
            quantum.id,
            "explain quantum entanglement",
            "Entanglement links two particles like zebras share stripes.",
            stats=sample_stats(gen_tps=77.125),
        )
        pasta = store.create_conversation(Conversation(title="Pasta"))
        first_ask, _ = add_turn(store, pasta.id, "how long to boil spaghetti", "About nine minutes.")
        # Edit-and-resend: the spaghetti turn stays in the file on a branch that is not shown.
        store.branch_from(first_ask.id, "how long to boil penne")
        writer = store.start_reply(pasta.id)
        writer.append_delta("Eleven minutes, then taste")
        writer.finish(ReplyState.STOPPED, stats=sample_stats(model="qwen3-0.6b"))
        notes = store.new_conversation(system_prompt="Answer briefly.")
        add_turn(store, notes.id, "list three primes", "2, 3 and 5.")
        return Saved(quantum.id, quantum_reply, pasta.id, writer.message_id, notes.id)
    finally:
        store.close()

"""Shared pieces of the history tests: a host app for the screens, sample data, waiting."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pilot_support import ThemedApp
from textual.screen import Screen

from lollma_tui.core.backends.base import ReplyStats, RunSetup
from lollma_tui.core.chat.conversation import Conversation, Message, ReplyState
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.settings import BackendKind, SamplingSettings

UI_DIR = Path(__file__).resolve().parents[2] / "lollma_tui" / "ui"


class FakeClock:
    """Wall clock for the store: one second later on every read, so each write is ordered."""

    def __init__(self, start: float = 1_764_000_000.0, step: float = 1.0) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


@dataclass(frozen=True)
class Saved:
    """What `saved` put in the history, newest conversation last."""

    quantum: str
    quantum_reply: str
    pasta: str
    pasta_reply: str
    notes: str

    @property
    def oldest_first(self) -> list[str]:
        return [self.quantum, self.pasta, self.notes]


class HostApp(ThemedApp):
    """The screens in an app with the real stylesheets, as the main app will show them."""

    CSS_PATH = [UI_DIR / "app.tcss", UI_DIR / "history_screens.tcss"]

    def __init__(self) -> None:
        super().__init__()
        self.results: list[Any] = []
        self.announced: list[Any] = []

    def open(self, screen: Screen[Any]) -> None:
        self.push_screen(screen, self.results.append)

    def on_conversations_screen_renamed(self, message: Any) -> None:
        self.announced.append(message)

    def on_conversations_screen_deleted(self, message: Any) -> None:
        self.announced.append(message)


def sample_stats(model: str = "gemma-3-270m", gen_tps: float = 77.125) -> ReplyStats:
    setup = RunSetup(
        backend=BackendKind.LLAMA_CPP,
        model=model,
        quant="Q4_K_M",
        n_gpu_layers=12,
        n_layers=18,
        n_ctx=8192,
        n_threads=6,
        n_batch=256,
        flash_attn=True,
    )
    return ReplyStats(
        setup=setup,
        ttft_s=0.187,
        prompt_tokens=42,
        prompt_tokens_evaluated=30,
        prompt_tps=812.25,
        gen_tokens=128,
        gen_tps=gen_tps,
        total_s=1.84,
        load_s=2.5,
    )


def add_turn(
    store: ChatStore,
    conversation_id: str,
    question: str,
    answer: str,
    *,
    state: ReplyState = ReplyState.COMPLETE,
    stats: ReplyStats | None = None,
) -> tuple[Message, str]:
    """A user message and its streamed reply, saved the way the app saves them."""
    user = store.add_message(conversation_id, Message("user", question))
    writer = store.start_reply(conversation_id)
    writer.append_delta(answer)
    writer.finish(state, stats=stats or sample_stats(), sampling=SamplingSettings(temperature=0.3, seed=7))
    return user, writer.message_id


def make_conversations(store: ChatStore, count: int, title: str = "chat {n:03d}") -> list[str]:
    """`count` titled conversations with one turn each; ids oldest first."""
    ids = []
    for n in range(count):
        conversation = store.create_conversation(Conversation(title=title.format(n=n)))
        store.add_message(conversation.id, Message("user", f"question {n}"))
        ids.append(conversation.id)
    return ids


def lighthouse_chat(store: ChatStore, title: str = "about lighthouses") -> Conversation:
    """A saved conversation of one question and its answer, with words to search for ("lens")."""
    chat = Conversation(title=title)
    chat.messages += [Message("user", "how do lighthouses work"), Message("assistant", "a lamp and a lens")]
    return store.create_conversation(chat)

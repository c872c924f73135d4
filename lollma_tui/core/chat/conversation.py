"""The conversation the user is having: messages, per-reply state and stats.

The app owns one `Conversation`; backends receive it as a plain list of `ChatMessage`s.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from lollma_tui.core.backends.base import ChatMessage, ReplyStats, Role
from lollma_tui.core.settings import BackendKind


class ReplyState(StrEnum):
    COMPLETE = "complete"
    STREAMING = "streaming"
    STOPPED = "stopped"
    """The user stopped it; the partial text is kept."""
    LENGTH = "length"
    """It hit the token limit or the context size."""
    ERROR = "error"
    INCOMPLETE = "incomplete"
    """Streaming when the app died; found so on the next start."""


_STATE_NOTES = {
    ReplyState.STREAMING: "still being written",
    ReplyState.STOPPED: "stopped",
    ReplyState.INCOMPLETE: "incomplete (the app closed while writing)",
}


def reply_end_note(state: ReplyState, stats: ReplyStats | None) -> str | None:
    """How a reply that did not simply finish ended (None for one that did, and for an error,
    whose message says it). A reply cut short says which limit cut it: raising the token limit
    does nothing for a reply that filled the context."""
    if state is not ReplyState.LENGTH:
        return _STATE_NOTES.get(state)
    if stats is None or stats.prompt_tokens is None or stats.setup.n_ctx <= 0:
        return "cut at the token or context limit"
    if fills_context(stats, stats.setup.n_ctx):
        return f"cut at the context limit ({stats.setup.n_ctx} tokens)"
    return "cut at the token limit"


def fills_context(stats: ReplyStats | None, n_ctx: int) -> bool:
    """Whether the prompt and the reply take all of a context of `n_ctx` tokens (so far as the
    stats say: False where they do not)."""
    if stats is None or stats.prompt_tokens is None or n_ctx <= 0:
        return False
    return stats.prompt_tokens + stats.gen_tokens >= n_ctx


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class Message:
    role: Role
    content: str
    id: str = field(default_factory=new_id)
    created_at: float = field(default_factory=time.time)
    state: ReplyState = ReplyState.COMPLETE
    stats: ReplyStats | None = None
    error: str | None = None
    thinking: str = ""
    """What a reasoning model thought before it answered: shown folded, kept, never sent back."""

    def to_chat(self) -> ChatMessage:
        return ChatMessage(self.role, self.content)


@dataclass(slots=True)
class Conversation:
    id: str = field(default_factory=new_id)
    title: str = ""
    system_prompt: str = ""
    messages: list[Message] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    context_from: int = 0
    """Index of the first message the model is sent; earlier turns were left out to fit the
    context (they stay in the conversation and the history)."""
    system_prompt_since: int = 0
    """How many messages there were when the system prompt last changed: a reply before then
    was sent another one, so its prompt's size is not the conversation's now."""

    def set_system_prompt(self, text: str) -> None:
        self.system_prompt = text
        self.system_prompt_since = len(self.messages)

    def add_user(self, text: str) -> Message:
        message = Message("user", text)
        self.messages.append(message)
        if not self.title:
            self.title = title_from(text)
        return message

    def start_reply(self) -> Message:
        message = Message("assistant", "", state=ReplyState.STREAMING)
        self.messages.append(message)
        return message

    def history(self) -> list[ChatMessage]:
        """What the model is sent: the system prompt, then every turn that holds text.

        Failed or empty replies are left out so that a retry after an error sees the same
        context; stopped partial replies stay in, because the user saw them. A message that
        follows one of the same role (a question whose reply failed, then the next question)
        is joined to it: many chat templates (Gemma, Mistral, Llama 2) refuse a conversation
        whose roles do not alternate, and every later message would fail with it.
        """
        sent: list[ChatMessage] = []
        if self.system_prompt.strip():
            sent.append(ChatMessage("system", self.system_prompt))
        for message in self.messages[self.context_from :]:
            if not is_sent(message):
                continue
            if sent and sent[-1].role == message.role:
                sent[-1] = ChatMessage(message.role, f"{sent[-1].content}\n\n{message.content}")
                continue
            sent.append(message.to_chat())
        return sent

    def last_user(self) -> Message | None:
        for message in reversed(self.messages):
            if message.role == "user":
                return message
        return None

    def last_reply(self) -> Message | None:
        for message in reversed(self.messages):
            if message.role == "assistant":
                return message
        return None

    def model_last_used(self, backend: BackendKind, server: str | None) -> str | None:
        """The model the newest reply computed by `backend` at `server` came from, if any."""
        for message in reversed(self.messages):
            setup = message.stats.setup if message.stats is not None else None
            if setup is not None and setup.backend is backend and setup.server == server:
                return setup.model
        return None

    def drop_last_reply(self) -> Message | None:
        """Remove the final assistant reply (to regenerate it); returns the user turn it answered."""
        if self.messages and self.messages[-1].role == "assistant":
            self.messages.pop()
        if self.messages and self.messages[-1].role == "user":
            return self.messages[-1]
        return None


def is_sent(message: Message) -> bool:
    """Whether `message` goes to the model with the conversation (`Conversation.history`)."""
    return not (
        message.role == "assistant"
        and (message.state in (ReplyState.STREAMING, ReplyState.ERROR) or not message.content)
    )


def title_from(text: str, limit: int = 48) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"

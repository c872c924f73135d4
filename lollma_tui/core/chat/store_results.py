"""What the store's reads hand back: conversation summaries, thread windows, message places."""

from __future__ import annotations

from dataclasses import dataclass

from lollma_tui.core.chat.conversation import Conversation
from lollma_tui.core.settings import SamplingSettings


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    id: str
    title: str
    created_at: float
    updated_at: float
    message_count: int
    """Messages in the visible thread (other branches not counted)."""


@dataclass(frozen=True, slots=True)
class MessageMeta:
    parent_id: str | None
    index: int
    """Position in the visible thread, 0-based."""
    sampling: SamplingSettings | None
    sibling_index: int
    """Position among the alternatives at this point (edits, regenerations), oldest first."""
    sibling_count: int


@dataclass(frozen=True, slots=True)
class ThreadWindow:
    """A slice of a conversation's visible thread; `conversation.messages` holds only the slice."""

    conversation: Conversation
    updated_at: float
    start: int
    total: int
    meta: dict[str, MessageMeta]

    @property
    def stop(self) -> int:
        return self.start + len(self.conversation.messages)

    @property
    def has_earlier(self) -> bool:
        return self.start > 0


@dataclass(frozen=True, slots=True)
class MessageLocation:
    conversation_id: str
    index: int
    in_thread: bool
    """False when the message is on a branch that is not the visible one (see `switch_branch`)."""

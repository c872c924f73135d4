"""How much of the loaded model's context the conversation takes, and what to leave out.

A plain object the chat screen owns. `refresh` measures as the screen's worker and posts
`ContextMeasured`; the other methods answer the screen's own workers directly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual.dom import DOMNode

from lollma_tui.core.chat.context_budget import (
    TURN_OVERHEAD_TOKENS,
    ContextCheck,
    estimate_tokens,
    keep_from,
    reply_reserve,
)
from lollma_tui.core.chat.conversation import Conversation, is_sent
from lollma_tui.ui.controllers.model_session import ModelController
from lollma_tui.ui.messages import ContextMeasured, NoticePosted


@dataclass(frozen=True)
class Resend:
    """An edit, or a reply written again, that would overflow the context."""

    check: ContextCheck
    upto: int
    """The messages sent before `text`."""
    text: str
    subject: str
    """What it is, as the question to the user names it."""


class ContextMeter:
    def __init__(self, owner: DOMNode, models: ModelController) -> None:
        self._owner = owner
        self._models = models

    def refresh(self, conversation: Conversation) -> None:
        self._owner.run_worker(
            self._refresh(conversation), group="context-meter", exclusive=True, exit_on_error=False
        )

    async def _refresh(self, conversation: Conversation) -> None:
        self._owner.post_message(ContextMeasured(await self.usage(conversation)))

    async def measure(self, text: str) -> tuple[int, bool]:
        """Tokens `text` takes with the loaded model's tokenizer, or an estimate (exact=False)."""
        counted = await self._models.backend.count_tokens(text)
        if counted is None:
            return estimate_tokens(text), False
        return counted, True

    async def usage(self, conversation: Conversation) -> ContextCheck | None:
        """What the conversation takes now (None: no model loaded)."""
        loaded = self._models.loaded
        if loaded is None:
            return None
        used, exact = self._used_from_stats(conversation)
        if used is None:
            used, exact = 0, True
            for message in conversation.history():
                tokens, counted = await self.measure(message.content)
                used += tokens + TURN_OVERHEAD_TOKENS
                exact = exact and counted
        return ContextCheck(used=used, needed=0, n_ctx=loaded.n_ctx, exact=exact)

    def _used_from_stats(self, conversation: Conversation) -> tuple[int | None, bool]:
        """Exact usage from the last reply: the prompt it was sent plus what it generated."""
        messages = conversation.messages
        if not messages or messages[-1].role != "assistant" or conversation.context_from:
            return None, False
        if len(messages) <= conversation.system_prompt_since:
            return None, False  # sent with the system prompt before /system changed it
        stats = messages[-1].stats
        loaded = self._models.loaded
        if stats is None or stats.prompt_tokens is None or loaded is None:
            return None, False
        if stats.setup.model != loaded.name or stats.setup.n_ctx != loaded.n_ctx:
            return None, False
        if messages[-1].thinking:
            # Its tokens count the thinking, which is never sent back: a long thought read as a
            # full context, and "Context full" opened with nothing to leave out.
            return None, False
        return stats.prompt_tokens + stats.gen_tokens, True

    async def overflow(self, conversation: Conversation, text: str) -> ContextCheck | None:
        """The check for sending `text` next when it would overflow the context, else None.

        Turns left out to fit a smaller context are sent again once all of it fits (a larger
        /ctx): leaving them out was the answer for that context only.
        """
        if left_out := conversation.context_from:
            conversation.context_from = 0
            whole = await self._check(conversation, text)
            if whole is None or whole.overflows:
                conversation.context_from = left_out
            else:
                self._owner.post_message(
                    NoticePosted(
                        "The whole conversation fits the context now: the turns left out are sent again."
                    )
                )
        check = await self._check(conversation, text)
        self._owner.post_message(ContextMeasured(None if check is None else replace(check, needed=0)))
        return check if check is not None and check.overflows else None

    async def resend_check(
        self, conversation: Conversation, upto: int, text: str, subject: str
    ) -> Resend | None:
        """What sending the conversation's first `upto` messages and then `text` again (an edit
        of message `upto`, or the question a reply answers) takes, when it overflows the context."""
        head = replace(conversation, messages=conversation.messages[:upto])
        check = await self._check(head, text)
        return Resend(check, upto, text, subject) if check is not None and check.overflows else None

    async def fitting_start(self, conversation: Conversation, text: str, check: ContextCheck) -> int | None:
        """Where the context must start for the conversation and then `text` to fit (`check`
        says they do not), leaving out the messages before it; None when leaving out every
        earlier turn is not enough."""
        start = await self.first_to_keep(conversation, check)
        if start <= conversation.context_from:
            return None
        trimmed = await self._check(replace(conversation, context_from=start), text)
        return start if trimmed is not None and not trimmed.overflows else None

    async def _check(self, conversation: Conversation, text: str) -> ContextCheck | None:
        current = await self.usage(conversation)
        if current is None:
            return None
        new_tokens, exact = await self.measure(text)
        reserve = reply_reserve(self._models.sampling.max_tokens, current.n_ctx)
        needed = new_tokens + TURN_OVERHEAD_TOKENS + reserve
        return replace(current, needed=needed, exact=current.exact and exact)

    async def first_to_keep(self, conversation: Conversation, check: ContextCheck) -> int:
        """Index of the first message the model should see so that `check` fits, on a user turn."""
        messages = conversation.messages
        # Sized as `history()` sends them: the system prompt always goes, failed replies never.
        system = conversation.system_prompt
        fixed = (await self.measure(system))[0] + TURN_OVERHEAD_TOKENS if system.strip() else 0
        sizes = [
            (await self.measure(m.content))[0] + TURN_OVERHEAD_TOKENS if is_sent(m) else 0 for m in messages
        ]
        start = keep_from(sizes, check.n_ctx - check.needed - fixed, conversation.context_from)
        # Start the context on a user turn so the model never sees a reply without its question.
        while start < len(messages) and messages[start].role != "user":
            start += 1
        return start


def resend_refusal(check: ContextCheck) -> str:
    """Why an edit or a reply written again was not sent: `check` overflows, with nothing to leave out."""
    return (
        f"That would not fit the model's context: {check.total:,} of {check.n_ctx:,} tokens, room for the"
        " reply included. /ctx with more, or Ctrl+N for a new chat; nothing was sent."
    )

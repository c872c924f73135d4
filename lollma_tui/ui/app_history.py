"""Keeping every conversation: saving as it happens, resuming, and opening long ones lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work

from lollma_tui.core.chat.conversation import Conversation, Message
from lollma_tui.core.chat.errors import StoreError
from lollma_tui.core.formatting import format_setup
from lollma_tui.ui.app_hardware import HardwareFeatures
from lollma_tui.ui.widgets.chat_log import ChatLog

if TYPE_CHECKING:
    from lollma_tui.core.chat.async_store import AsyncStore, StreamingReply

TAIL_MESSAGES = 30
"""Messages mounted when a conversation opens; earlier ones load as the user scrolls up."""

EARLIER_PAGE = 30


class HistoryFeatures(HardwareFeatures):
    history_store: AsyncStore | None = None
    _conversation_saved = False
    _history_failed = False
    _shown_from = 0
    """Index in the thread of the first message mounted in the chat log."""

    # -- opening ------------------------------------------------------------------------------

    @work(group="history-open", exclusive=True, exit_on_error=False)
    async def open_history(self) -> None:
        """Open the store and resume where the user left off (unless told otherwise)."""
        from lollma_tui.core.chat.async_store import AsyncStore

        store = AsyncStore()
        opened = await store.open(self.options.history_path)
        self.history_store = store
        await self._resume_at_start(store)
        # Shown after resuming, because opening a conversation clears the chat log.
        if opened.notice:
            await self.notice(opened.notice, "warning")
        if opened.recovered:
            replies = "reply was" if opened.recovered == 1 else "replies were"
            await self.notice(
                f"{opened.recovered} {replies} cut off when lollma-tui last closed; marked incomplete."
            )

    async def _resume_at_start(self, store: AsyncStore) -> None:
        if self.options.new_conversation or self.conversation.messages:
            return
        wanted = self.options.conversation_id
        try:
            if wanted:
                conversation_id: str | None = await store.run(store.store.resolve_id, wanted)
            else:
                conversation_id = await store.run(store.store.latest_conversation_id)
        except StoreError as error:
            await self.notice(f"Could not open conversation {wanted}: {error}", "error")
            return
        if conversation_id is not None:
            await self.open_conversation(conversation_id)

    async def open_conversation(self, conversation_id: str, focus_message: str | None = None) -> None:
        store = self.history_store
        if store is None:
            return
        await self.stop_and_wait()
        try:
            tail = await store.run(store.store.load, conversation_id, last=TAIL_MESSAGES)
            # The model needs the whole thread; only the tail is mounted.
            whole = await store.run(store.store.load, conversation_id)
        except StoreError as error:
            await self.notice(f"Could not open that conversation: {error}", "error")
            return
        conversation = whole.conversation
        conversation.system_prompt = conversation.system_prompt or self.options.system_prompt
        self.conversation = conversation
        self._conversation_saved = True
        self._shown_from = tail.start
        chat_log = self.main.chat_log
        await chat_log.clear_turns()
        await chat_log.show_messages(tail.conversation.messages, self.reply_header_for)
        chat_log.has_earlier = tail.has_earlier
        title = conversation.title or "untitled"
        await chat_log.add_notice(f"Resumed “{title}” · {whole.total} messages · /clear starts a new one")
        chat_log.scroll_end(animate=False)
        if focus_message is not None:
            await self.reveal_message(focus_message)

    async def reveal_message(self, message_id: str) -> None:
        """Mount earlier pages until `message_id` is shown, then scroll it into view."""
        chat_log = self.main.chat_log
        while chat_log.turn_for(message_id) is None and self._shown_from > 0:
            await self._mount_earlier()
        turn = chat_log.turn_for(message_id)
        if turn is not None:
            chat_log.release_anchor()
            turn.scroll_visible(top=True, animate=False)
            turn.add_class("-found")

    def reply_header_for(self, message: Message) -> str:
        return format_setup(message.stats.setup) if message.stats is not None else "assistant"

    @on(ChatLog.EarlierWanted)
    async def _load_earlier(self, _: ChatLog.EarlierWanted) -> None:
        await self._mount_earlier()

    async def _mount_earlier(self) -> None:
        if self._shown_from <= 0:
            return
        start = max(0, self._shown_from - EARLIER_PAGE)
        earlier = self.conversation.messages[start : self._shown_from]
        self._shown_from = start
        chat_log = self.main.chat_log
        await chat_log.prepend_messages(earlier, self.reply_header_for)
        chat_log.has_earlier = start > 0

    def forget_conversation(self, system_prompt: str) -> None:
        """Start a fresh conversation; it reaches the store with its first message."""
        self.conversation = Conversation(system_prompt=system_prompt)
        self._conversation_saved = False
        self._shown_from = 0

    # -- saving as it happens -------------------------------------------------------------------

    async def _store_call_failed(self, error: StoreError) -> None:
        # The chat goes on without the store; say so once rather than on every message.
        if not self._history_failed:
            self._history_failed = True
            await self.notice(f"History could not be saved: {error}. The chat goes on unsaved.", "error")

    async def save_user_message(self, message: Message) -> None:
        store = self.history_store
        if store is None:
            return
        try:
            if not self._conversation_saved:
                # Saved with its messages (this one included) the first time anything is said.
                await store.run(store.store.create_conversation, self.conversation)
                self._conversation_saved = True
                return
            await store.run(store.store.add_message, self.conversation.id, message)
        except StoreError as error:
            await self._store_call_failed(error)

    async def save_system_prompt(self) -> None:
        store = self.history_store
        if store is None or not self._conversation_saved:
            return
        try:
            await store.run(
                store.store.set_system_prompt, self.conversation.id, self.conversation.system_prompt
            )
        except StoreError as error:
            await self._store_call_failed(error)

    async def begin_saved_reply(
        self, reply: Message, replaces: Message | None = None
    ) -> StreamingReply | None:
        """Save the empty reply before streaming starts; the returned handle takes its text."""
        store = self.history_store
        if store is None or not self._conversation_saved:
            return None
        try:
            if replaces is not None:
                writer = await store.run(store.store.regenerate, replaces.id, message=reply)
            else:
                writer = await store.run(store.store.start_reply, self.conversation.id, message=reply)
        except StoreError as error:
            await self._store_call_failed(error)
            return None
        return store.streaming(writer)

    async def begin_continued_reply(self, reply: Message) -> StreamingReply | None:
        store = self.history_store
        if store is None or not self._conversation_saved:
            return None
        try:
            writer = await store.run(store.store.continue_reply, reply.id)
        except StoreError as error:
            await self._store_call_failed(error)
            return None
        return store.streaming(writer)

    async def close_history(self) -> None:
        if self.history_store is not None:
            await self.history_store.close()

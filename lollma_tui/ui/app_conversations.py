"""Working with conversations: the list, search, rename, edit and resend, continue, copy,
export and import, and the context meter with its overflow choice."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work

from lollma_tui.core import paths
from lollma_tui.core.chat.context_budget import (
    TURN_OVERHEAD_TOKENS,
    ContextCheck,
    estimate_tokens,
    keep_from,
    reply_reserve,
)
from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.errors import StoreError
from lollma_tui.ui.app_settings import SettingsFeatures
from lollma_tui.ui.messages import SwapFinished

if TYPE_CHECKING:
    # The dialogs and the exporter load when first used, not on the way to the first frame.
    from lollma_tui.core.chat.store import ChatStore
    from lollma_tui.ui.screens.conversations import ConversationsResult, ConversationsScreen
    from lollma_tui.ui.screens.search import SearchJump

_CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks(markdown: str) -> list[str]:
    return [block.rstrip("\n") for block in _CODE_BLOCK.findall(markdown)]


class ConversationFeatures(SettingsFeatures):
    _editing: Message | None = None

    # -- the list and search ------------------------------------------------------------------

    def action_conversations(self) -> None:
        store = self.history_store
        if store is None or not store.is_open:
            self.notify("The history is not open yet.")
            return
        from lollma_tui.ui.screens.conversations import ConversationsScreen

        current = self.conversation.id if self._conversation_saved else None
        self.push_screen(ConversationsScreen(store.store, current_id=current), self._conversation_chosen)

    async def _conversation_chosen(self, result: ConversationsResult) -> None:
        from lollma_tui.ui.screens.conversations import NEW_CONVERSATION

        if result is None:
            return
        if result is NEW_CONVERSATION:
            await self.action_new_conversation()
            return
        await self.open_conversation(str(result))

    async def on_conversations_screen_deleted(self, message: ConversationsScreen.Deleted) -> None:
        if self._conversation_saved and message.conversation_id == self.conversation.id:
            # The open conversation is gone from the store; what is on screen starts afresh.
            await self.action_new_conversation()

    def on_conversations_screen_renamed(self, message: ConversationsScreen.Renamed) -> None:
        if message.summary.id == self.conversation.id:
            self.conversation.title = message.summary.title

    def action_search(self, query: str = "") -> None:
        store = self.history_store
        if store is None or not store.is_open:
            self.notify("The history is not open yet.")
            return
        from lollma_tui.ui.screens.search import SearchScreen

        self.push_screen(SearchScreen(store.store, query=query), self._search_chosen)

    async def _search_chosen(self, jump: SearchJump | None) -> None:
        if jump is None or self.history_store is None:
            return
        store = self.history_store
        try:
            place = await store.run(store.store.locate, jump.message_id)
            if not place.in_thread:
                # A hit on a branch that was edited away: show that branch.
                await store.run(store.store.switch_branch, jump.message_id)
        except StoreError as error:
            await self.notice(str(error), "error")
            return
        await self.open_conversation(jump.conversation_id, focus_message=jump.message_id)

    async def rename_conversation(self, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            await self.notice(f"This conversation is called “{self.conversation.title or 'untitled'}”.")
            return
        self.conversation.title = title
        store = self.history_store
        if store is not None and self._conversation_saved:
            try:
                await store.run(store.store.rename, self.conversation.id, title)
            except StoreError as error:
                await self.notice(str(error), "error")
                return
        await self.notice(f"Renamed to “{title}”.")

    # -- edit and resend, continue ------------------------------------------------------------

    async def begin_edit(self) -> None:
        if self.is_generating:
            self.notify("Wait for the reply to finish, or press Esc first.", severity="warning")
            return
        message = self.conversation.last_user()
        if message is None:
            await self.notice("There is no message of yours to edit yet.")
            return
        self._editing = message
        prompt = self.main.prompt
        prompt.load_text(message.content)
        prompt.move_cursor(prompt.document.end)
        prompt.focus()
        await self.notice("Editing your last message: Enter sends it again and replaces what came after it.")

    async def send(self, text: str, *, context_checked: bool = False) -> None:
        editing, self._editing = self._editing, None
        if editing is not None and not self.is_generating:
            await self._resend_edited(editing, text)
            return
        if not context_checked and not self.is_generating and not await self._fits_or_resolved(text):
            return
        await super().send(text)

    async def _resend_edited(self, original: Message, text: str) -> None:
        messages = self.conversation.messages
        index = next((i for i, m in enumerate(messages) if m.id == original.id), None)
        if index is None:
            await super().send(text)
            return
        replacement = Message("user", text)
        store = self.history_store
        if store is not None and self._conversation_saved:
            try:
                # The old version and everything after it stay in the store on their branch.
                replacement = await store.run(store.store.branch_from, original.id, text)
            except StoreError as error:
                await self.notice(f"The edit could not be saved: {error}", "error")
        del messages[index:]
        messages.append(replacement)
        chat_log = self.main.chat_log
        await chat_log.remove_turns_from(original.id)
        await chat_log.add_user(replacement)
        await self.start_reply()

    async def continue_reply(self) -> None:
        if self.is_generating:
            self.notify("A reply is still being written.", severity="warning")
            return
        reply = self.conversation.last_reply()
        messages = self.conversation.messages
        if reply is None or messages[-1] is not reply or not reply.content:
            await self.notice("Nothing to continue: /continue picks up the last reply where it stopped.")
            return
        if reply.state not in (ReplyState.LENGTH, ReplyState.STOPPED, ReplyState.INCOMPLETE):
            await self.notice("The last reply is complete; there is nothing to continue.")
            return
        await self.start_continuation(reply)

    # -- copy, export, import ------------------------------------------------------------------

    async def copy_reply(self, argument: str) -> None:
        reply = self.conversation.last_reply()
        if reply is None or not reply.content:
            await self.notice("There is no reply to copy yet.")
            return
        text = reply.content
        what = "the last reply"
        words = argument.split()
        if words and words[0] == "code":
            blocks = code_blocks(reply.content)
            try:
                number = int(words[1]) if len(words) > 1 else 1
            except ValueError:
                await self.notice("Usage: /copy code N", "error")
                return
            if not 1 <= number <= len(blocks):
                await self.notice(f"The last reply has {len(blocks)} code block(s).", "error")
                return
            text = blocks[number - 1]
            what = f"code block {number}"
        self.copy_text(text)
        saved = await self._save_copy(text)
        await self.notice(
            f"Copied {what} ({len(text)} characters) with OSC 52. If your terminal ignores OSC 52, "
            f"it is also in {saved}."
        )

    def copy_text(self, text: str) -> None:
        self.copy_to_clipboard(text)
        if os.environ.get("TMUX") and self._driver is not None:
            # tmux passes OSC 52 on only with set-clipboard; a DCS-wrapped copy also gets through
            # where allow-passthrough is on.
            import base64

            encoded = base64.b64encode(text.encode()).decode()
            self._driver.write(f"\x1bPtmux;\x1b\x1b]52;c;{encoded}\a\x1b\\")

    async def _save_copy(self, text: str) -> Path:
        target = paths.state_dir() / "last-copy.txt"

        import asyncio

        from lollma_tui.core.safe_files import write_private_file

        await asyncio.to_thread(write_private_file, target, text)
        return target

    async def export_conversation(self, argument: str) -> None:
        store = self.history_store
        if store is None or not self._conversation_saved:
            await self.notice("Nothing saved to export yet: say something first.")
            return
        words = argument.split(maxsplit=1)
        kind = words[0].lower() if words else "md"
        if kind not in ("md", "json"):
            await self.notice("Usage: /export md|json [PATH]", "error")
            return
        from lollma_tui.core.chat.export import export_json, export_markdown

        given = words[1] if len(words) > 1 else f"{_slug(self.conversation.title or 'conversation')}.{kind}"
        render = export_markdown if kind == "md" else export_json
        try:
            text = await store.run(render, store.store, self.conversation.id)
            target = await store.run(_write_private, given, text)
        except (StoreError, OSError) as error:
            await self.notice(f"Export failed: {error}", "error")
            return
        await self.notice(f"Exported to {target}")

    async def import_conversation(self, argument: str) -> None:
        store = self.history_store
        if store is None or not argument.strip():
            await self.notice("Usage: /import PATH (a conversation exported as JSON)", "error")
            return
        try:
            conversation_id = await store.run(_import_file, store.store, argument.strip())
        except (StoreError, OSError, ValueError) as error:
            await self.notice(f"Import failed, nothing was added: {error}", "error")
            return
        await self.open_conversation(conversation_id)

    # -- the context meter ----------------------------------------------------------------------

    def reply_finished(self, reply: Message) -> None:
        super().reply_finished(reply)
        self.refresh_context_meter()

    @on(SwapFinished)
    def _model_changed(self, _: SwapFinished) -> None:
        self.refresh_context_meter()

    async def open_conversation(self, conversation_id: str, focus_message: str | None = None) -> None:
        await super().open_conversation(conversation_id, focus_message)
        self.refresh_context_meter()

    async def action_new_conversation(self) -> None:
        await super().action_new_conversation()
        self._editing = None
        self.refresh_context_meter()

    @work(group="context-meter", exclusive=True, exit_on_error=False)
    async def refresh_context_meter(self) -> None:
        await self.update_context_meter()

    async def measure(self, text: str) -> tuple[int, bool]:
        """Tokens `text` takes with the loaded model's tokenizer, or an estimate (exact=False)."""
        counted = await self.backend.count_tokens(text)
        if counted is None:
            return estimate_tokens(text), False
        return counted, True

    async def update_context_meter(self) -> ContextCheck | None:
        loaded = self.backend.status.loaded
        if loaded is None:
            self.main.model_card.context = None
            return None
        used, exact = self._used_from_stats()
        if used is None:
            used, exact = 0, True
            for message in self.conversation.history():
                tokens, counted = await self.measure(message.content)
                used += tokens + TURN_OVERHEAD_TOKENS
                exact = exact and counted
        check = ContextCheck(used=used, needed=0, n_ctx=loaded.n_ctx, exact=exact)
        self.main.model_card.context = check
        return check

    def _used_from_stats(self) -> tuple[int | None, bool]:
        """Exact usage from the last reply: the prompt it was sent plus what it generated."""
        messages = self.conversation.messages
        if not messages or messages[-1].role != "assistant" or self.conversation.context_from:
            return None, False
        stats = messages[-1].stats
        loaded = self.backend.status.loaded
        if stats is None or stats.prompt_tokens is None or loaded is None:
            return None, False
        if stats.setup.model != loaded.name or stats.setup.n_ctx != loaded.n_ctx:
            return None, False
        return stats.prompt_tokens + stats.gen_tokens, True

    async def _fits_or_resolved(self, text: str) -> bool:
        """Check the next message against the context; ask what to do when it would overflow."""
        loaded = self.backend.status.loaded
        if loaded is None:
            return True
        current = await self.update_context_meter()
        if current is None:
            return True
        new_tokens, exact = await self.measure(text)
        needed = new_tokens + TURN_OVERHEAD_TOKENS + reply_reserve(self.sampling.max_tokens)
        check = ContextCheck(current.used, needed, loaded.n_ctx, current.exact and exact)
        if not check.overflows:
            return True
        self.ask_about_overflow(check, text)
        return False

    @work(group="context-overflow", exclusive=True, exit_on_error=False)
    async def ask_about_overflow(self, check: ContextCheck, text: str) -> None:
        from lollma_tui.ui.screens.context_overflow import ContextOverflowScreen, OverflowChoice

        choice = await self.push_screen_wait(ContextOverflowScreen(check.used, check.n_ctx, check.needed))
        if choice is OverflowChoice.CANCEL:
            self.main.prompt.load_text(text)
            return
        if choice is OverflowChoice.NEW_CONVERSATION:
            await self.action_new_conversation()
        elif choice is OverflowChoice.TRUNCATE:
            await self._leave_out_oldest(check)
        await self.send(text, context_checked=True)

    async def _leave_out_oldest(self, check: ContextCheck) -> None:
        messages = self.conversation.messages
        sizes = [(await self.measure(m.content))[0] + TURN_OVERHEAD_TOKENS for m in messages]
        budget = check.n_ctx - check.needed
        start = keep_from(sizes, budget, self.conversation.context_from)
        # Start the context on a user turn so the model never sees a reply without its question.
        while start < len(messages) and messages[start].role != "user":
            start += 1
        self.conversation.context_from = start
        await self.notice(
            f"The oldest {start} message(s) are left out of what the model sees from now on; "
            "they stay in the conversation."
        )


def _slug(title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()
    return slug[:48] or "conversation"


def _import_file(store: ChatStore, given: str) -> str:
    from lollma_tui.core.chat.export import import_json

    return import_json(store, Path(given).expanduser())


def _write_private(given: str, text: str) -> Path:
    """Write an export readable only by the user; a relative path is under the working folder.
    An existing file is kept (`ExportTargetExists`, an OSError) until the UI asks first."""
    from lollma_tui.core.chat.export import write_export

    return write_export(Path(given).expanduser().absolute(), text)

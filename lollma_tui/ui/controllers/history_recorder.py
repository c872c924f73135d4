"""Keeping every conversation: the SQLite store, saving as it happens, and the history's files.

A plain object the chat screen owns. Its methods run on the screen's workers and answer them
directly; a store that stops working is reported once as `NoticePosted` and the chat goes on
unsaved, except when another program only held the file's lock: the next turn saves what was
missed. It never touches a widget.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from textual.dom import DOMNode

from lollma_tui.core.chat.conversation import Conversation, Message
from lollma_tui.core.chat.errors import NotFoundError, StoreError, StoreLockedError
from lollma_tui.ui.literal import plain
from lollma_tui.ui.messages import NoticePosted

if TYPE_CHECKING:
    from lollma_tui.core.chat.async_store import AsyncStore, StreamingReply
    from lollma_tui.core.chat.opening import StoreOpen
    from lollma_tui.core.chat.store import ChatStore
    from lollma_tui.core.chat.store_results import ThreadWindow


SAVED_AGAIN = "History is saved again; nothing of this chat was lost."

IN_USE_ELSEWHERE = "That chat is open in another lollma-tui window: close it there to open it here."

LEAVING_UNSAVED = (
    "This chat is not all in the history (a save failed): leaving it loses what is not. "
    "/export md|json keeps it; do the same again to leave it anyway."
)

QUITTING_UNSAVED = (
    "This chat is not all in the history (a save failed): quitting loses what is not. "
    "/export md|json keeps it; quit again to quit anyway."
)


class HistoryRecorder:
    def __init__(self, owner: DOMNode) -> None:
        self._owner = owner
        self.store: AsyncStore | None = None
        """The open store; None until `open` has finished (or when it could not open)."""
        self.saved = False
        """The conversation on screen is in the store (it reaches it with its first message)."""
        self._unsaved = False
        """A save of the conversation on screen failed: nothing more of it is saved, so that no
        message lands in the store under the wrong parent (after one that is missing there)."""
        self._warned_leaving: str | None = None
        """The chat whose leaving was warned about (`may_leave`)."""
        self._locked_out = False
        """That failure was another program holding the history's lock: the next turn tries to
        save what was missed, and saving goes on from there."""

    @property
    def is_open(self) -> bool:
        return self.store is not None and self.store.is_open

    async def open(self, path: Path | None) -> StoreOpen:
        from lollma_tui.core.chat.async_store import AsyncStore

        store = AsyncStore()
        opened = await store.open(path)
        self.store = store
        return opened

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()

    async def take(self, conversation_id: str, refused: str | None = None) -> bool:
        """Hold `conversation_id` as the one on screen, letting go of the one before; False
        (said with `refused`, or `IN_USE_ELSEWHERE`) when another lollma-tui has it open."""
        store = self.store
        users = store.store.users if store is not None else None
        if store is None or users is None:
            return True
        if await store.run(users.hold, conversation_id):
            return True
        self._owner.post_message(NoticePosted(refused or IN_USE_ELSEWHERE, "warning"))
        return False

    def may_leave(self, conversation: Conversation, warning: str = LEAVING_UNSAVED) -> bool:
        """Whether the chat on screen may be left now (for another, or by quitting). One the
        history could not save all of is kept the first time, with `warning`: what is not saved
        would be lost. Asked again, it is left."""
        if not self._unsaved or not conversation.messages or self._warned_leaving == conversation.id:
            return True
        self._warned_leaving = conversation.id
        self._owner.post_message(NoticePosted(warning, "warning"))
        return False

    async def leave(self) -> None:
        """The conversation on screen is left for a new one: another lollma-tui may open it."""
        self._unsaved = self._locked_out = False  # the next conversation is saved again
        store = self.store
        users = store.store.users if store is not None else None
        if store is not None and users is not None:
            await store.run(users.release)

    async def resume_target(self, wanted: str | None) -> str | None:
        """The conversation to open at start-up: `wanted` (an id or a prefix), else the newest."""
        store = self.store
        if store is None:
            return None
        try:
            if wanted:
                return await store.run(store.store.resolve_id, wanted)
            return await store.run(store.store.latest_conversation_id)
        except StoreError as error:
            self._owner.post_message(NoticePosted(f"Could not open conversation {wanted}: {error}", "error"))
            return None

    async def load(self, conversation_id: str, last: int) -> tuple[ThreadWindow, ThreadWindow, int] | None:
        """The last `last` messages to mount, the whole thread for the model, and how many of
        its replies were found cut off by a crash; None on failure."""
        store = self.store
        if store is None:
            return None
        try:
            # Held here, and no reply of this process's is being written (the screen stopped it
            # first): a reply still marked as streaming was left by a lollma-tui that crashed.
            recovered = await store.run(store.store.recover, conversation_id)
            tail = await store.run(store.store.load, conversation_id, last=last)
            whole = await store.run(store.store.load, conversation_id)
        except StoreError as error:
            self._owner.post_message(NoticePosted(f"Could not open that conversation: {error}", "error"))
            return None
        self.saved = True
        self._unsaved = self._locked_out = False
        for window in (tail, whole):
            _clean_window(window)
        return tail, whole, recovered

    async def locate(self, message_id: str) -> bool:
        """Make the branch holding `message_id` the visible one; False (reported) on failure."""
        store = self.store
        if store is None:
            return False
        try:
            place = await store.run(store.store.locate, message_id)
            if not place.in_thread:
                # A hit on a branch that was edited away: show that branch.
                await store.run(store.store.switch_branch, message_id)
        except NotFoundError:
            # Deleted since it was found (here, in another lollma-tui or `history delete`): it
            # said only "no message cce38842…".
            self._owner.post_message(
                NoticePosted("That message is gone: its conversation was deleted.", "error")
            )
            return False
        except StoreError as error:
            self._owner.post_message(NoticePosted(str(error), "error"))
            return False
        return True

    async def versions(self, message_id: str) -> list[str] | None:
        """The ids of the versions of a message (regenerated replies, edits), oldest first;
        None (reported) when they cannot be read."""
        store = self.store
        if store is None:
            return None
        try:
            return await store.run(store.store.siblings, message_id)
        except StoreError as error:
            self._owner.post_message(NoticePosted(f"Could not read the versions: {error}", "error"))
            return None

    async def all_replies(self, conversation: Conversation) -> list[Message]:
        """Every reply of the conversation: the versions Ctrl+R replaced, other branches and
        the turns before the loaded window too, besides those in memory; oldest first."""
        replies = {m.id: m for m in conversation.messages if m.role == "assistant"}
        store = self.store
        if store is not None and self.saved:
            try:
                tree = await store.run(store.store.message_tree, conversation.id)
            except StoreError as error:
                self._owner.post_message(NoticePosted(f"Only this thread's replies: {error}", "warning"))
            else:
                for stored in tree.messages:
                    if stored.message.role == "assistant":
                        replies.setdefault(stored.message.id, stored.message)
        return sorted(replies.values(), key=lambda message: message.created_at)

    # -- saving as it happens -------------------------------------------------------------------

    def save_failed(self, error: StoreError) -> None:
        """The chat goes on without the store until another conversation is opened or started,
        or, when the history was only locked, until a later turn catches up; said once, not on
        every message."""
        if not self._unsaved:
            self._unsaved = True
            self._locked_out = isinstance(error, StoreLockedError)
            later = (
                "The conversation is kept here and saved with your next message."
                if self._locked_out
                else "This conversation goes on unsaved."
            )
            self._owner.post_message(NoticePosted(f"History could not be saved: {error}. {later}", "error"))

    async def _caught_up(self, conversation: Conversation) -> bool:
        """Save the messages of the thread that a locked history missed; True when the store
        holds them all again and saving goes on."""
        store = self.store
        if store is None or not self._locked_out:
            return False
        wanted = conversation.messages
        try:
            if not self.saved:
                await store.run(store.store.create_conversation, conversation)
                self.saved = True
                await self.take(conversation.id)
            else:
                stored = await store.run(store.store.load, conversation.id)
                have = [m.id for m in stored.conversation.messages]
                # After a regenerate or an edit the store's thread forks from the one on screen
                # where the new version began: what follows goes on a branch from there.
                common = next(
                    (
                        at
                        for at, (kept, shown) in enumerate(zip(have, wanted, strict=False))
                        if kept != shown.id
                    ),
                    min(len(have), len(wanted)),
                )
                parent = wanted[common - 1].id if common else None
                for message in wanted[common:]:
                    await store.run(store.store.add_message, conversation.id, message, parent_id=parent)
                    parent = message.id
        except StoreError as error:
            if not isinstance(error, StoreLockedError):
                self._locked_out = False  # no later turn can do better: said, not retried
                self._owner.post_message(
                    NoticePosted(
                        f"History could not catch up: {error}. This conversation goes on unsaved.", "error"
                    )
                )
            return False
        self._unsaved = self._locked_out = False
        self._owner.post_message(NoticePosted(SAVED_AGAIN, "info"))
        return True

    async def save_user_message(self, conversation: Conversation, message: Message) -> None:
        store = self.store
        if store is None:
            return
        if await store.file_gone():
            store = await self._made_again(store)
        if self._unsaved:
            # The message is the thread's last: catching up saves it with the rest.
            await self._caught_up(conversation)
            return
        try:
            if not self.saved:
                # Saved with its messages (this one included) the first time anything is said.
                await store.run(store.store.create_conversation, conversation)
                self.saved = True
                await self.take(conversation.id)
                return
            await store.run(store.store.add_message, conversation.id, message)
        except StoreError as error:
            self.save_failed(error)

    async def _made_again(self, gone: AsyncStore) -> AsyncStore:
        """The history file was deleted while open (everything written to it since would be
        lost when the app ends, unsaid): start a new one and save the chat on screen in it whole."""
        path = gone.store.path
        await gone.close()
        opened = await self.open(path)
        self.saved = False
        self._unsaved = self._locked_out = False
        said = (
            f"The history file {path} was deleted while open: a new one is started, with this "
            "conversation saved in it whole. Earlier conversations went with the deleted file."
        )
        self._owner.post_message(NoticePosted(opened.notice or said, "error" if opened.notice else "warning"))
        assert self.store is not None
        return self.store

    async def save_system_prompt(self, conversation: Conversation) -> None:
        store = self.store
        if store is None or not self.saved or self._unsaved:
            return
        try:
            await store.run(store.store.set_system_prompt, conversation.id, conversation.system_prompt)
        except StoreError as error:
            self.save_failed(error)

    async def begin_reply(
        self, conversation: Conversation, reply: Message, replaces: Message | None = None
    ) -> StreamingReply | None:
        """Save the empty reply before streaming starts; the returned handle takes its text."""
        store = self.store
        if store is None or not self.saved or self._unsaved:
            return None
        try:
            if replaces is not None:
                writer = await store.run(store.store.regenerate, replaces.id, message=reply)
            else:
                writer = await store.run(store.store.start_reply, conversation.id, message=reply)
        except StoreError as error:
            self.save_failed(error)
            return None
        return store.streaming(writer)

    async def begin_continued_reply(self, reply: Message) -> StreamingReply | None:
        store = self.store
        if store is None or not self.saved or self._unsaved:
            return None
        try:
            writer = await store.run(store.store.continue_reply, reply.id)
        except StoreError as error:
            self.save_failed(error)
            return None
        return store.streaming(writer)

    async def branch_from(self, original: Message, text: str) -> Message:
        """The edited message, saved on a new branch (the old one stays in the store)."""
        store = self.store
        if store is not None and self.saved and not self._unsaved:
            try:
                return await store.run(store.store.branch_from, original.id, text)
            except StoreError as error:
                self.save_failed(error)
        return Message("user", text)

    # -- titles and files -----------------------------------------------------------------------

    async def rename(self, conversation: Conversation, title: str) -> tuple[str, str]:
        """Rename the conversation; returns the line to show and its kind."""
        title = " ".join(plain(title, one_line=True).split())
        if not title:
            return f"This conversation is called “{conversation.title or 'untitled'}”.", "info"
        conversation.title = title
        store = self.store
        if store is not None and self.saved:
            try:
                await store.run(store.store.rename, conversation.id, title)
            except StoreError as error:
                return str(error), "error"
        return f"Renamed to “{title}”.", "info"

    async def export(
        self, conversation: Conversation, argument: str, *, overwrite: bool = False
    ) -> tuple[str, str]:
        """``/export md|json [PATH]``; returns the line to show and its kind.

        Raises `ExportTargetExists` when something is at the target and `overwrite` is false,
        so that the screen can ask before replacing it.
        """
        store = self.store
        words = argument.split(maxsplit=1)
        kind = words[0].lower() if words else "md"
        if kind not in ("md", "json"):
            return "Usage: /export md|json [PATH]", "error"
        # A chat the history could not save (or not all of) is written as it is on screen.
        on_screen = store is None or self._unsaved or not self.saved
        if on_screen and not conversation.messages:
            return "Nothing to export yet: say something first.", "info"
        from lollma_tui.core.chat import export as exporting

        given = words[1] if len(words) > 1 else "."
        render = exporting.export_markdown if kind == "md" else exporting.export_json
        try:
            named = (conversation.title, kind)
            if store is None or on_screen:
                text = exporting.export_thread(conversation, kind)
                target = await asyncio.to_thread(_write_private, given, text, overwrite, named)
            else:
                text = await store.run(render, store.store, conversation.id)
                target = await store.run(_write_private, given, text, overwrite, named)
        except exporting.ExportTargetExists:
            raise
        except OSError as error:
            return f"Export failed: {error.filename or given}: {error.strerror or error}", "error"
        except StoreError as error:
            return f"Export failed: {error}", "error"
        if on_screen:
            return f"Exported to {target}, as shown here: the history could not save it all", "info"
        return f"Exported to {target}", "info"

    async def import_file(self, argument: str) -> tuple[str, str | None] | None:
        """``/import PATH``: the new conversation's id and why it is a copy (`copy_reason`), or
        None (reported) when nothing was added."""
        store = self.store
        if store is None or not argument.strip():
            self._owner.post_message(
                NoticePosted("Usage: /import PATH (a conversation exported as JSON)", "error")
            )
            return None
        try:
            return await store.run(_import_file, store.store, argument.strip())
        except (StoreError, OSError, ValueError) as error:
            reason = str(error)
            if isinstance(error, OSError) and error.strerror and error.filename:
                reason = f"{error.filename}: {error.strerror}"
            self._owner.post_message(NoticePosted(f"Import failed, nothing was added: {reason}", "error"))
            return None


def _import_file(store: ChatStore, given: str) -> tuple[str, str | None]:
    from lollma_tui.core.chat.export import import_json_noting, path_argument

    return import_json_noting(store, path_argument(given)[0])


def _write_private(given: str, text: str, overwrite: bool, title_and_kind: tuple[str, str]) -> Path:
    """Write an export readable only by the user; a relative path is under the working folder,
    and a folder gets a file named after the title. An existing file is kept
    (`ExportTargetExists`, an OSError) unless `overwrite`."""
    from lollma_tui.core.chat.export import export_target, path_argument, write_export

    path, folder = path_argument(given)
    target = export_target(path.absolute(), *title_and_kind, folder=folder)
    return write_export(target, text, overwrite=overwrite)


def _clean_window(window: ThreadWindow) -> None:
    """Drop control characters from a loaded thread's text, which the chat shows and copies:
    an imported file, or a reply saved before replies were cleaned as they arrived, may hold
    escape sequences."""
    conversation = window.conversation
    conversation.title = plain(conversation.title, one_line=True)
    conversation.system_prompt = plain(conversation.system_prompt)
    for message in conversation.messages:
        message.content = plain(message.content)
        if message.error is not None:
            message.error = plain(message.error)

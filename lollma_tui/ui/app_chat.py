"""The chat itself: sending, streaming a reply into the log, stopping and regenerating."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work

from lollma_tui.core.backends.base import BackendError, ChatMessage, ReplyDone, TextDelta, ThinkingDelta
from lollma_tui.core.chat.commands import is_command, unescape_message
from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.formatting import format_gpu_layers
from lollma_tui.ui.app_history import HistoryFeatures
from lollma_tui.ui.paced_stream import PacedStream
from lollma_tui.ui.widgets.chat_log import ReplyTurn
from lollma_tui.ui.widgets.prompt_input import PromptInput

if TYPE_CHECKING:
    from lollma_tui.core.chat.async_store import StreamingReply

FINISH_STATE = {"stop": ReplyState.COMPLETE, "length": ReplyState.LENGTH, "cancelled": ReplyState.STOPPED}


class ChatFeatures(HistoryFeatures):
    @on(PromptInput.Submitted)
    async def _handle_prompt(self, message: PromptInput.Submitted) -> None:
        text = message.text
        if is_command(text):
            await self.run_command(text)
            return
        await self.send(unescape_message(text))

    async def run_command(self, text: str) -> None:
        """Slash commands are handled by a later layer (app_commands)."""
        raise NotImplementedError

    async def send(self, text: str) -> None:
        if self.is_generating:
            self.notify("A reply is still being written — Esc stops it.", severity="warning")
            return
        user = self.conversation.add_user(text)
        # Saved before it is sent: a crash from here on cannot lose what the user typed.
        await self.save_user_message(user)
        await self.main.chat_log.add_user(user)
        await self.start_reply()

    async def start_reply(self, replaces: Message | None = None) -> None:
        reply = self.conversation.start_reply()
        turn = await self.main.chat_log.add_reply(reply, self.reply_header())
        self._generating = reply
        saved = await self.begin_saved_reply(reply, replaces)
        self.generate(reply, turn, saved)

    async def start_continuation(self, reply: Message) -> None:
        """Stream more text onto `reply`, which stopped at the token limit or was cut off."""
        chat_log = self.main.chat_log
        previous = chat_log.turn_for(reply.id)
        if previous is not None:
            await previous.remove()
        reply.state = ReplyState.STREAMING
        turn = await chat_log.add_reply(reply, self.reply_header())
        self._generating = reply
        saved = await self.begin_continued_reply(reply)
        self.generate(reply, turn, saved, continuing=True)

    def reply_header(self) -> str:
        loaded = self.backend.status.loaded
        if loaded is None:
            return Path(self.load_settings.model).name or "assistant"
        return " · ".join(
            (
                loaded.name,
                loaded.quant,
                str(loaded.settings.backend),
                format_gpu_layers(loaded.n_gpu_layers, loaded.n_layers),
            )
        )

    @work(group="generation", exclusive=True, exit_on_error=False)
    async def generate(
        self, reply: Message, turn: ReplyTurn, saved: StreamingReply | None, continuing: bool = False
    ) -> None:
        history = self.conversation.history()
        if continuing:
            # The unfinished reply goes last: the backend continues it rather than answering anew.
            history.append(ChatMessage("assistant", reply.content))
        if self.backend.status.loaded is None or self.session.swapping:
            turn.show_waiting("waiting for the model to load… Esc cancels")
        await self.session.settled()
        stream = PacedStream(turn.body.get_stream(turn.body))
        streaming = False
        self.rate_begin()
        try:
            async for event in self.session.stream_chat(history, self.sampling):
                if isinstance(event, TextDelta):
                    if not streaming:
                        streaming = True
                        turn.show_streaming()
                    reply.content += event.text
                    self.rate_tokens(event.tokens)
                    await stream.write(event.text)
                    if saved is not None:
                        saved.add(event.text)
                        await saved.flush_if_due()
                elif isinstance(event, ThinkingDelta):
                    await turn.add_thinking(event.text)
                elif isinstance(event, ReplyDone):
                    reply.stats = event.stats
                    reply.state = FINISH_STATE[event.finish_reason]
                    self.main.model_card.last_stats = event.stats
        except BackendError as error:
            reply.state = ReplyState.ERROR
            reply.error = str(error)
        except asyncio.CancelledError:
            reply.state = ReplyState.STOPPED
            raise
        finally:
            if reply.state == ReplyState.STREAMING:
                reply.state = ReplyState.STOPPED
            self.rate_end()
            try:
                await stream.stop()
                if turn.is_mounted:
                    await turn.finish()
                if saved is not None:
                    await saved.finish(
                        reply.state, stats=reply.stats, sampling=self.sampling, error=reply.error
                    )
            finally:
                self._generating = None
            self.reply_finished(reply)

    async def action_stop(self) -> None:
        if not self.is_generating:
            return
        if self.backend.status.loaded is None or self.session.swapping:
            # Still waiting for the model: nothing runs in the engine yet, so just drop the wait.
            self.workers.cancel_group(self, "generation")
            return
        self.run_worker(self.session.cancel(), group="stop", exclusive=True, exit_on_error=False)

    async def stop_and_wait(self) -> None:
        """Stop a reply in flight and wait until its worker has wrapped up."""
        if not self.is_generating:
            return
        await self.action_stop()
        await self.workers.wait_for_complete([w for w in self.workers if w.group == "generation"])

    async def action_regenerate(self) -> None:
        if self.is_generating:
            self.notify("Wait for the reply to finish, or press Esc first.", severity="warning")
            return
        old = self.conversation.last_reply()
        if self.conversation.drop_last_reply() is None:
            self.notify("Nothing to regenerate yet.")
            return
        await self.main.chat_log.remove_last_reply()
        # The store keeps the old reply as a sibling branch.
        await self.start_reply(replaces=old)

    async def action_new_conversation(self) -> None:
        await self.stop_and_wait()
        self.forget_conversation(self.conversation.system_prompt)
        await self.main.chat_log.clear_turns()
        await self.notice("New conversation.")

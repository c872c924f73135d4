"""Streaming a reply into its turn in the chat log, one reply at a time.

A plain object the chat screen owns: it runs the screen's "generation" worker, writes the
reply's text into the turn the screen hands it, saves it as it grows, and stops it on request.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lollma_tui.core.backends.base import (
    BackendError,
    ChatMessage,
    NoModelError,
    ReplyDone,
    TextDelta,
    ThinkingDelta,
)
from lollma_tui.core.chat.conversation import Message, ReplyState, is_sent
from lollma_tui.core.chat.errors import StoreError
from lollma_tui.core.chat.writer import state_for
from lollma_tui.ui.controllers.token_rate import TokenRate
from lollma_tui.ui.literal import StreamCleaner, plain
from lollma_tui.ui.paced_stream import PacedStream

if TYPE_CHECKING:
    from lollma_tui.core.chat.async_store import StreamingReply
    from lollma_tui.ui.controllers.model_session import ModelController
    from lollma_tui.ui.screens.chat import ChatScreen
    from lollma_tui.ui.widgets.chat_log import ReplyTurn

Ended = tuple[ReplyState, str | None]
"""How a reply ended: its state and its error, if any."""


class ReplyStreamer:
    def __init__(self, screen: ChatScreen) -> None:
        self._screen = screen
        self._rate = TokenRate()
        self._generating: Message | None = None
        self.writing = False
        """The reply in flight is writing its text: what else changes on screen waits for its
        next update (`SidePanel.show_live`)."""
        self.ending = False
        """The reply in flight has ended (the model is done, or it was stopped); only showing
        it whole and saving it are left."""
        self._over = asyncio.Event()
        self._stop_asked = asyncio.Event()
        self._in_engine = False
        """The reply's request has gone to the engine: only the engine can stop it now."""

    @property
    def generating(self) -> Message | None:
        """The reply being written (or waiting for the model), if any."""
        return self._generating

    @generating.setter
    def generating(self, reply: Message | None) -> None:
        self._generating = reply
        self._screen.drawer.reply_running(reply is not None)

    async def start(
        self,
        reply: Message,
        turn: ReplyTurn,
        *,
        replaces: Message | None = None,
        continuing: Ended | None = None,
    ) -> None:
        """Write `reply` into `turn`: a new reply (replacing `replaces`), or more of a cut-off one
        (`continuing` holds the state and error it ended with, kept when nothing is added)."""
        screen = self._screen
        self.generating = reply
        self._over = asyncio.Event()
        self._stop_asked = asyncio.Event()
        # Saved before streaming starts; the handle then takes the text as it comes.
        try:
            if continuing:
                saved = await screen.history.begin_continued_reply(reply)
            else:
                saved = await screen.history.begin_reply(screen.conversation, reply, replaces)
        except BaseException:
            # No worker will write this reply, so nothing else would ever end it.
            self.generating = None
            self._over.set()
            raise
        work = self._generate(reply, turn, saved, continuing, replaces=replaces)
        screen.run_worker(work, group="generation", exclusive=True, exit_on_error=False)

    async def _generate(
        self,
        reply: Message,
        turn: ReplyTurn,
        saved: StreamingReply | None,
        continuing: Ended | None,
        *,
        replaces: Message | None = None,
    ) -> None:
        screen = self._screen
        written_before = len(reply.content)
        models = screen.models
        history = screen.conversation.history()
        if continuing:
            # The unfinished reply goes last: the backend continues it rather than answering anew.
            history.append(ChatMessage("assistant", reply.content))
        # The live tokens/s and the hardware panel change with the text, in the same screen
        # update (a repaint of their own cost a good part of the UI's time while streaming).
        rate: float | None = None
        sampling = models.sampling  # what the reply is asked with is what is saved with it

        def show_live() -> None:
            nonlocal rate
            screen.panel.show_live(rate)
            rate = None

        stream = PacedStream(turn.body.get_stream(turn.body), on_write=show_live)
        # Model text is cleaned as it arrives: what is shown, saved, copied and sent back to the
        # model never holds an escape sequence (llama.cpp byte tokens, a server's "\u001b").
        text_cleaner, thinking_cleaner = StreamCleaner(), StreamCleaner()
        thinking = thinking_more = False
        try:
            if not models.ready:
                turn.show_waiting("waiting for the model to load… Esc cancels")
            if await self._model_or_stop(models):
                turn.set_heading(models.reply_heading())
                # A long prompt, or a server that loads the model first: no sign of life otherwise.
                turn.show_waiting("reading the prompt… Esc stops")
                self._rate.begin()
                self._in_engine = True
                async for event in models.session.stream_chat(history, sampling):
                    if isinstance(event, TextDelta):
                        if not self.writing:
                            self.writing = True
                            turn.show_streaming()
                            # A model restarted by this request (after a crash) was not loaded
                            # when the heading was set: it names the file only.
                            turn.set_heading(models.reply_heading())
                        text = text_cleaner.feed(event.text)
                        reply.content += text
                        measured = self._rate.update(event.tokens, event.at)
                        if measured is not None:
                            rate = measured
                        await stream.write(text)
                        if saved is not None:
                            saved.add(text)
                            saved.flush_if_due()
                    elif isinstance(event, ThinkingDelta):
                        if not self.writing and not thinking:
                            thinking = True
                            turn.show_thinking()
                        measured = self._rate.update(event.tokens, event.at)
                        if measured is not None and not self.writing:
                            # No text is written while the model thinks: nothing else would
                            # show its pace, which is what a long silence most needs.
                            screen.panel.show_live(measured)
                        elif measured is not None:
                            rate = measured
                        thought = thinking_cleaner.feed(event.text)
                        if continuing and thought.strip() and reply.thinking.strip() and not thinking_more:
                            # A continuation thinks again: its thought is a paragraph of its own.
                            thinking_more, thought = True, "\n\n" + thought.lstrip()
                        await turn.add_thinking(thought)
                        if saved is not None:
                            saved.add_thinking(thought)
                            saved.flush_if_due()
                    elif isinstance(event, ReplyDone):
                        # Continued, the reply's figures are those of all of it.
                        before = reply.stats if continuing else None
                        reply.stats = event.stats if before is None else before.followed_by(event.stats)
                        reply.state = state_for(event.finish_reason)
                        screen.show_reply_stats(reply.stats)
        except NoModelError:
            # The engine knows only that it has no model; what left it so (a failed load, a
            # server that cannot be reached) is in the status the user was last shown.
            status = models.status or models.backend.status
            reason = plain(status.message, one_line=True).rstrip(". ")
            if not await self._kept_after_failed_continue(
                reply, continuing, written_before, f"no model is loaded · {reason}"
            ):
                reply.state = ReplyState.ERROR
                reply.error = f"not sent, no model is loaded · {reason} · Ctrl+R sends it again once one is"
        except BackendError as error:
            # A plain refusal (a server that cannot continue replies) is no failure to retry.
            again = type(error) is not BackendError
            if not await self._kept_after_failed_continue(
                reply, continuing, written_before, plain(str(error)), again=again
            ):
                reply.state = ReplyState.ERROR
                reply.error = plain(str(error))
        except asyncio.CancelledError:
            reply.state = ReplyState.STOPPED
            raise
        finally:
            self._in_engine = False
            self.ending = True
            if reply.state == ReplyState.STREAMING:
                reply.state = ReplyState.STOPPED
            self.writing = False
            screen.panel.show_live(None, ended=True)
            try:
                await stream.stop()
                if turn.is_mounted:
                    await turn.finish()
                if saved is not None:
                    try:
                        await saved.finish(
                            reply.state, stats=reply.stats, sampling=sampling, error=reply.error
                        )
                    except StoreError as error:
                        screen.history.save_failed(error)
                    if (replaces or continuing) and turn.is_mounted:  # its turn is new
                        await self.mark_versions()
                if replaces is not None and not is_sent(reply) and turn.is_mounted:
                    await self._keep_replaced(reply, replaces, saved is not None)
            finally:
                self.generating = None
                self.ending = False
                self._over.set()
            screen.context.refresh(screen.conversation)

    async def _kept_after_failed_continue(
        self, reply: Message, continuing: Ended | None, written_before: int, why: str, *, again: bool = True
    ) -> bool:
        """/continue that failed: the text so far stays the reply, and the failure is said beside
        it. A reply that got no further ends as it was (cut at the length limit, say); one that
        got further is stopped, so it is still sent to the model and can be continued."""
        if continuing is None or not reply.content:
            return False
        if len(reply.content) == written_before:
            reply.state, reply.error = continuing
        else:
            reply.state = ReplyState.STOPPED
        hint = " · /continue tries again" if again else ""
        await self._screen.notice(f"Could not continue the reply: {why}{hint}", "error")
        return True

    async def _keep_replaced(self, failed: Message, replaced: Message, stored: bool) -> None:
        """A new version that failed, or was stopped before any text, gives way to the one it
        replaced: shown, it hid the answer the user read, and the model would be sent the
        question without it."""
        screen = self._screen
        messages = screen.conversation.messages
        if (
            not messages
            or messages[-1] is not failed
            or (stored and not await screen.history.locate(replaced.id))
        ):
            return
        messages[-1] = replaced
        await screen.chat_log.replace_turn(failed.id, replaced)
        await self.mark_versions()
        why = f"failed: {failed.error}" if failed.error else "was stopped before any text"
        where = " · /version shows it" if stored else ""
        await screen.notice(f"The new version {why}; the reply before is shown again{where}.", "warning")

    async def mark_versions(self) -> None:
        """Say on the last reply which version it is, when Ctrl+R (or /version) made several."""
        screen = self._screen
        last = screen.conversation.last_reply()
        if last is None or screen.history.store is None:
            return
        versions = await screen.history.versions(last.id)
        if versions and len(versions) > 1 and last.id in versions:
            screen.chat_log.mark_version(last.id, versions.index(last.id) + 1, len(versions))

    async def wait_until_over(self) -> None:
        """Wait until the reply in flight is shown whole and saved (returns at once when none is)."""
        if self.generating is not None:
            await self._over.wait()

    async def stop(self) -> None:
        if self.generating is None:
            return
        # Before its request reaches the engine (while it is saved, handed to its worker or
        # waiting for the model) the engine has nothing to cancel: the reply ends on this flag.
        self._stop_asked.set()
        if self._in_engine:
            self._screen.models.stop_reply()

    async def stop_and_wait(self) -> None:
        """Stop a reply in flight and wait until it is shown whole and saved."""
        if self.generating is None:
            return
        await self.stop()
        await self._over.wait()

    async def _model_or_stop(self, models: ModelController) -> bool:
        """Wait until no load or swap is running; False when the reply was stopped first."""
        if self._stop_asked.is_set():
            return False
        settled = asyncio.ensure_future(models.session.settled())
        stopped = asyncio.ensure_future(self._stop_asked.wait())
        try:
            await asyncio.wait((settled, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            settled.cancel()
            stopped.cancel()
        return not self._stop_asked.is_set()

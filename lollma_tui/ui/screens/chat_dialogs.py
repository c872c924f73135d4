"""The screens the chat screen opens, and what their answers do to the chat.

A plain object the chat screen owns: it opens the conversation list, search, the bench and
quantize screens and the context-overflow question, and turns what they answer into calls on
the screen's own methods.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from lollma_tui.core import paths
from lollma_tui.core.formatting import counted
from lollma_tui.core.settings import BackendKind, LoadSettings

if TYPE_CHECKING:
    from lollma_tui.core.chat.context_budget import ContextCheck
    from lollma_tui.core.chat.conversation import Conversation
    from lollma_tui.ui.controllers.context_meter import Resend
    from lollma_tui.ui.screens.chat import ChatScreen
    from lollma_tui.ui.screens.conversations import ConversationsResult
    from lollma_tui.ui.screens.search import SearchJump


class ChatDialogs:
    def __init__(self, screen: ChatScreen) -> None:
        self._screen = screen

    # -- saved conversations --------------------------------------------------------------------

    def conversations(self) -> None:
        screen = self._screen
        if not screen.history.is_open:
            screen.notify("The history is not open yet.")
            return
        from lollma_tui.ui.screens.conversations import ConversationsScreen

        assert screen.history.store is not None
        current = screen.conversation.id if screen.history.saved else None
        dialog = ConversationsScreen(screen.history.store.store, current_id=current)
        screen.app.push_screen(dialog, self._conversation_chosen)

    async def _conversation_chosen(self, result: ConversationsResult) -> None:
        from lollma_tui.ui.screens.conversations import NEW_CONVERSATION

        if result is None:
            return
        if result is NEW_CONVERSATION:
            await self._screen.action_new_conversation()
            return
        screen = self._screen
        if str(result) == screen.conversation.id and screen.history.saved:
            return  # already on screen: opening it again would stop the reply being written
        await screen.open_conversation(str(result))

    def search(self, query: str = "") -> None:
        screen = self._screen
        if not screen.history.is_open:
            screen.notify("The history is not open yet.")
            return
        from lollma_tui.ui.screens.search import SearchScreen

        assert screen.history.store is not None
        screen.app.push_screen(SearchScreen(screen.history.store.store, query=query), self._search_chosen)

    async def _search_chosen(self, jump: SearchJump | None) -> None:
        if jump is None:
            return
        screen = self._screen
        history = screen.history
        shown = jump.conversation_id == screen.conversation.id and history.saved
        if shown and any(m.id == jump.message_id for m in screen.conversation.messages):
            await screen.pages.reveal(jump.message_id)  # in the thread on screen: no reload
            return
        # Asked first: finding the message may change which branch that chat shows.
        if not await history.take(jump.conversation_id):
            return
        if await history.locate(jump.message_id):
            await screen.open_conversation(jump.conversation_id, focus_message=jump.message_id)
        elif history.saved:
            await history.take(screen.conversation.id)  # still the one on screen

    def confirm_export_over(self, target: Path, argument: str) -> None:
        """``/export`` found a file at `target`: replace it only if the user says yes."""
        from lollma_tui.ui.screens.confirm import ConfirmScreen

        screen = self._screen
        question = f"{target} already exists.\nReplace it with this conversation?"
        answered = partial(self._export_over_answered, screen.conversation, argument, target)
        screen.app.push_screen(ConfirmScreen(question, "Replace", "Keep"), answered)

    async def _export_over_answered(
        self, conversation: Conversation, argument: str, target: Path, yes: bool | None
    ) -> None:
        screen = self._screen
        if not yes:
            await screen.notice(f"Not exported: {target} is left as it was.")
            return
        await screen.notice(*await screen.history.export(conversation, argument, overwrite=True))

    def confirm_model_delete(self, name: str) -> None:
        """``/delete NAME``: delete the Ollama model only if the user says yes."""
        from lollma_tui.ui.screens.confirm import ConfirmScreen

        screen = self._screen
        question = (
            f"Delete {name} from the Ollama server at {screen.models.server_address()}?\n"
            "Using it again means pulling it again."
        )
        screen.app.push_screen(
            ConfirmScreen(question, "Delete", "Keep"), partial(self._delete_answered, name)
        )

    async def _delete_answered(self, name: str, yes: bool | None) -> None:
        screen = self._screen
        if not yes:
            await screen.notice(f"Kept {name}.")
            return
        screen.run_worker(self._delete_model(name), group="ollama-delete", exit_on_error=False)

    async def _delete_model(self, name: str) -> None:
        text, kind = await self._screen.models.delete(name)
        await self._screen.notice(text, kind)
        if kind != "error":
            self._screen.catalog.refresh()  # Tab and the drawer no longer offer it

    # -- the context --------------------------------------------------------------------------------

    def ask_about_overflow(self, check: ContextCheck, text: str) -> None:
        """The next message would overflow the context: ask what to do, then send it (or not)."""
        self._screen.run_worker(
            self._ask_about_overflow(check, text),
            group="context-overflow",
            exclusive=True,
            exit_on_error=False,
        )

    async def _ask_about_overflow(self, check: ContextCheck, text: str) -> None:
        from lollma_tui.ui.screens.context_overflow import ContextOverflowScreen, OverflowChoice

        screen = self._screen
        # None: the message and the room for its reply are too much, whatever is left out.
        start = await screen.context.fitting_start(screen.conversation, text, check)
        choice = await screen.app.push_screen_wait(
            ContextOverflowScreen(check.used, check.n_ctx, check.total, can_truncate=start is not None)
        )
        if choice is OverflowChoice.CANCEL:
            screen.prompt.put_back(text)
            return
        if choice is OverflowChoice.NEW_CONVERSATION:
            if not screen.history.may_leave(screen.conversation):
                screen.prompt.put_back(text)
                return
            await screen.new_conversation()
        elif choice is OverflowChoice.TRUNCATE and start is not None:
            await self._leave_out(start)
        await screen.send(text, context_checked=True)

    async def _leave_out(self, start: int) -> None:
        self._screen.conversation.context_from = start
        await self._screen.notice(
            f"Left out of what the model sees from now on: the oldest {counted(start, 'message')} "
            "(still in the conversation)."
        )

    async def resend_overflows(
        self, upto: int, text: str, subject: str, go: Callable[[], Awaitable[None]], back: Callable[[], None]
    ) -> bool:
        """Whether sending the first `upto` messages and then `text` again (an edit of message
        `upto`, or the question a reply answers, as `subject` names it) overflows the context.
        If so, ask whether to leave the oldest turns out, then `go` (or `back`).

        Only refused, Ctrl+R and /edit could not be used at all in a long chat after a restart
        (the turns left out before are sent again) or after a smaller /ctx."""
        screen = self._screen
        resend = await screen.context.resend_check(screen.conversation, upto, text, subject)
        if resend is None:
            return False
        screen.run_worker(
            self._ask_about_resend(resend, go, back),
            group="context-overflow",
            exclusive=True,
            exit_on_error=False,
        )
        return True

    async def _ask_about_resend(
        self, resend: Resend, go: Callable[[], Awaitable[None]], back: Callable[[], None]
    ) -> None:
        from lollma_tui.ui.controllers.context_meter import resend_refusal
        from lollma_tui.ui.screens.context_overflow import ContextOverflowScreen, OverflowChoice

        screen = self._screen
        check = resend.check
        head = replace(screen.conversation, messages=screen.conversation.messages[: resend.upto])
        if (start := await screen.context.fitting_start(head, resend.text, check)) is None:
            back()
            await screen.notice(resend_refusal(check), "warning")
            return
        choice = await screen.app.push_screen_wait(
            ContextOverflowScreen(check.used, check.n_ctx, check.total, resend=resend.subject)
        )
        if choice is OverflowChoice.TRUNCATE:
            await self._leave_out(start)
        elif choice is not OverflowChoice.SEND_ANYWAY:
            back()
            return
        await go()

    # -- benchmarks and quantizing ------------------------------------------------------------------

    def bench(self) -> None:
        from lollma_tui.core.models.catalog import Catalog
        from lollma_tui.ui.screens.bench import BenchScreen

        screen = self._screen
        settings = screen.models.settings
        model = settings.model if settings.backend == BackendKind.LLAMA_CPP else None
        dialog = BenchScreen(
            screen.catalog.gguf or Catalog(),
            model=model,
            budget=screen.memory_budget(),
            base_settings=settings,
            log_path=paths.log_dir() / "bench.log",
        )
        screen.app.push_screen(dialog)

    def apply_bench_best(self, load: LoadSettings) -> None:
        """Load the bench's best set-up, saying what changes: the bench screen closes at once."""
        from lollma_tui.core.chat.setting_commands import load_changes
        from lollma_tui.ui.messages import NoticePosted

        screen = self._screen
        changes = load_changes(screen.models.settings, load)
        if screen.models.swap_to(load):
            screen.post_message(
                NoticePosted(f"The bench's best set-up: {changes} · /keep keeps it for the next start")
            )

    async def quantize(self, model: str | None = None) -> None:
        screen = self._screen
        settings = screen.models.settings
        source = model or (settings.model if settings.backend == BackendKind.LLAMA_CPP else "")
        if not source:
            await screen.notice(
                "Quantizing works on GGUF files: load one with the llama.cpp backend.", "error"
            )
            return
        from lollma_tui.ui.screens.quantize import QuantizeScreen

        dialog = QuantizeScreen(Path(source), log_path=paths.log_dir() / "quantize.log")
        screen.app.push_screen(dialog, self._quantized)

    async def _quantized(self, created: list[Path] | None) -> None:
        if not created:
            return
        names = ", ".join(path.name for path in created)
        which = "it" if len(created) == 1 else "one"
        await self._screen.notice(f"Created {names}; pick {which} in the drawer (F2) or with /quant.")
        self._screen.catalog.scan()

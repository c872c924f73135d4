"""The chat screen: the conversation on the left, the side panel on the right, keys at the bottom.

It owns the conversation and its flow (send, regenerate, edit, continue, open saved ones) and
composes plain objects for the rest: the model session, the model catalog, the history recorder,
the hardware feed and the context meter report with messages, which the screen hands down to its
widgets as attributes. Its helpers (`chat_*.py`) each do one part of its work: writing replies,
slash commands, dialogs, the settings drawer, hosts, and the side panel."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from functools import cached_property, partial
from typing import TYPE_CHECKING, cast

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from lollma_tui.core.formatting import counted
from lollma_tui.ui.literal import plain
from lollma_tui.ui.screens.chat_dialogs import ChatDialogs
from lollma_tui.ui.screens.chat_drawer import ChatDrawer
from lollma_tui.ui.screens.chat_pages import TAIL_MESSAGES, ChatPages
from lollma_tui.ui.screens.chat_panel import SidePanel
from lollma_tui.ui.widgets.chat_log import ChatLog
from lollma_tui.ui.widgets.fitting_footer import FittingFooter
from lollma_tui.ui.widgets.prompt_input import PromptInput

if TYPE_CHECKING:
    from textual.command import Provider

    from lollma_tui.core.backends.base import Backend, ReplyStats
    from lollma_tui.core.chat.conversation import Conversation, Message
    from lollma_tui.core.hosts import HostEntry
    from lollma_tui.core.session import MemoryBudget
    from lollma_tui.core.settings import BackendKind, StartupOptions
    from lollma_tui.ui.controllers.context_meter import ContextMeter
    from lollma_tui.ui.controllers.hardware_feed import HardwareFeed
    from lollma_tui.ui.controllers.history_recorder import HistoryRecorder
    from lollma_tui.ui.controllers.model_catalog import ModelCatalog
    from lollma_tui.ui.controllers.model_session import ModelController
    from lollma_tui.ui.messages import (
        BackendStatusChanged,
        ChoicesRefreshed,
        ContextMeasured,
        HardwareLinkChanged,
        HardwareSampled,
        HostsReported,
        NoticePosted,
        ServerExtrasRead,
        SwapFinished,
        SwapProgressed,
    )
    from lollma_tui.ui.screens.chat_commands import ChatCommands
    from lollma_tui.ui.screens.chat_hosts import ChatHosts
    from lollma_tui.ui.screens.chat_palette import CommandChosen
    from lollma_tui.ui.screens.chat_replies import ReplyStreamer
    from lollma_tui.ui.widgets.hardware_panel import HardwarePanel
    from lollma_tui.ui.widgets.model_card import ModelCard
    from lollma_tui.ui.widgets.server_info import ServerInfo
    from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer

FIRST_SAMPLE_WAIT_S = 2.0
"""The first load waits this long at most for free-memory figures to check the fit against."""


def _slash_commands() -> type[Provider]:
    from lollma_tui.ui.screens.chat_palette import SlashCommands

    return SlashCommands


class ChatScreen(Screen[None]):
    """The parts that talk to models, the store and servers are built on first use, which is
    `start`'s, once the first frame is up: their modules are not imported before it. The
    handlers of what they report are found by name for the same reason."""

    COMMANDS = {_slash_commands}
    BINDINGS = [
        Binding("escape", "stop", "Stop", id="stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="regenerate"),
        Binding("ctrl+n", "new_conversation", "New chat", id="new-conversation"),
        Binding("f2,ctrl+t", "toggle_settings", "Settings", id="toggle-settings"),
        Binding("ctrl+o", "conversations", "Chats", id="conversations"),
        Binding("ctrl+f", "search", "Search", id="search", show=False),
        Binding("f3", "copy_last", "Copy", id="copy-last", show=False),
        Binding("ctrl+b", "toggle_sidebar", "Panel", id="toggle-sidebar"),
        Binding("f4", "hosts", "Hosts", id="hosts", show=False),
    ]

    def __init__(
        self, options: StartupOptions, backend: Backend | None = None, *, hosts: Sequence[HostEntry] = ()
    ) -> None:
        super().__init__()
        self.options = options
        self._backend = backend
        self._hosts = hosts
        self.dialogs = ChatDialogs(self)
        self.drawer = ChatDrawer(self)
        self.panel = SidePanel(self)
        self.hardware: HardwareFeed | None = None  # started once the first frame is up (`start`)
        self._editing: Message | None = None
        self.pages = ChatPages(self)
        self._history_opened = asyncio.Event()

    @property
    def editing(self) -> Message | None:
        """The message /edit put back in the prompt: Enter sends the prompt in its place."""
        return self._editing

    @editing.setter
    def editing(self, message: Message | None) -> None:
        self._editing = message
        # Said on the prompt's border while it lasts: a chat cleared and retyped is still an edit.
        self.prompt.border_title = "editing your last message · Esc drops the edit" if message else None

    @cached_property
    def conversation(self) -> Conversation:
        from lollma_tui.core.chat.conversation import Conversation

        return Conversation(system_prompt=self.options.system_prompt)

    @cached_property
    def models(self) -> ModelController:
        from lollma_tui.ui.controllers.model_session import ModelController

        return ModelController(
            self, self.options, backend=self._backend, hosts=self._hosts, budget=self.memory_budget,
            first_budget=self._first_budget,
        )  # fmt: skip

    @cached_property
    def catalog(self) -> ModelCatalog:
        from lollma_tui.ui.controllers.model_catalog import ModelCatalog

        return ModelCatalog(self, self.models, budget=self.memory_budget)

    @cached_property
    def history(self) -> HistoryRecorder:
        from lollma_tui.ui.controllers.history_recorder import HistoryRecorder

        return HistoryRecorder(self)

    @cached_property
    def context(self) -> ContextMeter:
        from lollma_tui.ui.controllers.context_meter import ContextMeter

        return ContextMeter(self, self.models)

    @cached_property
    def commands(self) -> ChatCommands:
        from lollma_tui.ui.screens.chat_commands import ChatCommands

        return ChatCommands(self)

    @cached_property
    def hosts(self) -> ChatHosts:
        from lollma_tui.ui.screens.chat_hosts import ChatHosts

        return ChatHosts(self)

    @cached_property
    def replies(self) -> ReplyStreamer:
        from lollma_tui.ui.screens.chat_replies import ReplyStreamer

        return ReplyStreamer(self)

    # -- layout -----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="chat-column"):
                yield ChatLog(id="chat-log")
                yield PromptInput(id="prompt")
            # Filled by `start`, once the first frame is up: the chat and its prompt come first.
            yield VerticalScroll(id="sidebar", can_focus=False)  # focused, it showed nothing
        yield FittingFooter()

    @property
    def chat_log(self) -> ChatLog:
        return self.query_one(ChatLog)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def model_card(self) -> ModelCard:
        return cast("ModelCard", self.query_one("#model-card"))

    @property
    def hardware_panel(self) -> HardwarePanel:
        return cast("HardwarePanel", self.query_one("#hardware-panel"))

    @property
    def sidebar(self) -> VerticalScroll:
        return self.query_one("#sidebar", VerticalScroll)

    @property
    def settings_drawer(self) -> SettingsDrawer | None:
        """The drawer once it has been opened (it is built on first use, off the start-up path)."""
        found = self.query("#settings-drawer")
        return cast("SettingsDrawer", found.first()) if found else None

    # -- life -------------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.prompt.focus()

    async def start(self) -> None:
        """Fill the side panel and start the work behind the screen, once the first frame is up."""
        # Imported here, as the drawer is: their modules (and the hardware stack behind them)
        # are not needed for the first frame.
        from lollma_tui.ui.messages import NoticePosted
        from lollma_tui.ui.widgets.hardware_panel import HardwarePanel
        from lollma_tui.ui.widgets.model_card import ModelCard
        from lollma_tui.ui.widgets.server_info import ServerInfo

        await self.sidebar.mount_all(
            [ModelCard(id="model-card"), ServerInfo(id="server-info"), HardwarePanel(id="hardware-panel")]
        )
        # The session is built here, on the UI thread, before the sampler thread runs.
        self.model_card.status = self.models.backend.status
        self.start_hardware()
        for text, kind in self.options.start_notices:
            self.post_message(NoticePosted(text, kind))
        self.models.load_first(self._model_chat_used)
        self.open_history()
        self.catalog.scan()
        threading.Thread(target=_preload_reply_widgets, name="preload-markdown", daemon=True).start()

    def start_hardware(self) -> None:
        self.hardware = self.hosts.start_hardware()

    async def wind_down(self) -> None:
        """Stop the reply in flight (saving what it has) and close the model and the history."""
        await self.replies.stop_and_wait()
        await self.models.close()
        await self.history.close()

    async def on_unmount(self) -> None:
        if self.hardware is not None:
            self.hardware.stop(timeout=2.0)
        # However the app ends, the worker, its spare and the history end with it (/quit closed them).
        await self.models.close()
        await self.history.close()

    @property
    def is_generating(self) -> bool:
        return self.replies.generating is not None

    async def notice(self, text: str, kind: str = "info") -> None:
        await self.chat_log.add_notice(text, kind)

    def show_reply_stats(self, stats: ReplyStats) -> None:
        self.model_card.last_stats = stats

    # -- what the controllers report ---------------------------------------------------------------

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The screen's workers leave the app running when they fail: the user is told, at least.
        if event.state == WorkerState.ERROR and (error := event.worker.error) is not None:
            await self.notice(f"{event.worker.name} failed: {type(error).__name__}: {error}", "error")

    async def on_notice_posted(self, message: NoticePosted) -> None:
        await self.chat_log.add_notice(message.text, message.kind)

    def on_backend_status_changed(self, message: BackendStatusChanged) -> None:
        self.model_card.status = message.status

    def on_swap_progressed(self, message: SwapProgressed) -> None:
        self.drawer.swap_progressed(message.progress.message)

    async def on_swap_finished(self, message: SwapFinished) -> None:
        result = message.result
        self.drawer.swap_progressed(None)
        for text, kind in self.models.report(result):
            await self.chat_log.add_notice(text, kind)
        self.model_card.swapped_to(self.models.loaded)
        self.catalog.refresh()
        self.context.refresh(self.conversation)
        self.hosts.follow()

    def on_choices_refreshed(self, message: ChoicesRefreshed) -> None:
        self.prompt.completion_context = message.completion
        self.drawer.choices_refreshed(message)

    def on_context_measured(self, message: ContextMeasured) -> None:
        self.model_card.context = message.check

    def on_hardware_sampled(self, message: HardwareSampled) -> None:
        # Not stopped: the app hands it on to the bench screen when that is open.
        self.panel.sampled(message)

    def on_hardware_link_changed(self, message: HardwareLinkChanged) -> None:
        self.hosts.link_changed(message)

    def on_server_extras_read(self, message: ServerExtrasRead) -> None:
        self.hosts.extras_read(cast("ServerInfo", self.query_one("#server-info")), message)

    def on_hosts_reported(self, message: HostsReported) -> None:
        self.hosts.reported(message)

    def memory_budget(self) -> MemoryBudget | None:
        """Free memory of this machine from the newest snapshot (None before the first one, and
        while the panel shows another machine: its memory is not where llama.cpp runs)."""
        return self.hardware.budget() if self.hardware is not None and self.hardware.remote is None else None

    async def _first_budget(self) -> MemoryBudget | None:
        """Like `memory_budget`: worth a short wait at start-up, and taken aside when remote."""
        return await self.hardware.local_budget(FIRST_SAMPLE_WAIT_S) if self.hardware is not None else None

    # -- the conversation ---------------------------------------------------------------------------

    @on(PromptInput.CompletionsWanted)
    def _completions_wanted(self, message: PromptInput.CompletionsWanted) -> None:
        if (kind := self.catalog.list_for_completion(message.text)) is not None:
            why = self.catalog.unlisted.get(kind)  # the last ask failed: say why; it asks again
            asking = f"Asking {kind} for its models: Tab again in a moment"
            self.notify(asking if why is None else f"{why} · {asking}", timeout=3 if why is None else 6)

    @on(PromptInput.LogScrollWanted)
    def _log_scroll_wanted(self, message: PromptInput.LogScrollWanted) -> None:
        self.chat_log.scroll_pages(message.pages)

    @on(PromptInput.Submitted)
    async def _prompt_submitted(self, message: PromptInput.Submitted) -> None:
        from lollma_tui.core.chat.commands import is_command, unescape_message

        # A pasted escape sequence would be echoed, saved, titled and sent like any text.
        text = plain(message.text)
        if is_command(text):
            await self.commands.run(text)
            return
        await self.send(unescape_message(text))

    async def on_command_chosen(self, message: CommandChosen) -> None:
        await self.commands.chosen(message)

    async def send(self, text: str, *, context_checked: bool = False) -> None:
        if self.replies.ending:
            # The reply has ended (the card says ready), only showing and saving it are left:
            # what is sent now follows it. A worker waits for it, so keys are handled meanwhile.
            self.run_worker(self._send_after_reply(text, context_checked), group="send-after-reply")
            return
        if self.is_generating:
            self.prompt.put_back(text)  # still the edit it was, if it was one
            self.notify("A reply is still being written — Esc stops it.", severity="warning")
            return
        editing, self.editing = self.editing, None
        if editing is not None:
            await self._resend_edited(editing, text)
            return
        if not context_checked:
            check = await self.context.overflow(self.conversation, text)
            if check is not None:
                self.dialogs.ask_about_overflow(check, text)
                return
        user = self.conversation.add_user(text)
        # Saved before it is sent: a crash from here on cannot lose what the user typed.
        await self.history.save_user_message(self.conversation, user)
        await self.pages.trim()
        await self.chat_log.add_user(user)
        await self.start_reply()

    async def _send_after_reply(self, text: str, context_checked: bool) -> None:
        await self.replies.wait_until_over()
        await self.send(text, context_checked=context_checked)

    async def start_reply(self, replaces: Message | None = None) -> None:
        reply = self.conversation.start_reply()
        turn = await self.chat_log.add_reply(reply, self.models.reply_heading())
        await self.replies.start(reply, turn, replaces=replaces)

    async def action_stop(self) -> None:
        # Nothing to stop: Esc closes the drawer (wherever the focus is), else drops an edit.
        if not self.is_generating and self.drawer.is_open:
            await self.drawer.toggle()
        elif not self.is_generating and self.editing is not None:
            self.editing = None
            self.notify("Edit dropped: Enter sends a new message.")
        elif self.is_generating or not self.commands.stop_pull():
            await self.replies.stop()

    async def _resend_edited(self, original: Message, text: str, checked: bool = False) -> None:
        def back() -> None:
            self.prompt.put_back(text)
            self.editing = original  # still the edit it was

        messages = self.conversation.messages
        index = next((i for i, m in enumerate(messages) if m.id == original.id), None)
        if index is None:
            await self.send(text, context_checked=True)
            return
        go = partial(self._resend_edited, original, text, True)
        if not checked and await self.dialogs.resend_overflows(index, text, "The edited message", go, back):
            return
        # The old version and everything after it stay in the store on their branch.
        replacement = await self.history.branch_from(original, text)
        del messages[index:]
        messages.append(replacement)
        await self.chat_log.remove_turns_from(original.id)
        await self.chat_log.add_user(replacement)
        await self.start_reply()

    async def action_regenerate(self, checked: bool = False) -> None:
        if self.is_generating:
            self.notify("Wait for the reply to finish, or press Esc first.", severity="warning")
            return
        messages = self.conversation.messages
        # A chat ending on the user's message (an import, a reply never saved) gets its answer;
        # otherwise the store keeps the old reply as a sibling branch.
        old = messages[-1] if messages and messages[-1].role == "assistant" else None
        upto = len(messages) - (old is not None)
        # Sent as it is, a new version would be only the backend's error.
        if upto and not checked:
            go, asked = partial(self.action_regenerate, True), messages[upto - 1].content
            if await self.dialogs.resend_overflows(
                upto - 1, asked, "Writing the reply again", go, lambda: None
            ):
                return
        if self.conversation.drop_last_reply() is None:
            self.notify("Nothing to regenerate yet.")
            return
        if old is not None:
            await self.chat_log.remove_last_reply()
        self.commands.drop_edit()
        await self.start_reply(replaces=old)

    async def action_new_conversation(self) -> None:
        if self.history.may_leave(self.conversation):
            await self.new_conversation()

    async def new_conversation(self) -> None:
        from lollma_tui.core.chat.conversation import Conversation

        await self.replies.stop_and_wait()
        await self.history.leave()
        # This chat's system prompt goes on; with none, a new chat has --system's (a saved chat
        # keeps its own, none included: `/system off` was undone at the next start).
        self.conversation = Conversation(
            system_prompt=self.conversation.system_prompt or self.options.system_prompt
        )
        # It reaches the store with its first message.
        self.history.saved = False
        self.editing = None
        await self.chat_log.clear_turns()
        self.pages.opened(0, False)
        kept = " The system prompt stays (/system off drops it)." if self.conversation.system_prompt else ""
        await self.chat_log.add_notice(f"New conversation.{kept}")
        self.context.refresh(self.conversation)

    # -- opening saved conversations ------------------------------------------------------------

    @work(group="history-open", exclusive=True, exit_on_error=False)
    async def open_history(self) -> None:
        """Open the store and resume where the user left off (unless told otherwise)."""
        try:
            await self._open_history()
        finally:
            self._history_opened.set()

    async def _model_chat_used(self, backend: BackendKind, server: str | None) -> str | None:
        """The model the resumed chat last used on `server`, once it is known which chat that is."""
        await self._history_opened.wait()
        return self.conversation.model_last_used(backend, server)

    async def _open_history(self) -> None:
        opened = await self.history.open(self.options.history_path)
        wanted = self.options.conversation_id
        if not self.options.new_conversation and not self.conversation.messages:
            conversation_id = await self.history.resume_target(wanted)
            if conversation_id is not None:
                # Two windows on one thread would each show only their own turns.
                which = "That chat" if wanted else "The last chat"
                refused = f"{which} is open in another lollma-tui window: this one starts a new chat"
                refused += " (Ctrl+O opens another)."
                await self.open_conversation(conversation_id, refused=refused, at_start=True)
        if opened.notice:  # after the resumed turns
            await self.chat_log.add_notice(opened.notice, "warning")
        if opened.recovered:
            replies = "reply was" if opened.recovered == 1 else "replies were"
            await self.chat_log.add_notice(
                f"{opened.recovered} {replies} cut off when lollma-tui last closed; marked incomplete."
            )

    async def open_conversation(
        self,
        conversation_id: str,
        focus_message: str | None = None,
        *,
        imported_from: str | None = None,
        refused: str | None = None,
        at_start: bool = False,
    ) -> None:
        """Show a saved conversation; one another lollma-tui has open is refused with `refused`.
        `at_start`: the notices already shown (a bad config value, the server's address) are
        this session's, not the chat's: they stay, after the resumed turns."""
        history = self.history
        if not history.may_leave(self.conversation):
            return
        if history.store is None or not await history.take(conversation_id, refused):
            return
        await self.replies.stop_and_wait()
        loaded = await history.load(conversation_id, TAIL_MESSAGES)
        if loaded is None:
            if history.saved:
                await history.take(self.conversation.id)  # still the one on screen
            return
        tail, whole, recovered = loaded
        conversation = whole.conversation
        self.conversation = conversation
        self.editing = None
        chat_log = self.chat_log
        if not at_start:
            await chat_log.clear_turns()
        await chat_log.show_messages(tail.conversation.messages, on_top=at_start)
        self.pages.opened(tail.start, tail.has_earlier)
        title = conversation.title or "untitled"
        opened = f"Resumed “{title}”" if imported_from is None else f"Imported “{title}” from {imported_from}"
        await chat_log.add_notice(f"{opened} · {counted(whole.total, 'message')} · /clear starts a new one")
        if recovered:
            cut = "reply was" if recovered == 1 else "replies were"
            await chat_log.add_notice(
                f"{recovered} {cut} cut off when the lollma-tui writing it ended; marked incomplete."
            )
        chat_log.scroll_end(animate=False)
        if focus_message is not None:
            await self.pages.reveal(focus_message)
        self.context.refresh(self.conversation)
        await self.replies.mark_versions()

    @on(ChatLog.EarlierWanted)
    async def mount_earlier(self, _: ChatLog.EarlierWanted) -> None:
        await self.pages.mount_earlier(keep_place=True)

    async def conversation_deleted(self, conversation_id: str) -> None:
        """A conversation was deleted from the list; the one on screen starts afresh if it was it."""
        if self.history.saved and conversation_id == self.conversation.id:
            await self.new_conversation()

    def conversation_renamed(self, conversation_id: str, title: str) -> None:
        if conversation_id == self.conversation.id:
            self.conversation.title = title

    # -- the side panel and the drawer ----------------------------------------------------------

    def action_toggle_sidebar(self) -> None:
        self.panel.toggle()

    def on_resize(self, event: events.Resize) -> None:
        self.panel.width_changed(event.size.width)

    async def action_toggle_settings(self) -> None:
        await self.drawer.toggle()

    # Handlers by name, so the drawer's module is not imported before it is first opened.
    def on_settings_drawer_closed(self, _: SettingsDrawer.Closed) -> None:
        self.drawer.closed()

    def on_settings_drawer_apply_requested(self, message: SettingsDrawer.ApplyRequested) -> None:
        self.models.swap_to(message.load)

    def on_settings_drawer_sampling_changed(self, message: SettingsDrawer.SamplingChanged) -> None:
        self.models.sampling = message.sampling

    def on_settings_drawer_catalog_wanted(self, message: SettingsDrawer.CatalogWanted) -> None:
        self.catalog.list_backend(message.kind)

    async def on_settings_drawer_quantize_requested(self, message: SettingsDrawer.QuantizeRequested) -> None:
        await self.dialogs.quantize(message.model)

    async def action_copy_last(self) -> None:
        await self.commands.run("/copy")

    def action_conversations(self) -> None:
        self.dialogs.conversations()

    def action_search(self, query: str = "") -> None:
        self.dialogs.search(query)

    def action_hosts(self) -> None:
        self.hosts.open_view()


def _preload_reply_widgets() -> None:
    """Load the reply renderer off the UI thread so the first reply does not pay for it."""
    from lollma_tui.ui.widgets.reply_markdown import preload

    preload()

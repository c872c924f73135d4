"""The scrolling conversation: user turns, streamed replies with their stats, and notices."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Collapsible, Static

from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.stats_format import format_stats

if TYPE_CHECKING:
    from textual.widgets import Markdown

_STATE_NOTES = {
    ReplyState.STOPPED: "stopped",
    ReplyState.LENGTH: "cut at the token limit",
    ReplyState.INCOMPLETE: "incomplete (the app closed while writing)",
}


class UserTurn(Vertical):
    def __init__(self, message: Message) -> None:
        super().__init__(classes="turn user-turn")
        self.message = message

    def compose(self) -> ComposeResult:
        yield Static("you", classes="turn-label")
        yield Static(self.message.content, markup=False, classes="user-text")


class ReplyTurn(Vertical):
    """One assistant reply. The app streams into `body`, then calls `finish`."""

    def __init__(self, message: Message, header: str) -> None:
        super().__init__(classes="turn reply-turn")
        self.message = message
        self._header = header
        # Imported here: markdown-it and pygments cost a tenth of a second that the first
        # frame should not wait for (the app preloads them once the screen is up).
        from textual.widgets import Markdown

        self.body: Markdown = Markdown(message.content or None, classes="reply-text")
        self.footer = Static("", classes="reply-stats", markup=False)
        self.thinking = ""
        self._thinking_view: Static | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._header, classes="turn-label", markup=False)
        yield self.body
        yield self.footer

    async def add_thinking(self, text: str) -> None:
        """Stream a model's thinking into a folded section above the answer."""
        self.thinking += text
        if self._thinking_view is None:
            self._thinking_view = Static("", markup=False, classes="thinking-text")
            folded = Collapsible(self._thinking_view, title="thinking", collapsed=True, classes="thinking")
            await self.mount(folded, before=self.body)
        self._thinking_view.update(self.thinking)

    def show_waiting(self, text: str) -> None:
        self.footer.update(text)
        self.add_class("-waiting")

    def show_streaming(self) -> None:
        self.remove_class("-waiting")
        self.add_class("-streaming")
        self.footer.update("writing… Esc stops")

    async def finish(self) -> None:
        message = self.message
        self.remove_class("-waiting", "-streaming")
        await self.body.update(message.content)
        parts: list[str] = []
        if message.state == ReplyState.ERROR:
            self.add_class("-error")
            parts.append(f"error: {message.error}")
        elif not message.content.strip():
            parts.append("the model returned no text")
        note = _STATE_NOTES.get(message.state)
        if note:
            parts.append(note)
        if message.stats is not None:
            parts.append(format_stats(message.stats))
        self.footer.update(" · ".join(parts))


class Notice(Static):
    """A line from the app itself: model loaded, an error, a hint."""

    def __init__(self, text: str, kind: str = "info") -> None:
        super().__init__(text, markup=False, classes=f"notice -{kind}")


class ChatLog(VerticalScroll):
    def on_mount(self) -> None:
        self.anchor()

    async def add_user(self, message: Message) -> UserTurn:
        turn = UserTurn(message)
        await self.mount(turn)
        self.anchor()
        return turn

    async def add_reply(self, message: Message, header: str) -> ReplyTurn:
        turn = ReplyTurn(message, header)
        await self.mount(turn)
        return turn

    async def add_notice(self, text: str, kind: str = "info") -> Notice:
        notice = Notice(text, kind)
        await self.mount(notice)
        return notice

    async def add_pull(self, model: str) -> PullView:
        view = PullView(model)
        await self.mount(view)
        return view

    async def remove_last_reply(self) -> None:
        replies = self.query(ReplyTurn)
        if replies:
            await replies.last().remove()

    async def clear_turns(self) -> None:
        await self.remove_children()

    def reply_turns(self) -> list[ReplyTurn]:
        return list(self.query(ReplyTurn))


class PullView(Vertical):
    """An Ollama download in progress: a status line and a bar, left in the log when done."""

    def __init__(self, model: str) -> None:
        super().__init__(classes="notice pull")
        self.model = model
        self.status = Static(f"pulling {model}…", markup=False)
        from textual.widgets import ProgressBar

        self.bar = ProgressBar(total=None, show_eta=True)

    def compose(self) -> ComposeResult:
        yield self.status
        yield self.bar

    def show(self, status: str, completed: int | None, total: int | None) -> None:
        self.status.update(f"{self.model}: {status}")
        if total:
            self.bar.update(total=total, progress=completed or 0)

    def finish(self, text: str, ok: bool) -> None:
        self.status.update(text)
        self.bar.display = False
        self.set_class(not ok, "-error")

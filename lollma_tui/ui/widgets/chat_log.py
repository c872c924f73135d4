"""The scrolling conversation: user turns, streamed replies with their stats, and notices."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual import message as textual_message
from textual.app import ComposeResult, RenderResult
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widget import Widget
from textual.widgets import Static

from lollma_tui.core import formatting as fmt
from lollma_tui.ui.literal import drop_unsafe_links, literal, plain
from lollma_tui.ui.widgets.reply_markdown import ReplyMarkdown, rich_markdown

THINKING_EVERY_S = 0.25
"""How often an open thinking section shows new text while the model thinks."""

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.style import Style
    from textual.selection import Selection
    from textual.widgets import Collapsible

    from lollma_tui.core.chat.conversation import Message


SHOWN_CHARS = 100_000
"""Of a message's text, as much as a turn draws. Rich lays a long text out in time that grows
faster than its length: a 4 MB log, pasted or imported, froze the app for most of a minute.
What is sent to the model, copied and exported is the whole text."""


def shown_text(text: str) -> str:
    """`text`, or its first `SHOWN_CHARS` (to a line's end) and how much more there is."""
    if len(text) <= SHOWN_CHARS:
        return text
    cut = text.rfind("\n", 0, SHOWN_CHARS) + 1 or SHOWN_CHARS
    rest = len(text[cut:].encode("utf-8", "replace"))
    return f"{text[:cut]}\n… {fmt.size(rest)} more not shown here: /export writes the whole message"


class UserTurn(Vertical):
    def __init__(self, message: Message) -> None:
        super().__init__(classes="turn user-turn")
        self.message = message

    def compose(self) -> ComposeResult:
        yield Static("you", classes="turn-label")
        yield Static(shown_text(self.message.content), markup=False, classes="user-text")


def version_heading(header: str, shown: int, count: int) -> str:
    # Short: it shares the line with the set-up; /version and F1 say how to see the others.
    return f"{header} · version {shown} of {count}"


def failed(message: Message) -> bool:
    """Whether the reply ended in an error (its state's type is imported late, as in
    `reply_footer`)."""
    from lollma_tui.core.chat.conversation import ReplyState

    return message.state == ReplyState.ERROR


def reply_footer(message: Message) -> str:
    # Imported with the first reply shown: a conversation's and a backend's types are not
    # needed to draw the empty chat of the first frame.
    from lollma_tui.core.backends.describe import format_stats
    from lollma_tui.core.chat.conversation import ReplyState, reply_end_note

    parts: list[str] = []
    if message.state == ReplyState.ERROR:
        parts.append(f"error: {message.error}")
    elif not message.content.strip() and message.state != ReplyState.STOPPED:
        # A reply stopped before its first word says "stopped": the model was not asked to the end.
        parts.append("the model returned no text")
    note = reply_end_note(message.state, message.stats)
    if note:
        parts.append(note)
    if message.stats is not None:
        parts.append(format_stats(message.stats))
    return " · ".join(parts)


class ReplyTurn(Vertical):
    """One assistant reply. The app streams into `body`, then calls `finish`."""

    # Set by Textual once the turn is laid out; a second layout pass for it is wasted work
    # each time a streaming reply grows (see `ReplyMarkdown.virtual_size`).
    virtual_size = Reactive(Size(0, 0), layout=False)

    def __init__(self, message: Message, header: str) -> None:
        super().__init__(classes="turn reply-turn")
        self.message = message
        self._header = header
        self.body = ReplyMarkdown(shown_text(message.content), classes="reply-text")
        self.footer = Static("", classes="reply-stats", markup=False)
        self._thinking_view: Static | None = None
        self._thinking_fold: Collapsible | None = None
        self._thinking_shown_at = 0.0
        """When the open thinking section last showed new text (it is redrawn at most every
        `THINKING_EVERY_S` while it streams; folded, not at all)."""

    @classmethod
    def finished(cls, message: Message, header: str) -> ReplyTurn:
        """A reply from the history as a whole turn: one with thinking keeps it folded above."""
        turn = cls(message, header)
        turn.footer.update(reply_footer(message))
        turn.set_class(failed(message), "-error")
        return turn

    @property
    def thinking(self) -> str:
        """The reply's thinking so far (kept on its message, which the history saves)."""
        return self.message.thinking

    def compose(self) -> ComposeResult:
        yield Static(self._header, classes="turn-label", markup=False)
        if self.message.thinking.strip():
            yield self._folded_thinking()
        yield self.body
        yield self.footer

    def _folded_thinking(self) -> Widget:
        from textual.widgets import Collapsible  # only a thinking model's replies have one

        # An imported file's thinking arrives unchecked, unlike a stream's (cleaned as it comes).
        self._thinking_view = Static(plain(self.message.thinking), markup=False, classes="thinking-text")
        folded = Collapsible(self._thinking_view, title="thinking", collapsed=True, classes="thinking")
        self._thinking_fold = folded
        return folded

    def mark_version(self, shown: int, count: int) -> None:
        """Say in the heading that this reply is one of several (Ctrl+R kept the others)."""
        self.query_one(".turn-label", Static).update(version_heading(self._header, shown, count))

    def set_heading(self, header: str) -> None:
        """Name the model that writes the reply, once known (a swap may end while it waits)."""
        if header != self._header:
            self._header = header
            self.query_one(".turn-label", Static).update(header)

    async def add_thinking(self, text: str) -> None:
        """Stream a model's thinking into a folded section above the answer."""
        self.message.thinking += text
        if self._thinking_view is None:
            if not self.message.thinking.strip():
                return  # "<think>\n\n</think>" (a model asked not to think): no section to open
            await self.mount(self._folded_thinking(), before=self.body)
            return
        # Each update lays the chat out again: token by token that cost a reasoning model a
        # fifth of a core for text that is folded away. Shown when open, a few times a second.
        now = time.monotonic()
        if now - self._thinking_shown_at >= THINKING_EVERY_S:
            self._show_thinking()

    def _show_thinking(self) -> None:
        view, fold = self._thinking_view, self._thinking_fold
        if view is None or fold is None or fold.collapsed:
            return
        self._thinking_shown_at = time.monotonic()
        view.update(plain(self.message.thinking))

    def on_collapsible_expanded(self) -> None:
        # Opened while the model still thinks: show what it has thought so far.
        self._show_thinking()

    def show_thinking(self) -> None:
        """The model thinks before it answers: say that it is working."""
        self.remove_class("-waiting")
        self.add_class("-streaming")
        self.footer.update("thinking… Esc stops")

    def show_waiting(self, text: str) -> None:
        self.footer.update(text)
        self.add_class("-waiting")

    def show_streaming(self) -> None:
        self.remove_class("-waiting")
        self.add_class("-streaming")
        self.footer.update("writing… Esc stops")
        self._show_thinking()  # the thinking is over: an open section shows its last words now

    async def finish(self) -> None:
        message = self.message
        self.remove_class("-waiting", "-streaming")
        # One full render at the end: the stream's incremental blocks can differ from a
        # whole-document parse (an unterminated code fence, a list that became a table).
        self.body.update(shown_text(message.content))
        if self._thinking_view is not None:
            self._thinking_view.update(plain(message.thinking))
        self.set_class(failed(message), "-error")
        self.footer.update(reply_footer(message))


class HistoryTurn(Widget):
    """A turn from the history, drawn as one widget (label, text, stats) so that a long
    conversation mounts a page of them quickly; colours come from the theme's variables."""

    def __init__(self, message: Message, header: str) -> None:
        role_class = "user-turn" if message.role == "user" else "reply-turn"
        super().__init__(classes=f"turn history-turn {role_class}")
        self.message = message
        self._header = self._plain_header = header if message.role == "assistant" else "you"
        self.set_class(failed(message), "-error")

    def mark_version(self, shown: int, count: int) -> None:
        """As `ReplyTurn.mark_version`."""
        self._header = version_heading(self._plain_header, shown, count)
        self.refresh(layout=True)

    def render(self) -> RenderResult:
        from rich.console import Group
        from rich.padding import Padding
        from rich.text import Text

        is_user = self.message.role == "user"
        label = Text(self._header, style=self._style("user-label" if is_user else "reply-label", bold=True))
        if is_user:
            body: RenderableType = Text(plain(shown_text(self.message.content)))
            return Group(label, Padding(body, (0, 0, 0, 2)))
        markdown = rich_markdown(plain(shown_text(self.message.content)))
        # Drawn by Rich, a link is a terminal hyperlink the terminal opens without the app.
        drop_unsafe_links(markdown.parsed)
        footer = Text(
            reply_footer(self.message), style=self._style("error" if failed(self.message) else "reply-stats")
        )
        return Group(label, Padding(markdown, (0, 0, 0, 2)), Padding(footer, (0, 0, 0, 2)))

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The turn as text: drawn as one Rich group, it has no places a selection can start
        or end in, so a drag takes it whole (it took nothing, and copied nothing)."""
        parts = [self._header, shown_text(self.message.content)]
        if self.message.role != "user":
            parts.append(reply_footer(self.message))
        return selection.extract(plain("\n".join(parts))), "\n"

    def _style(self, variable: str, *, bold: bool = False) -> Style:
        """Rich's style in the theme's colour `variable`, which may have an alpha (#D8DEE999)
        or be an ANSI colour with one: Rich parses neither, and drawing then failed for good.
        Textual's parser reads both, blended over the background as CSS would draw them."""
        from rich.style import Style
        from textual.color import Color, ColorParseError

        colours = self.app.theme_variables
        try:
            colour = Color.parse(colours.get("background", "black")) + Color.parse(colours[variable])
        except (KeyError, ColorParseError):
            return Style(bold=bold)
        return Style(bold=bold, color=colour.rich_color)


Turn = UserTurn | ReplyTurn | HistoryTurn


NOTICE_MARKS = {"error": "✗ ", "warning": "! "}
"""What starts a notice of each kind: its colour alone did not tell an error from a hint (under
NO_COLOR, to a screen reader)."""


class Notice(Static):
    """A line from the app itself: model loaded, an error, a hint."""

    def __init__(self, text: str, kind: str = "info") -> None:
        shown = NOTICE_MARKS.get(kind, "") + text
        super().__init__(literal(shown), markup=False, classes=f"notice -{kind}")


def saved_heading(message: Message) -> str:
    """The heading of a saved reply: the set-up it was written with, where it is known."""
    from lollma_tui.core.backends.describe import format_setup

    if message.stats is None:
        return "assistant"
    return plain(format_setup(message.stats.setup), one_line=True)


class ChatLog(VerticalScroll):
    """The conversation's turns. A long conversation is mounted from its tail; scrolling to the
    top asks the app for the page before it."""

    # As `ReplyTurn.virtual_size`: the log's scrollbars follow in the same pass.
    virtual_size = Reactive(Size(0, 0), layout=False)

    # Focused, it showed nothing, and what was typed next went nowhere: PageUp and PageDown in
    # the prompt scroll it (`scroll_pages`), and a folded thinking section in it still takes focus.
    can_focus = False

    class EarlierWanted(textual_message.Message):
        """The user scrolled to the top and earlier turns exist."""

    has_earlier = False
    """Set by the app when turns before the first mounted one exist."""

    def on_mount(self) -> None:
        self.anchor()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new <= 0 < old and self.has_earlier:
            self.has_earlier = False  # until the app says more remain, after mounting a page
            self.post_message(self.EarlierWanted())

    def scroll_pages(self, pages: int) -> None:
        self.scroll_relative(y=pages * self.scrollable_content_region.height, animate=False)

    async def add_user(self, message: Message) -> UserTurn:
        turn = UserTurn(message)
        await self.mount(turn)
        self.anchor()
        return turn

    async def add_reply(self, message: Message, header: str) -> ReplyTurn:
        turn = ReplyTurn(message, header)
        await self.mount(turn)
        return turn

    def _turns_for(self, messages: Iterable[Message]) -> list[Widget]:
        # A reply with thinking is a whole turn, to fold it as it was shown; the rest are drawn
        # as one widget each, which mounts a long history quickly.
        return [
            ReplyTurn.finished(m, saved_heading(m)) if m.thinking else HistoryTurn(m, saved_heading(m))
            for m in messages
            if m.role != "system"
        ]

    async def show_messages(self, messages: Iterable[Message], *, on_top: bool = False) -> None:
        """Mount finished turns (a resumed conversation) in one go, at the end or `on_top` of
        what the log shows."""
        turns = self._turns_for(messages)
        if turns:
            await self.mount_all(turns, before=0 if on_top and self.children else None)

    async def prepend_messages(self, messages: Iterable[Message], *, keep_place: bool = True) -> None:
        """Mount earlier turns above the first; `keep_place`: what the reader sees stays put."""
        turns = self._turns_for(messages)
        if not turns:
            return
        first = next(iter(self.turns()), None)
        if first is None or not keep_place:
            await self.mount_all(turns, before=first)
            return
        above = first.virtual_region.y - self.scroll_y  # where the reader sees it now
        await self.mount_all(turns, before=first)

        def stay() -> None:
            # The page goes in above what is read, which stays where it was on screen: at the
            # top (scroll_y 0) it was pushed a page down, and scrolling up loaded no more.
            self.release_anchor()
            self.scroll_to(y=first.virtual_region.y - above, animate=False, immediate=True)

        self.call_after_refresh(stay)

    def mark_version(self, message_id: str, shown: int, count: int) -> None:
        """Mark the reply `message_id` as version `shown` of `count`, where it is on screen."""
        turn = self.turn_for(message_id)
        if isinstance(turn, ReplyTurn | HistoryTurn):
            turn.mark_version(shown, count)

    def show_found(self, message_id: str) -> None:
        """Mark the turn of `message_id` (a search hit) and scroll it to the top, if it is here."""
        turn = self.turn_for(message_id)
        if turn is not None:
            turn.add_class("-found")
            self.call_after_refresh(self._scroll_to_top_of, turn)

    def _scroll_to_top_of(self, turn: Turn) -> None:
        if self.max_scroll_y <= 0:
            # All of it fits: "scrolled to the top" of a log that cannot scroll, the turns sat
            # below the view, and what was shown next (a notice, /help) could not be reached.
            return
        self.release_anchor()
        turn.scroll_visible(top=True, animate=False)

    def turn_for(self, message_id: str) -> Turn | None:
        for turn in self.query(".turn"):
            if isinstance(turn, Turn) and turn.message.id == message_id:
                return turn
        return None

    async def add_notice(self, text: str, kind: str = "info") -> Notice:
        notice = Notice(text, kind)
        # A quit closes the model under a swap, whose failure is reported as the log goes away.
        if self.is_attached:
            await self.mount(notice)
        return notice

    async def add_pull(self, model: str) -> PullView:
        view = PullView(model)
        await self.mount(view)
        return view

    async def remove_last_reply(self) -> None:
        replies = [
            child
            for child in self.children
            if isinstance(child, ReplyTurn)
            or (isinstance(child, HistoryTurn) and child.message.role == "assistant")
        ]
        if replies:
            await replies[-1].remove()

    async def replace_turn(self, message_id: str, message: Message) -> None:
        """Show `message` where the turn for `message_id` is (another version of a reply)."""
        old = self.turn_for(message_id)
        turns = self._turns_for([message])
        if old is None or not turns:
            return
        await self.mount_all(turns, after=old)
        await old.remove()

    async def remove_turns_from(self, message_id: str) -> None:
        """Remove the turn for `message_id` and everything after it (edit and resend)."""
        children = list(self.children)
        for index, child in enumerate(children):
            if isinstance(child, Turn) and child.message.id == message_id:
                await self.remove_children(children[index:])
                return

    async def let_go_oldest(self, most: int, keep: int) -> str | None:
        """With more than `most` turns mounted, unmount all but the last `keep` and what is
        shown above them (notices); the id of the first message still mounted, or None."""
        turns = self.turns()
        if len(turns) <= most or keep <= 0:
            return None
        first = turns[-keep]
        children = list(self.children)
        await self.remove_children(children[: children.index(first)])
        self.has_earlier = True
        return first.message.id

    async def clear_turns(self) -> None:
        self.has_earlier = False
        await self.remove_children()

    def reply_turns(self) -> list[ReplyTurn]:
        """Replies shown as whole turns: those written in this session, and history replies that
        have thinking to fold (the other history replies are `HistoryTurn`s)."""
        return list(self.query(ReplyTurn))

    def turns(self) -> list[Turn]:
        return [child for child in self.children if isinstance(child, Turn)]


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

"""The saved conversations: open, start, rename, delete and filter them from the keyboard.

The list is read a page at a time in a thread worker (the store is synchronous), newest first,
and grows as the highlight or the scroll nears its end, so a history of thousands of
conversations opens as fast as one of ten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Final, Protocol

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState, get_current_worker

from lollma_tui.core.chat.errors import NotFoundError, StoreError
from lollma_tui.core.chat.store import ConversationSummary
from lollma_tui.core.formatting import counted
from lollma_tui.ui.literal import literal, plain
from lollma_tui.ui.screens.confirm import ConfirmScreen

LIST_GROUP: Final = "history-list"
EDIT_GROUP: Final = "history-edit"
UNTITLED: Final = "Untitled conversation"
_LOOKAHEAD: Final = 10
"""Load the next page once the highlight is this close to the end of what is loaded."""
_SCAN_CHUNK: Final = 200


class ConversationSource(Protocol):
    """The part of `ChatStore` the conversation list uses."""

    def list_conversations(self, *, limit: int = 50, offset: int = 0) -> list[ConversationSummary]: ...

    def count_conversations(self) -> int: ...

    def get_summary(self, conversation_id: str) -> ConversationSummary: ...

    def rename(self, conversation_id: str, title: str) -> None: ...

    def delete_conversation(self, conversation_id: str) -> None: ...

    def held_elsewhere(self, conversation_id: str) -> bool: ...


class NewConversation(Enum):
    NEW = "new"


NEW_CONVERSATION: Final = NewConversation.NEW
"""What the screen dismisses with when the user asks for a new conversation."""

ConversationsResult = str | NewConversation | None
"""A conversation id to open, `NEW_CONVERSATION`, or None when closed with Esc."""


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[ConversationSummary]
    next_offset: int
    """Where the next page starts in the store's newest-first order."""
    exhausted: bool


def display_title(title: str) -> str:
    """A title as the list shows it: one line, without control characters (imports carry any)."""
    return " ".join(plain(title, one_line=True).split()) or UNTITLED


def fetch_page(
    store: ConversationSource,
    offset: int,
    size: int,
    title_filter: str = "",
    *,
    cancelled: Callable[[], bool] = lambda: False,
) -> Page:
    """Up to `size` conversations from `offset` on, only those whose title holds `title_filter`
    (any case). Filtering reads summaries only (no message text), a chunk at a time."""
    if not title_filter:
        rows = store.list_conversations(limit=size, offset=offset)
        return Page(rows, offset + len(rows), len(rows) < size)
    needle = title_filter.casefold()
    found: list[ConversationSummary] = []
    while not cancelled():
        chunk = store.list_conversations(limit=_SCAN_CHUNK, offset=offset)
        for position, row in enumerate(chunk):
            if needle in display_title(row.title).casefold():
                found.append(row)
                if len(found) == size:
                    return Page(found, offset + position + 1, False)
        offset += len(chunk)
        if len(chunk) < _SCAN_CHUNK:
            return Page(found, offset, True)
    return Page(found, offset, False)


def format_updated(timestamp: float, now: float) -> str:
    """At most 12 columns: the time today, day and time this year, else the date."""
    when = time.localtime(timestamp)
    today = time.localtime(now)
    if when[:3] == today[:3]:
        return time.strftime("today %H:%M", when)
    if when.tm_year == today.tm_year:
        return time.strftime("%d %b %H:%M", when)
    return time.strftime("%d %b %Y", when)


ELSEWHERE_MARK = "◌ "
"""Marks a conversation another lollma-tui shows (it cannot be opened or deleted here)."""


def row_content(
    summary: ConversationSummary, *, now: float, current: bool, elsewhere: bool = False
) -> Content:
    return Content.assemble(
        ("● ", "$text-accent") if current else (ELSEWHERE_MARK, "$text-warning") if elsewhere else "  ",
        (f"{format_updated(summary.updated_at, now):<12}", "$text-muted"),
        (f"{summary.message_count:>6}", "$text-muted"),
        "  ",
        display_title(summary.title),
    )


class ConversationsScreen(ModalScreen[ConversationsResult]):
    """Dismisses with the id of the conversation to open (Enter), `NEW_CONVERSATION` (n), or
    None (Esc). Renames and deletions happen here, in the store, and are announced to the app
    with `ConversationsScreen.Renamed` and `ConversationsScreen.Deleted`."""

    CSS_PATH = "../history_screens.tcss"
    """Loaded with the screen, so the app's first frame does not parse it."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="conversations.close"),
        Binding("n", "new", "New", id="conversations.new"),
        Binding("r", "rename", "Rename", id="conversations.rename"),
        Binding("d", "delete", "Delete", id="conversations.delete"),
        Binding("slash", "filter", "Filter", id="conversations.filter"),
        Binding("down", "to_list", "To the list", show=False, id="conversations.to-list"),
    ]

    class Renamed(Message):
        """A conversation got a new title (already saved)."""

        def __init__(self, screen: ConversationsScreen, summary: ConversationSummary) -> None:
            super().__init__()
            self._screen = screen
            self.summary = summary

        @property
        def control(self) -> ConversationsScreen:
            return self._screen

    class Deleted(Message):
        """A conversation was deleted from the store; the app leaves it if it was open."""

        def __init__(self, screen: ConversationsScreen, conversation_id: str) -> None:
            super().__init__()
            self._screen = screen
            self.conversation_id = conversation_id

        @property
        def control(self) -> ConversationsScreen:
            return self._screen

    class _PageLoaded(Message, bubble=False):
        def __init__(self, generation: int, page: Page, total: int | None, elsewhere: frozenset[str]) -> None:
            super().__init__()
            self.generation = generation
            self.page = page
            self.total = total
            self.elsewhere = elsewhere

    class _Saved(Message, bubble=False):
        def __init__(self, summary: ConversationSummary) -> None:
            super().__init__()
            self.summary = summary

    class _Removed(Message, bubble=False):
        def __init__(self, conversation_id: str) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    class _Failed(Message, bubble=False):
        def __init__(self, reason: str, generation: int | None = None) -> None:
            super().__init__()
            self.reason = reason
            self.generation = generation

    def __init__(
        self,
        store: ConversationSource,
        *,
        current_id: str | None = None,
        page_size: int = 50,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._store = store
        self.current_id = current_id
        """The conversation open in the app, marked with a dot."""
        self.page_size = page_size
        self._clock = clock
        self._rows: list[ConversationSummary] = []
        self._offset = 0
        self._exhausted = False
        self._loading = False
        self._generation = 0
        self._total: int | None = None
        self._filter = ""
        self._filter_timer: Timer | None = None
        self._renaming: str | None = None
        self._elsewhere: set[str] = set()
        """Conversations another lollma-tui showed when their page was read."""

    def compose(self) -> ComposeResult:
        with Vertical(id="conversations-dialog", classes="history-dialog") as dialog:
            dialog.border_title = "Conversations"
            yield Input(placeholder="filter by title", id="conversations-filter", classes="-hidden")
            yield Static(
                Content.assemble(("  " + f"{'updated':<12}{'msgs':>6}  title", "$text-muted")),
                id="conversations-header",
            )
            yield OptionList(id="conversations-list")
            yield Input(id="conversations-rename", classes="-hidden")
            yield Static("loading…", id="conversations-status")
            yield Static(
                "Enter open · n new · r rename · d delete · / filter · Esc close", classes="dialog-keys"
            )

    @property
    def _list(self) -> OptionList:
        return self.query_one("#conversations-list", OptionList)

    @property
    def _filter_input(self) -> Input:
        return self.query_one("#conversations-filter", Input)

    @property
    def _rename_input(self) -> Input:
        return self.query_one("#conversations-rename", Input)

    def on_mount(self) -> None:
        self._list.focus()
        self.watch(self._list, "scroll_y", self._scrolled, init=False)
        self._request_page()

    # -- loading ----------------------------------------------------------------------------

    def _request_page(self) -> None:
        if self._loading or self._exhausted:
            return
        self._loading = True
        self._load_page(
            self._store, self._generation, self._offset, self._filter, self.page_size, self._total is None
        )

    @work(thread=True, exclusive=True, group=LIST_GROUP, exit_on_error=False)
    def _load_page(
        self,
        store: ConversationSource,
        generation: int,
        offset: int,
        title_filter: str,
        size: int,
        want_total: bool,
    ) -> None:
        worker = get_current_worker()
        try:
            page = fetch_page(store, offset, size, title_filter, cancelled=lambda: worker.is_cancelled)
            total = store.count_conversations() if want_total else None
        except StoreError as exc:
            self.post_message(self._Failed(f"could not read the history: {exc}", generation))
            return
        elsewhere = frozenset(row.id for row in page.rows if store.held_elsewhere(row.id))
        if not worker.is_cancelled:
            self.post_message(self._PageLoaded(generation, page, total, elsewhere))

    @on(_PageLoaded)
    def _page_loaded(self, message: _PageLoaded) -> None:
        if message.generation != self._generation:
            return
        self._loading = False
        self._offset = message.page.next_offset
        self._exhausted = message.page.exhausted
        if message.total is not None:
            self._total = message.total
        self._elsewhere |= message.elsewhere
        known = {row.id for row in self._rows}
        # Pages are read by offset: a conversation updated meanwhile may turn up twice.
        fresh = [row for row in message.page.rows if row.id not in known]
        first = not self._rows
        self._rows += fresh
        now = self._clock()
        self._list.add_options(Option(self._row_content(row, now), id=row.id) for row in fresh)
        if first and self._rows:
            self._list.highlighted = 0
        self._show_status()
        self._maybe_load_more()

    def _row_content(self, row: ConversationSummary, now: float) -> Content:
        return row_content(
            row, now=now, current=row.id == self.current_id, elsewhere=row.id in self._elsewhere
        )

    def _maybe_load_more(self) -> None:
        if self._loading or self._exhausted:
            return
        options = self._list
        near_end = options.highlighted is not None and options.highlighted >= len(self._rows) - _LOOKAHEAD
        scrolled_down = options.max_scroll_y > 0 and options.scroll_y >= options.max_scroll_y - 2
        if near_end or scrolled_down:
            self._request_page()

    def _scrolled(self, _scroll_y: float) -> None:
        self._maybe_load_more()

    @on(OptionList.OptionHighlighted, "#conversations-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._maybe_load_more()

    def _show_status(self, error: str | None = None) -> None:
        status = self.query_one("#conversations-status", Static)
        status.set_class(error is not None, "-error")
        if error is not None:
            status.update(literal(error))
            return
        loaded = len(self._rows)
        more = "" if self._exhausted else " · more as you scroll"
        if self._filter:
            text = f"{loaded} matching “{self._filter}”" + ("" if self._exhausted else " so far")
        elif self._total == 0 and self._exhausted:
            text = "No saved conversations yet · n starts one"
        else:
            total = max(self._total or 0, loaded)
            text = f"{loaded} of {total}{more}"
        if any(row.id in self._elsewhere for row in self._rows):
            text += f" · {ELSEWHERE_MARK.strip()} open in another lollma-tui"
        status.update(literal(text))

    @on(_Failed)
    def _failed(self, message: _Failed) -> None:
        if message.generation is not None:
            if message.generation != self._generation:
                return
            self._loading = False
        self._show_status(message.reason)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.worker.group in (LIST_GROUP, EDIT_GROUP) and event.state is WorkerState.ERROR:
            if event.worker.group == LIST_GROUP:
                self._loading = False
            self._show_status(f"error: {event.worker.error}")

    # -- open, new, close -------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#conversations-list")
    def _open(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.dismiss(event.option.id)

    def action_new(self) -> None:
        self.dismiss(NEW_CONVERSATION)

    def action_close(self) -> None:
        if self._renaming is not None:
            self._end_rename()
        elif self._filter or self._filter_input.has_focus:
            self._filter_input.value = ""
            self._filter_input.add_class("-hidden")
            self._set_filter("")
            self._list.focus()
        else:
            self.dismiss(None)

    def action_to_list(self) -> None:
        if self._filter_input.has_focus:
            self._list.focus()

    def _highlighted_row(self) -> ConversationSummary | None:
        index = self._list.highlighted
        return None if index is None or index >= len(self._rows) else self._rows[index]

    # -- filter -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self._filter_input.remove_class("-hidden")
        self._filter_input.focus()

    @on(Input.Changed, "#conversations-filter")
    def _filter_typed(self, event: Input.Changed) -> None:
        event.stop()
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(0.2, partial(self._set_filter, event.value.strip()))

    @on(Input.Submitted, "#conversations-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._list.focus()

    def _set_filter(self, text: str) -> None:
        self._filter_timer = None
        if text == self._filter:
            return
        self._filter = text
        self._generation += 1
        self._rows = []
        self._offset = 0
        self._exhausted = False
        self._loading = False
        self._list.clear_options()
        self.query_one("#conversations-status", Static).update("loading…")
        self._request_page()

    # -- rename -----------------------------------------------------------------------------

    def action_rename(self) -> None:
        row = self._highlighted_row()
        if row is None:
            return
        self._renaming = row.id
        field = self._rename_input
        field.value = plain(row.title, one_line=True)
        field.border_title = "New title · Enter saves · Esc cancels"
        field.remove_class("-hidden")
        field.focus()

    @on(Input.Submitted, "#conversations-rename")
    def _rename_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        title = " ".join(event.value.split())
        if self._renaming is not None and title:  # emptied: kept as it was, as /rename does
            self._rename(self._store, self._renaming, title)
        self._end_rename()

    def _end_rename(self) -> None:
        self._renaming = None
        self._rename_input.add_class("-hidden")
        self._list.focus()

    @work(thread=True, group=EDIT_GROUP, exit_on_error=False)
    def _rename(self, store: ConversationSource, conversation_id: str, title: str) -> None:
        try:
            store.rename(conversation_id, title)
            summary = store.get_summary(conversation_id)
        except StoreError as exc:
            self.post_message(self._Failed(f"could not rename: {exc}"))
            return
        self.post_message(self._Saved(summary))

    @on(_Saved)
    def _saved(self, message: _Saved) -> None:
        summary = message.summary
        rows = [row for row in self._rows if row.id != summary.id]
        # Keep the store's order (a rename leaves a chat where it was) and the highlight on it.
        at = next((i for i, row in enumerate(rows) if row.updated_at <= summary.updated_at), len(rows))
        rows.insert(at, summary)
        self._replace_rows(rows, highlight=at)
        self._show_status()
        self.post_message(self.Renamed(self, summary))

    # -- delete -----------------------------------------------------------------------------

    def action_delete(self) -> None:
        row = self._highlighted_row()
        if row is None:
            return
        count = row.message_count
        question = (
            f"Delete “{display_title(row.title)}”?\nIts {counted(count, 'message')}, with every earlier"
            " version of them (Ctrl+R, /edit), will be gone for good."
        )
        self.app.push_screen(
            ConfirmScreen(question, "Delete", "Keep"), partial(self._delete_answered, row.id)
        )

    def _delete_answered(self, conversation_id: str, yes: bool | None) -> None:
        if yes:
            self._delete(self._store, conversation_id)

    @work(thread=True, group=EDIT_GROUP, exit_on_error=False)
    def _delete(self, store: ConversationSource, conversation_id: str) -> None:
        try:
            store.delete_conversation(conversation_id)
        except NotFoundError:
            pass  # gone already (another lollma-tui): take it off the list all the same
        except StoreError as exc:
            self.post_message(self._Failed(f"could not delete: {exc}"))
            return
        self.post_message(self._Removed(conversation_id))

    @on(_Removed)
    def _removed(self, message: _Removed) -> None:
        index = next((i for i, row in enumerate(self._rows) if row.id == message.conversation_id), None)
        if index is not None:
            del self._rows[index]
            self._list.remove_option(message.conversation_id)
            # Every row shown came from the store before the read position.
            self._offset = max(0, self._offset - 1)
        if self._total is not None:
            self._total = max(0, self._total - 1)
        self._show_status()
        self.post_message(self.Deleted(self, message.conversation_id))
        self._maybe_load_more()

    def _replace_rows(self, rows: list[ConversationSummary], *, highlight: int | None) -> None:
        self._rows = rows
        now = self._clock()
        options = self._list
        options.set_options(Option(self._row_content(row, now), id=row.id) for row in rows)
        if rows and highlight is not None:
            options.highlighted = min(highlight, len(rows) - 1)

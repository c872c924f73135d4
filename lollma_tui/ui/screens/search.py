"""Search every saved conversation as you type, and jump to a message."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, NamedTuple, Protocol

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

from lollma_tui.core.chat.errors import StoreError
from lollma_tui.core.chat.store import SearchHit
from lollma_tui.core.chat.store_search import SearchCancelledError
from lollma_tui.core.formatting import counted
from lollma_tui.ui.literal import literal, plain

SEARCH_GROUP: Final = "history-search"
# Private-use characters: they cannot clash with the text of a message, unlike "[" and "]".
_MARKS: Final = ("\ue000", "\ue001")
_ROLE_NAMES: Final = {"user": "you", "assistant": "assistant", "system": "system"}


class SearchSource(Protocol):
    """The part of `ChatStore` the search screen uses."""

    def search(
        self,
        query: str,
        *,
        limit: int = 50,
        marks: tuple[str, str] = ("[", "]"),
        cancelled: Callable[[], bool] | None = None,
    ) -> list[SearchHit]: ...


class SearchJump(NamedTuple):
    """Where the picked hit is: the app opens the conversation and scrolls to the message."""

    conversation_id: str
    message_id: str


def searchable(query: str) -> bool:
    return any(character.isalnum() for character in query)


def hit_content(hit: SearchHit) -> Content:
    """Two lines: the conversation and who wrote it, then the snippet with the matches marked."""
    title = " ".join(plain(hit.conversation_title, one_line=True).split()) or "Untitled conversation"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(hit.created_at))
    heading = Content.assemble(
        (title, "bold"), (f"  {_ROLE_NAMES.get(hit.role, hit.role)} · {when}", "$text-muted")
    )
    parts: list[str | tuple[str, str]] = ["  "]
    marked = False
    for piece in _split_marks(" ".join(plain(hit.snippet, one_line=True).split())):
        if piece:
            parts.append((piece, "bold $text-accent") if marked else piece)
        marked = not marked
    return Content.assemble(heading, "\n", *parts)


def _split_marks(snippet: str) -> list[str]:
    """Alternating unmarked and marked pieces, starting with an unmarked one."""
    pieces: list[str] = []
    rest = snippet
    while True:
        start = rest.find(_MARKS[0])
        if start < 0:
            pieces.append(rest)
            return pieces
        end = rest.find(_MARKS[1], start + 1)
        end = len(rest) if end < 0 else end
        pieces += [rest[:start], rest[start + 1 : end]]
        rest = rest[end + 1 :]


class SearchScreen(ModalScreen[SearchJump | None]):
    """Dismisses with a `SearchJump` for the hit picked with Enter, or None on Esc.

    The store is asked in a thread worker, a short pause after the last keystroke; answers to
    anything but the current text are dropped. A newer search stops the one still running (and
    closing the screen stops it too), so searches never queue on the store's lock, ahead of the
    saves of a streaming reply.
    """

    CSS_PATH = "../history_screens.tcss"
    """Loaded with the screen, so the app's first frame does not parse it."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="search.close"),
        Binding("down", "move(1)", "Next hit", show=False, id="search.next"),
        Binding("up", "move(-1)", "Previous hit", show=False, id="search.previous"),
    ]

    LIMIT: Final = 50

    class _Found(Message, bubble=False):
        def __init__(self, query: str, hits: list[SearchHit]) -> None:
            super().__init__()
            self.query = query
            self.hits = hits

    class _Failed(Message, bubble=False):
        def __init__(self, query: str, reason: str) -> None:
            super().__init__()
            self.query = query
            self.reason = reason

    def __init__(
        self,
        store: SearchSource,
        *,
        query: str = "",
        debounce_s: float = 0.25,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._store = store
        self._initial_query = query
        self._debounce_s = debounce_s
        self._timer: Timer | None = None
        self._hits: dict[str, SearchHit] = {}
        self._shown_query = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="search-dialog", classes="history-dialog") as dialog:
            dialog.border_title = "Search conversations"
            yield Input(value=self._initial_query, placeholder="words to find", id="search-input")
            yield Static("", id="search-status")
            yield OptionList(id="search-hits")
            yield Static("type to search · ↑/↓ pick · Enter open · Esc close", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#search-input", Input).focus()
        if searchable(self._query):
            self._start(self._query)

    @property
    def _query(self) -> str:
        return self.query_one("#search-input", Input).value.strip()

    @on(Input.Changed, "#search-input")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self._debounce_s, self._debounced, name="search-debounce")

    def _debounced(self) -> None:
        self._timer = None
        self._start(self._query)

    def _start(self, query: str) -> None:
        if not searchable(query):
            self.workers.cancel_group(self, SEARCH_GROUP)
            self._show(query, [])
            self._status("")
            return
        self._status("searching…")
        self._search(self._store, query)

    @work(thread=True, exclusive=True, group=SEARCH_GROUP, exit_on_error=False)
    def _search(self, store: SearchSource, query: str) -> None:
        worker = get_current_worker()
        try:
            # exclusive=True cancels this worker when a newer search starts, but a thread cannot be
            # stopped from outside: the store polls the flag while its statement runs instead.
            hits = store.search(query, limit=self.LIMIT, marks=_MARKS, cancelled=lambda: worker.is_cancelled)
        except SearchCancelledError:
            return  # the user typed on: nothing to show, and nothing went wrong
        except StoreError as exc:
            self.post_message(self._Failed(query, str(exc)))
            return
        if not worker.is_cancelled:
            self.post_message(self._Found(query, hits))

    @on(_Found)
    def _found(self, message: _Found) -> None:
        if message.query != self._query:
            return
        self._show(message.query, message.hits)
        count = len(message.hits)
        if not count:
            self._status("no messages match")
        else:
            more = "at least " if count >= self.LIMIT else ""
            self._status(f"{more}{counted(count, 'message')} · Enter opens the highlighted one")

    @on(_Failed)
    def _failed(self, message: _Failed) -> None:
        if message.query == self._query:
            self._status(f"search failed: {message.reason}", error=True)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == SEARCH_GROUP and event.state is WorkerState.ERROR:
            self._status(f"search failed: {event.worker.error}", error=True)

    def _show(self, query: str, hits: list[SearchHit]) -> None:
        self._shown_query = query
        self._hits = {hit.message_id: hit for hit in hits}
        results = self.query_one("#search-hits", OptionList)
        # A later answer (one more letter typed) keeps the hit the user moved to, if it is still there.
        before = results.highlighted_option
        kept = before.id if before is not None and before.id in self._hits else None
        options: list[Option | None] = []
        for hit in self._hits.values():
            # None draws a rule under the option before it: hits are two lines each.
            options += [Option(hit_content(hit), id=hit.message_id), None]
        results.set_options(options)
        if kept is not None:
            results.highlighted = results.get_option_index(kept)
        elif self._hits:
            results.highlighted = 0

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#search-status", Static)
        status.update(literal(text))
        status.set_class(error, "-error")

    def action_move(self, step: int) -> None:
        results = self.query_one("#search-hits", OptionList)
        if step > 0:
            results.action_cursor_down()
        else:
            results.action_cursor_up()

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#search-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._shown_query != self._query:
            # Enter right after typing, before the pause ran out: search now rather than open a
            # hit for the words that were there before.
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            self._start(self._query)
            return
        option = self.query_one("#search-hits", OptionList).highlighted_option
        if option is not None and option.id is not None:
            self._jump(option.id)

    @on(OptionList.OptionSelected, "#search-hits")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self._jump(event.option.id)

    def _jump(self, message_id: str) -> None:
        hit = self._hits[message_id]
        self.dismiss(SearchJump(hit.conversation_id, hit.message_id))

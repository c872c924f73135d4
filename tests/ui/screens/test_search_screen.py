"""Search as you type: hits from the store's full-text index, Enter jumps to the message."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from history_support import HostApp, add_turn
from pilot_support import wait_until
from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from lollma_tui.core.chat import store_search
from lollma_tui.core.chat.conversation import Conversation
from lollma_tui.core.chat.errors import StoreLockedError
from lollma_tui.core.chat.store import ChatStore, SearchHit
from lollma_tui.ui.screens.search import SearchJump, SearchScreen, hit_content

SIZE = (80, 24)


def hit_ids(app: HostApp) -> list[str]:
    options = app.screen.query_one("#search-hits", OptionList).options
    return [option.id for option in options if option.id is not None]


def status(app: HostApp) -> str:
    return str(app.screen.query_one("#search-status", Static).render())


async def open_search(pilot: Pilot[Any], app: HostApp, screen: SearchScreen) -> None:
    app.open(screen)
    await wait_until(pilot, lambda: app.screen is screen and screen.is_mounted)


def fill(store: ChatStore) -> dict[str, tuple[str, str]]:
    """Three conversations; name -> (conversation id, id of the reply holding the rare word)."""
    found = {}
    for title, answer in (
        ("Birds", "Swallows migrate south in autumn."),
        ("Animals", "A zebra has stripes; no two zebras are alike."),
        ("Horses", "Horses sleep standing; a zebra does too."),
    ):
        chat = store.create_conversation(Conversation(title=title))
        _, reply = add_turn(store, chat.id, f"tell me about {title.lower()}", answer)
        found[title] = (chat.id, reply)
    return found


async def test_hits_show_the_conversation_and_enter_jumps(store: ChatStore) -> None:
    saved = fill(store)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_search(pilot, app, SearchScreen(store, debounce_s=0.05))
        await pilot.press(*"swallow")  # a prefix of the word in the text
        await wait_until(pilot, lambda: len(hit_ids(app)) == 1)
        [option] = [o for o in app.screen.query_one("#search-hits", OptionList).options if o.id]
        assert str(option.prompt).startswith("Birds  assistant · ")
        assert "Swallows migrate south" in str(option.prompt)
        assert status(app).startswith("1 message")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.results))
    [jump] = app.results
    assert isinstance(jump, SearchJump)
    assert jump == saved["Birds"]  # (conversation id, message id)


async def test_arrow_keys_pick_among_hits(store: ChatStore) -> None:
    saved = fill(store)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_search(pilot, app, SearchScreen(store, debounce_s=0.05))
        await pilot.press(*"zebra")
        await wait_until(pilot, lambda: len(hit_ids(app)) == 2)
        order = [hit.message_id for hit in store.search("zebra")]
        assert hit_ids(app) == order
        await pilot.press("down", "up", "down", "enter")
        await wait_until(pilot, lambda: bool(app.results))
    by_reply = {reply: chat for chat, reply in saved.values()}
    assert app.results == [(by_reply[order[1]], order[1])]


class CountingStore:
    def __init__(self, store: ChatStore) -> None:
        self.store = store
        self.queries: list[str] = []
        self.threads: set[str] = set()

    def search(
        self,
        query: str,
        *,
        limit: int = 50,
        marks: tuple[str, str] = ("[", "]"),
        cancelled: Callable[[], bool] | None = None,
    ) -> list[SearchHit]:
        self.queries.append(query)
        self.threads.add(threading.current_thread().name)
        return self.store.search(query, limit=limit, marks=marks, cancelled=cancelled)


async def test_typing_is_debounced_and_searched_off_the_event_loop(store: ChatStore) -> None:
    fill(store)
    counting = CountingStore(store)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_search(pilot, app, SearchScreen(counting, debounce_s=0.5))
        await pilot.press(*"migrate")
        await wait_until(pilot, lambda: len(hit_ids(app)) == 1)
    assert counting.queries == ["migrate"]
    assert threading.main_thread().name not in counting.threads


async def test_a_refreshed_answer_keeps_the_hit_moved_to(store: ChatStore) -> None:
    saved = fill(store)
    counting = CountingStore(store)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_search(pilot, app, SearchScreen(counting, debounce_s=0.05))
        await pilot.press(*"zebr")
        await wait_until(pilot, lambda: len(hit_ids(app)) == 2 and status(app).startswith("2 "))
        order = hit_ids(app)
        await pilot.press("down", "a")  # one more letter: the same two hits come back
        await wait_until(pilot, lambda: "zebra" in counting.queries and status(app).startswith("2 "))
        assert hit_ids(app) == order
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.results))
    by_reply = {reply: chat for chat, reply in saved.values()}
    assert app.results == [(by_reply[order[1]], order[1])]


async def test_no_hits_and_cleared_text(store: ChatStore) -> None:
    fill(store)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_search(pilot, app, SearchScreen(store, debounce_s=0.05))
        await pilot.press(*"xylophone")
        await wait_until(pilot, lambda: status(app) == "no messages match")
        assert hit_ids(app) == []
        await pilot.press("enter")  # nothing to open
        await pilot.press("ctrl+u", *"zebra")
        await wait_until(pilot, lambda: len(hit_ids(app)) == 2)
        await pilot.press("ctrl+u")
        await wait_until(pilot, lambda: hit_ids(app) == [])
        await pilot.press("escape")
        await wait_until(pilot, lambda: bool(app.results))
    assert app.results == [None]


async def test_enter_before_the_pause_searches_instead_of_opening_a_stale_hit(store: ChatStore) -> None:
    saved = fill(store)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_search(pilot, app, SearchScreen(store, query="swallow", debounce_s=5.0))
        await wait_until(pilot, lambda: len(hit_ids(app)) == 1)  # the initial query runs at once
        await pilot.press("ctrl+u", *"stripes", "enter")
        await wait_until(pilot, lambda: hit_ids(app) == [saved["Animals"][1]])
        assert app.results == []
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.results))
    assert app.results == [saved["Animals"]]


class StallingStore:
    """The real store, whose statement for `slow` stalls (holding the store's lock) until the
    screen cancels it, or for 30 s: as a search over a huge history would run on."""

    def __init__(self, store: ChatStore, slow: str) -> None:
        self.store = store
        self.slow = slow
        self.stalled = threading.Event()
        self.outcomes: dict[str, str] = {}
        self.deadline = time.monotonic() + 30  # for all the steps together

    def search(
        self,
        query: str,
        *,
        limit: int = 50,
        marks: tuple[str, str] = ("[", "]"),
        cancelled: Callable[[], bool] | None = None,
    ) -> list[SearchHit]:
        def stalling() -> bool:
            self.stalled.set()
            while not (cancelled is not None and cancelled()) and time.monotonic() < self.deadline:
                time.sleep(0.01)
            return cancelled is not None and cancelled()

        check = stalling if query == self.slow else cancelled
        try:
            hits = self.store.search(query, limit=limit, marks=marks, cancelled=check)
        except Exception as exc:
            self.outcomes[query] = type(exc).__name__
            raise
        self.outcomes[query] = "done"
        return hits


@pytest.fixture
def step_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The store looks at `cancelled` every step, so a stall reaches even a tiny statement.
    monkeypatch.setattr(store_search, "PROGRESS_STEPS", 1)


@pytest.mark.usefixtures("step_checks")
async def test_a_newer_query_stops_the_search_still_running(store: ChatStore) -> None:
    fill(store)
    stalling = StallingStore(store, slow="zeb")
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_search(pilot, app, SearchScreen(stalling, debounce_s=0.05))
        await pilot.press(*"zeb")
        await wait_until(pilot, stalling.stalled.is_set)
        await pilot.press(*"ra")
        # Without the stop, "zebra" would wait 30 s on the store's lock behind "zeb".
        await wait_until(pilot, lambda: status(app).startswith("2 "), within=15, explain=lambda: status(app))
        assert len(hit_ids(app)) == 2
        assert stalling.outcomes["zeb"] == "SearchCancelledError"
        assert not app.screen.query_one("#search-status").has_class("-error")
    assert store._lock.acquire(timeout=5)
    store._lock.release()


@pytest.mark.usefixtures("step_checks")
async def test_closing_the_screen_stops_its_search(store: ChatStore) -> None:
    fill(store)
    stalling = StallingStore(store, slow="zebra")
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_search(pilot, app, SearchScreen(stalling, debounce_s=0.05))
        await pilot.press(*"zebra")
        await wait_until(pilot, stalling.stalled.is_set)
        await pilot.press("escape")
        await wait_until(pilot, lambda: "zebra" in stalling.outcomes, within=15)
        assert stalling.outcomes["zebra"] == "SearchCancelledError"
        assert app.results == [None]


class BrokenStore:
    def search(
        self,
        query: str,
        *,
        limit: int = 50,
        marks: tuple[str, str] = ("[", "]"),
        cancelled: Callable[[], bool] | None = None,
    ) -> list[SearchHit]:
        raise StoreLockedError("the chat history is locked by another program")


async def test_a_store_error_is_shown() -> None:
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_search(pilot, app, SearchScreen(BrokenStore(), debounce_s=0.01))
        await pilot.press(*"abc")
        await wait_until(pilot, lambda: "locked" in status(app))
        assert app.screen.query_one("#search-status").has_class("-error")


def test_hit_content_marks_the_matches() -> None:
    hit = SearchHit("c1", "  A\ntitle ", "m1", "user", "one \ue000zebra\ue001 and\n\ue000two\ue001", 0.0)
    content = hit_content(hit)
    heading, snippet = content.plain.split("\n")
    assert heading.startswith("A title  you · ")
    assert snippet == "  one zebra and two"
    marked = [
        content.plain[span.start : span.end] for span in content.spans if "$text-accent" in str(span.style)
    ]
    assert marked == ["zebra", "two"]

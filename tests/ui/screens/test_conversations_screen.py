"""The conversation list, driven by keys at 80x24 against a real store file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from history_support import HostApp, make_conversations
from other_instance import another_instance
from pilot_support import wait_until
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static

from lollma_tui.core.chat.conversation import Conversation, Message
from lollma_tui.core.chat.errors import NotFoundError, StoreLockedError
from lollma_tui.core.chat.opening import open_store
from lollma_tui.core.chat.store import ChatStore, ConversationSummary
from lollma_tui.ui.screens.confirm import ConfirmScreen
from lollma_tui.ui.screens.conversations import (
    NEW_CONVERSATION,
    ConversationsScreen,
    Page,
    fetch_page,
    format_updated,
)

SIZE = (80, 24)


def option_ids(app: HostApp) -> list[str | None]:
    return [option.id for option in app.screen.query_one("#conversations-list", OptionList).options]


def status(app: HostApp) -> str:
    return str(app.screen.query_one("#conversations-status", Static).render())


async def open_list(pilot: Pilot[Any], app: HostApp, store: ChatStore, **kwargs: Any) -> ConversationsScreen:
    screen = ConversationsScreen(store, **kwargs)
    app.open(screen)
    await wait_until(pilot, lambda: app.screen is screen and screen.is_mounted)
    await wait_until(pilot, lambda: "loading" not in status(app))
    return screen


async def test_newest_first_with_title_time_and_count(store: ChatStore) -> None:
    ids = make_conversations(store, 5)
    store.add_message(ids[1], Message("user", "one more"))
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store)
        expected = [summary.id for summary in store.list_conversations(limit=10)]
        assert option_ids(app) == expected
        assert expected[0] == ids[1]  # the one written to last, not the one made last
        first = app.screen.query_one("#conversations-list", OptionList).options[0]
        assert "chat 001" in str(first.prompt) and "     2  " in str(first.prompt)
        assert status(app) == "5 of 5"


async def test_enter_opens_the_highlighted_conversation(store: ChatStore) -> None:
    ids = make_conversations(store, 3)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store)
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: bool(app.results))
    assert app.results == [ids[1]]


@pytest.mark.parametrize(("key", "expected"), [("n", NEW_CONVERSATION), ("escape", None)])
async def test_new_and_close(store: ChatStore, key: str, expected: object) -> None:
    make_conversations(store, 2)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store)
        await pilot.press(key)
        await wait_until(pilot, lambda: bool(app.results))
    assert app.results == [expected]


async def test_rename_is_saved_in_the_store(store: ChatStore) -> None:
    ids = make_conversations(store, 3)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store)
        await pilot.press("down", "down", "r")  # the oldest one
        field = app.screen.query_one("#conversations-rename", Input)
        assert field.has_focus and field.value == "chat 000"
        await pilot.press(*"Renamed: [not markup]", "enter")
        await wait_until(pilot, lambda: bool(app.announced))
        [renamed] = app.announced
        assert isinstance(renamed, ConversationsScreen.Renamed)
        assert renamed.control is app.screen
        # Re-read through a second connection: it is on disk, not only on screen.
        assert store.path is not None
        with ChatStore.open(store.path) as again:
            assert again.get_summary(ids[0]).title == "Renamed: [not markup]"
        # A new title is not activity: the chat keeps its place (the oldest, last), highlighted.
        options = app.screen.query_one("#conversations-list", OptionList)
        assert option_ids(app)[-1] == ids[0]
        assert options.highlighted == len(ids) - 1
        assert "Renamed: [not markup]" in str(options.options[-1].prompt)
        assert options.has_focus and field.has_class("-hidden")
        assert app.results == []  # still open


async def test_escape_cancels_a_rename(store: ChatStore) -> None:
    ids = make_conversations(store, 2)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store)
        await pilot.press("r", *"nope", "escape")
        await pilot.pause()
        assert app.screen.query_one("#conversations-rename", Input).has_class("-hidden")
        assert app.results == []
        await app.workers.wait_for_complete()
    assert store.get_summary(ids[1]).title == "chat 001"
    assert app.announced == []


async def test_an_empty_title_keeps_the_old_one(store: ChatStore) -> None:
    # Saved empty, the title was then taken from the next message, unasked; /rename refuses it.
    ids = make_conversations(store, 2)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store)
        await pilot.press("r", "ctrl+a", "ctrl+k", "space", "enter")
        await pilot.pause()
        assert app.screen.query_one("#conversations-rename", Input).has_class("-hidden")
        await app.workers.wait_for_complete()
    assert store.get_summary(ids[1]).title == "chat 001"
    assert app.announced == []


async def test_delete_asks_first_and_deletes_only_on_yes(store: ChatStore) -> None:
    ids = make_conversations(store, 3)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        listing = await open_list(pilot, app, store)
        for refusal in (("n",), ("escape",), ("enter",)):  # Enter: "Keep" has the focus
            await pilot.press("d")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press(*refusal)
            await wait_until(pilot, lambda: app.screen is listing)
            await app.workers.wait_for_complete()
            assert store.count_conversations() == 3, refusal
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "chat 002" in str(app.screen.query_one("#confirm-question", Static).render())
        await pilot.press("y")
        await wait_until(pilot, lambda: bool(app.announced))
        [deleted] = app.announced
        assert isinstance(deleted, ConversationsScreen.Deleted) and deleted.conversation_id == ids[2]
        with pytest.raises(NotFoundError):
            store.get_summary(ids[2])
        assert store.count_conversations() == 2
        assert option_ids(app) == [ids[1], ids[0]]
        assert status(app) == "2 of 2"
        assert app.results == []


async def test_pages_load_as_the_highlight_reaches_the_end(store: ChatStore) -> None:
    make_conversations(store, 120)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store)
        assert len(option_ids(app)) == 50  # one page, not everything
        assert status(app).startswith("50 of 120")
        await pilot.press("end")
        await wait_until(pilot, lambda: len(option_ids(app)) == 100)
        await pilot.press("end")
        await wait_until(pilot, lambda: len(option_ids(app)) == 120)
        await pilot.press("end")
        await app.workers.wait_for_complete()
        await pilot.pause()
        expected = [summary.id for summary in store.list_conversations(limit=500)]
        assert option_ids(app) == expected
        assert status(app) == "120 of 120"


async def test_scrolling_to_the_bottom_loads_the_next_page(store: ChatStore) -> None:
    make_conversations(store, 70)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store)
        options = app.screen.query_one("#conversations-list", OptionList)
        options.scroll_end(animate=False, immediate=True)
        await wait_until(pilot, lambda: len(option_ids(app)) == 70)
        assert options.highlighted == 0  # the mouse wheel moved the view, not the highlight


async def test_filter_by_title_reads_past_the_first_page(store: ChatStore) -> None:
    wanted = []
    for n in range(120):
        title = f"needle {n}" if n % 40 == 7 else f"hay {n}"
        chat = store.create_conversation(Conversation(title=title))
        if title.startswith("needle"):
            wanted.append(chat.id)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store)
        await pilot.press("slash", *"NEEDLE")  # "n" and "d" are typed, not taken as commands
        await wait_until(pilot, lambda: len(option_ids(app)) == 3 and "matching" in status(app))
        assert option_ids(app) == list(reversed(wanted))
        assert status(app) == "3 matching “NEEDLE”"
        await pilot.press("down", "down", "enter")  # into the list, to the second, open it
        await wait_until(pilot, lambda: bool(app.results))
    assert app.results == [wanted[-2]]


async def test_escape_clears_the_filter_before_closing(store: ChatStore) -> None:
    make_conversations(store, 60)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store)
        await pilot.press("slash", *"chat 05", "enter")
        await wait_until(pilot, lambda: len(option_ids(app)) == 10)
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(option_ids(app)) == 50)
        assert app.results == []
        await pilot.press("escape")
        await wait_until(pilot, lambda: bool(app.results))
    assert app.results == [None]


async def test_fits_80x24(store: ChatStore) -> None:
    make_conversations(store, 40, title="a very long title that will not fit in the width of the list {n}")
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store, current_id=None)
        screen_region = Region(0, 0, *SIZE)
        for selector in ("#conversations-dialog", "#conversations-status", ".dialog-keys"):
            region = app.screen.query_one(selector).region
            assert region.area > 0 and screen_region.contains_region(region), selector
        await pilot.press("r")
        assert screen_region.contains_region(app.screen.query_one("#conversations-rename").region)


async def test_current_conversation_is_marked(store: ChatStore) -> None:
    ids = make_conversations(store, 3)
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store, current_id=ids[1])
        prompts = [str(o.prompt) for o in app.screen.query_one("#conversations-list", OptionList).options]
        assert [p.startswith("●") for p in prompts] == [False, True, False]


async def test_empty_history(store: ChatStore) -> None:
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, store)
        assert option_ids(app) == []
        assert "No saved conversations yet" in status(app)
        await pilot.press("enter", "r", "d")
        await pilot.pause()
        assert app.results == [] and isinstance(app.screen, ConversationsScreen)


class LockedStore:
    def list_conversations(self, *, limit: int = 50, offset: int = 0) -> list[ConversationSummary]:
        raise StoreLockedError("the chat history is locked by another program")

    def count_conversations(self) -> int:
        raise AssertionError("not reached")

    def get_summary(self, conversation_id: str) -> ConversationSummary:
        raise AssertionError("not reached")

    def rename(self, conversation_id: str, title: str) -> None:
        raise AssertionError("not reached")

    def delete_conversation(self, conversation_id: str) -> None:
        raise AssertionError("not reached")

    def held_elsewhere(self, conversation_id: str) -> bool:
        raise AssertionError("not reached")


async def test_a_conversation_another_lollma_tui_shows_is_marked(tmp_path: Path) -> None:
    opened = open_store(tmp_path / "history.db")
    store = opened.store
    try:
        ids = make_conversations(store, 3)
        assert store.path is not None
        with another_instance(store.path, holding=ids[1]):
            app = HostApp()
            async with app.run_test(size=SIZE) as pilot:
                await open_list(pilot, app, store, current_id=ids[2])
                options = app.screen.query_one("#conversations-list", OptionList).options
                marks = {option.id: str(option.prompt)[:2] for option in options}
                assert marks == {ids[0]: "  ", ids[1]: "◌ ", ids[2]: "● "}
                assert status(app) == "3 of 3 · ◌ open in another lollma-tui"
    finally:
        store.close()


async def test_a_store_error_is_shown_not_raised() -> None:
    app = HostApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = ConversationsScreen(LockedStore())
        app.open(screen)
        await wait_until(pilot, lambda: app.screen is screen and screen.is_mounted)
        await wait_until(pilot, lambda: "locked" in status(app))
        assert app.screen.query_one("#conversations-status").has_class("-error")


def test_fetch_page_with_a_filter_resumes_where_it_stopped(store: ChatStore) -> None:
    for n in range(500):
        store.create_conversation(Conversation(title=f"x{n}" if n % 2 else f"y{n}"))
    seen: list[str] = []
    page = Page([], 0, False)
    while not page.exhausted:
        page = fetch_page(store, page.next_offset, 30, "X")
        seen += [row.title for row in page.rows]
    assert seen == [s.title for s in store.list_conversations(limit=1000) if s.title.startswith("x")]


def test_format_updated() -> None:
    now = time.mktime((2025, 6, 15, 12, 0, 0, 0, 0, -1))  # local noon: "today" cannot cross midnight
    assert format_updated(now - 60, now).startswith("today ")
    assert len(format_updated(now - 40 * 86400, now)) <= 12
    assert format_updated(now - 400 * 86400, now)[-4:].isdigit()

"""Conversations saved as they happen, resumed on the next start, opened lazily when long."""

from __future__ import annotations

from pathlib import Path

from chat_app_support import notices, send
from history_support import lighthouse_chat
from ollama_server import OllamaTestServer
from ollama_server.engines import Script
from other_instance import another_instance
from pilot_support import ollama_app, wait_until
from terminal_output import screen_text
from textual.pilot import Pilot
from textual.widgets import Static

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.chat.conversation import Conversation, Message, ReplyState
from lollma_tui.core.chat.opening import default_store_path
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.settings import LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens.chat_pages import TAIL_MESSAGES
from lollma_tui.ui.screens.conversations import ConversationsScreen
from lollma_tui.ui.screens.search import SearchScreen
from lollma_tui.ui.widgets.chat_log import HistoryTurn

SHORT = SamplingSettings(temperature=0.0, repeat_penalty=1.0, max_tokens=12)


def make_app(model: Path, **changes: object) -> LollmaApp:
    options = StartupOptions(load=LoadSettings(model=str(model), n_ctx=1024), sampling=SHORT)
    for key, value in changes.items():
        object.__setattr__(options, key, value)
    return LollmaApp(options)


def app_on_saved(conversation: Conversation, model: Path) -> LollmaApp:
    """`conversation` saved in the history, and an app that starts on it (the latest)."""
    with ChatStore.open(default_store_path()) as store:
        store.create_conversation(conversation)
    return make_app(model)


async def chat(pilot: Pilot[None], app: LollmaApp, text: str) -> None:
    main = app.chat_screen
    before = len(main.chat_log.reply_turns())
    await pilot.press(*text, "enter")
    await wait_until(
        pilot,
        lambda: len(main.chat_log.reply_turns()) > before and not main.is_generating,
    )


async def started(pilot: Pilot[None], app: LollmaApp) -> None:
    main = app.chat_screen
    await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY)
    await wait_until(pilot, lambda: main.history.store is not None)
    await app.workers.wait_for_complete([w for w in app.workers if w.group == "history-open"])


def stored_thread() -> list[Message]:
    with ChatStore.open(default_store_path()) as store:
        conversation_id = store.latest_conversation_id()
        assert conversation_id is not None
        return store.load(conversation_id).conversation.messages


async def test_the_notices_of_a_start_that_resumes_a_chat_stay_after_its_turns(tiny_gguf: Path) -> None:
    with ChatStore.open(default_store_path()) as store:
        lighthouse_chat(store)
    problem = "config.toml: settings.n_ctx: n_ctx must be between 64 and 4194304, not 10"
    app = make_app(tiny_gguf, config_problems=(problem,))
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        shown = list(app.chat_screen.chat_log.children)
        texts = [str(child.render()) if isinstance(child, Static) else "" for child in shown]
        assert f"! {problem}" in texts, texts
        resumed = next(i for i, text in enumerate(texts) if text.startswith("Resumed “about lighthouses”"))
        last_turn = max(i for i, child in enumerate(shown) if "turn" in child.classes)
        assert last_turn < texts.index(f"! {problem}") < resumed


async def test_regenerating_a_chat_that_ends_on_a_question_answers_it_and_keeps_the_reply_before(
    tiny_gguf: Path,
) -> None:
    # An import (or a reply that was never saved) can leave a chat ending on the user's turn.
    with ChatStore.open(default_store_path()) as store:
        chat = lighthouse_chat(store)
        store.add_message(chat.id, Message("user", "and in fog?"))
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: len(main.conversation.messages) == 4 and not main.is_generating)
        shown = [(m.role, m.content) for m in main.conversation.messages][:3]
        assert shown == [
            ("user", "how do lighthouses work"),
            ("assistant", "a lamp and a lens"),
            ("user", "and in fog?"),
        ]
        assert len(main.chat_log.turns()) == 4
    saved = stored_thread()
    assert [(m.role, m.content) for m in saved][:3] == shown
    assert saved[3].role == "assistant" and saved[3].id == main.conversation.messages[3].id


async def test_every_turn_is_saved_with_its_stats_and_resumed_next_time(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "first question")
        await chat(pilot, app, "second question")
        shown = [m.content for m in main.conversation.messages]
    saved = stored_thread()
    assert [m.content for m in saved] == shown
    assert [m.role for m in saved] == ["user", "assistant", "user", "assistant"]
    reply = saved[1]
    assert reply.state in (ReplyState.COMPLETE, ReplyState.LENGTH)
    assert reply.stats is not None and reply.stats.gen_tokens > 0 and reply.stats.setup.quant == "F16"

    again = make_app(tiny_gguf)
    async with again.run_test(size=(100, 32)) as pilot:
        await started(pilot, again)
        assert [m.content for m in again.chat_screen.conversation.messages] == shown
        users = [t.message.content for t in again.chat_screen.chat_log.turns() if t.message.role == "user"]
        assert users == ["first question", "second question"]
        # The resumed conversation goes on in the same thread.
        await chat(pilot, again, "third question")
    assert [m.content for m in stored_thread()][:4] == shown
    assert len(stored_thread()) == 6


async def test_new_flag_starts_fresh_and_keeps_the_old_one(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "keep me")
    fresh = make_app(tiny_gguf, new_conversation=True)
    async with fresh.run_test(size=(100, 32)) as pilot:
        await started(pilot, fresh)
        assert fresh.chat_screen.conversation.messages == []
        assert fresh.chat_screen.chat_log.turns() == []
    with ChatStore.open(default_store_path()) as store:
        assert store.count_conversations() == 1  # nothing said yet, so nothing new saved


async def test_a_chat_open_in_another_lollma_tui_is_not_opened_or_deleted_here(tiny_gguf: Path) -> None:
    # Run again in another terminal (a second ssh session) while the first still shows its chat:
    # resuming it put both on one thread, each showing only its own turns, and deleting it from
    # the second left the first one chatting unsaved.
    app = make_app(tiny_gguf)
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "keep me")
        first_id = app.chat_screen.conversation.id
    with another_instance(default_store_path(), holding=first_id):
        second = make_app(tiny_gguf)
        main = second.chat_screen
        async with second.run_test(size=(100, 32)) as pilot:
            await started(pilot, second)
            assert main.conversation.messages == []
            assert "The last chat is open in another lollma-tui window" in " ".join(notices(second))
            # Nor from the list: it stays on its own chat, and the list's delete is refused.
            await chat(pilot, second, "my own")
            own_id = main.conversation.id
            await pilot.press("ctrl+o")
            await wait_until(pilot, lambda: isinstance(second.screen, ConversationsScreen))
            await pilot.pause(0.3)
            await pilot.press("down", "enter")  # newest first: the second row is the other's
            await wait_until(pilot, lambda: not isinstance(second.screen, ConversationsScreen))
            await wait_until(pilot, lambda: "close it there to open it here" in " ".join(notices(second)))
            assert main.conversation.id == own_id
            await pilot.press("ctrl+o")
            await wait_until(pilot, lambda: isinstance(second.screen, ConversationsScreen))
            await pilot.pause(0.3)
            await pilot.press("down", "d", "y")
            status = second.screen.query_one("#conversations-status", Static)
            await wait_until(pilot, lambda: "open in another lollma-tui" in str(status.render()))
        with ChatStore.open(default_store_path()) as store:
            assert store.load(first_id).conversation.messages[0].content == "keep me"
        # Asked for by id, it is refused all the same.
        chosen = make_app(tiny_gguf, conversation_id=first_id)
        async with chosen.run_test(size=(100, 32)) as pilot:
            await started(pilot, chosen)
            assert chosen.chat_screen.conversation.messages == []
            assert "That chat is open in another lollma-tui window" in " ".join(notices(chosen))
    # Another lollma-tui that shows some other chat leaves the newest one free to resume.
    with another_instance(default_store_path(), holding=first_id):
        again = make_app(tiny_gguf)
        async with again.run_test(size=(100, 32)) as pilot:
            await started(pilot, again)
            assert again.chat_screen.conversation.id == own_id
    # Alone again: the newest chat is resumed, as before, and can be deleted.
    with ChatStore.open(default_store_path()) as store:
        store.delete_conversation(own_id)
    last = make_app(tiny_gguf)
    async with last.run_test(size=(100, 32)) as pilot:
        await started(pilot, last)
        assert last.chat_screen.conversation.id == first_id


async def test_a_search_hit_in_a_chat_another_lollma_tui_shows_is_not_opened(tiny_gguf: Path) -> None:
    with ChatStore.open(default_store_path()) as store:
        theirs = lighthouse_chat(store)
        # The hit is on a branch edited away: finding it would switch which branch that chat shows.
        store.branch_from(theirs.messages[0].id, "how do bridges stand")
    with another_instance(default_store_path(), holding=theirs.id):
        app = make_app(tiny_gguf)
        main = app.chat_screen
        async with app.run_test(size=(100, 32)) as pilot:
            await started(pilot, app)
            await chat(pilot, app, "my own")
            own_id = main.conversation.id
            await pilot.press("ctrl+f")
            await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
            await pilot.press(*"lens")
            await pilot.pause(0.6)
            await pilot.press("enter")
            await wait_until(pilot, lambda: "close it there to open it here" in " ".join(notices(app)))
            assert main.conversation.id == own_id
            # Still its own: the next message goes to its own chat.
            await chat(pilot, app, "still mine")
    with ChatStore.open(default_store_path()) as store:
        assert [m.content for m in store.load(own_id).conversation.messages if m.role == "user"] == [
            "my own",
            "still mine",
        ]
        assert [m.content for m in store.load(theirs.id).conversation.messages] == ["how do bridges stand"]


async def test_a_reply_left_by_a_lollma_tui_that_was_killed_is_marked_when_its_chat_opens(
    tiny_gguf: Path,
) -> None:
    # The other window is killed (the OOM killer, kill -9) mid-reply while this one runs: the
    # reply stayed "still being written" here until a start with no other lollma-tui running.
    with ChatStore.open(default_store_path()) as store:
        theirs = Conversation(title="a long story")
        theirs.messages.append(Message("user", "tell me a long story"))
        store.create_conversation(theirs)
        writer = store.start_reply(theirs.id)
        writer.append_delta("Once upon a time")
        writer.flush()
    with another_instance(default_store_path(), holding=theirs.id) as other:
        app = make_app(tiny_gguf)
        main = app.chat_screen
        async with app.run_test(size=(100, 32)) as pilot:
            await started(pilot, app)
            assert main.conversation.messages == []
            other.kill()
            other.wait(timeout=10)
            await pilot.press("ctrl+o")
            await wait_until(pilot, lambda: isinstance(app.screen, ConversationsScreen))
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_until(pilot, lambda: main.conversation.id == theirs.id)
            reply = main.conversation.messages[-1]
            assert (reply.content, reply.state) == ("Once upon a time", ReplyState.INCOMPLETE)
            assert any("1 reply was cut off when the lollma-tui writing it ended" in n for n in notices(app))
    with ChatStore.open(default_store_path()) as store:
        assert store.get_message(writer.message_id).state is ReplyState.INCOMPLETE


async def test_regenerate_keeps_the_old_reply_as_a_branch(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "hello")
        first_reply = main.conversation.messages[1]
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: main.conversation.messages[-1] is not first_reply)
        await wait_until(pilot, lambda: not main.is_generating)
        second_reply = main.conversation.messages[1]
    with ChatStore.open(default_store_path()) as store:
        assert store.siblings(second_reply.id) == [first_reply.id, second_reply.id]
        conversation_id = store.latest_conversation_id()
        assert conversation_id is not None
        visible = store.load(conversation_id).conversation.messages
        assert [m.id for m in visible] == [main.conversation.messages[0].id, second_reply.id]


async def test_system_prompt_is_saved(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "hi")
        await pilot.press(*"/system Be terse.", "enter")
        await pilot.pause()
    with ChatStore.open(default_store_path()) as store:
        conversation_id = store.latest_conversation_id()
        assert conversation_id is not None
        assert store.load(conversation_id).conversation.system_prompt == "Be terse."


async def test_a_long_conversation_opens_with_only_its_tail_mounted(tiny_gguf: Path) -> None:
    conversation = Conversation(title="long one")
    for i in range(1000):
        conversation.messages.append(Message("user", f"question {i}"))
        conversation.messages.append(Message("assistant", f"answer {i}"))
    app = app_on_saved(conversation, tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        assert len(main.conversation.messages) == 2000
        chat_log = main.chat_log
        mounted = len(chat_log.turns())
        assert mounted == TAIL_MESSAGES
        assert chat_log.turns()[-1].message.content == "answer 999"
        # Scrolling to the top mounts the page before.
        chat_log.scroll_home(animate=False)
        await wait_until(pilot, lambda: len(chat_log.turns()) > mounted)
        first = chat_log.turns()[0].message.content
        assert first == f"question {1000 - TAIL_MESSAGES}"
        # The reader keeps their place: the turn that was on top is still in view, not a page
        # further down, and going up again loads the next page (it waited for a scroll down).
        was_on_top = chat_log.turns()[mounted and len(chat_log.turns()) - mounted]
        await wait_until(pilot, lambda: chat_log.scroll_y > 0)
        assert chat_log.region.y <= was_on_top.region.y < chat_log.region.bottom
        before = len(chat_log.turns())
        chat_log.scroll_home(animate=False)
        await wait_until(pilot, lambda: len(chat_log.turns()) > before)
        # Jumping to an old message mounts what it takes to show it, and scrolls it into view.
        target = main.conversation.messages[10]
        await main.pages.reveal(target.id)
        found = chat_log.turn_for(target.id)
        assert found is not None and found.has_class("-found")
        await wait_until(pilot, lambda: chat_log.region.y <= found.region.y < chat_log.region.bottom)
        assert chat_log.turns()[0].message is main.conversation.messages[8]


async def test_a_chat_kept_open_lets_its_oldest_turns_go_and_brings_them_back(tiny_gguf: Path) -> None:
    # Every mounted turn is laid out again each time the log changes: a chat kept open for
    # hundreds of turns made each reply cost more CPU than the one before, and the app grew.
    conversation = Conversation(title="kept open")
    for i in range(50):
        conversation.messages.append(Message("user", f"question {i}"))
        conversation.messages.append(Message("assistant", f"answer {i}"))
    with ChatStore.open(default_store_path()) as store:
        store.create_conversation(conversation)
    app = LollmaApp(StartupOptions(load=LoadSettings(model=str(tiny_gguf), n_ctx=8192), sampling=SHORT))
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        chat_log = main.chat_log
        for pages in (2, 3):  # the reader scrolls up two pages, then sends from there
            chat_log.scroll_home(animate=False)
            await wait_until(pilot, lambda n=pages: len(chat_log.turns()) == n * TAIL_MESSAGES)
            await wait_until(pilot, lambda: chat_log.scroll_y > 0)
        assert len(chat_log.turns()) == 3 * TAIL_MESSAGES
        await chat(pilot, app, "hi")
        messages, turns = main.conversation.messages, chat_log.turns()
        assert len(messages) == 102
        assert [turn.message.id for turn in turns] == [m.id for m in messages[-TAIL_MESSAGES - 2 :]]
        assert chat_log.children[0] is turns[0]  # nothing left above what is kept
        await wait_until(pilot, lambda: chat_log.is_vertical_scroll_end)  # the reply is in view
        # Scrolled up to, the turns let go come back a page at a time, in their order.
        chat_log.scroll_home(animate=False)
        await wait_until(pilot, lambda: len(chat_log.turns()) > len(turns))
        shown = [turn.message.id for turn in chat_log.turns()]
        assert shown == [m.id for m in messages[-2 * TAIL_MESSAGES - 2 :]]


async def test_keys_scroll_the_conversation_from_the_prompt_and_tab_never_loses_what_is_typed(
    tiny_gguf: Path,
) -> None:
    # Tab went to the chat log, then to the side panel: nothing on screen showed it, and what
    # was typed there went nowhere. The log was the only way to scroll without a mouse.
    conversation = Conversation(title="to scroll")
    conversation.messages += [Message("user" if i % 2 == 0 else "assistant", f"line {i}") for i in range(20)]
    app = app_on_saved(conversation, tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        chat_log = main.chat_log
        await wait_until(pilot, lambda: chat_log.max_scroll_y > 0 and chat_log.is_vertical_scroll_end)
        await pilot.press("tab", "tab")
        await pilot.press(*"hello")
        assert app.focused is main.prompt and main.prompt.text == "hello"
        end = chat_log.scroll_y
        await pilot.press("pageup")
        await wait_until(pilot, lambda: chat_log.scroll_y < end)
        assert main.prompt.text == "hello"
        await pilot.press("pagedown")
        await wait_until(pilot, lambda: chat_log.scroll_y == end)


async def test_a_search_hit_in_a_short_chat_leaves_what_follows_in_view(tiny_gguf: Path) -> None:
    # Scrolled "to the top" of a log that had nothing to scroll, the turns sat below the view,
    # and the notices shown next (/help, /rename) could not be reached.
    conversation = Conversation(title="short one")
    conversation.messages += [
        Message("user", "tell me about wombats"),
        Message("assistant", "cube droppings"),
    ]
    app = app_on_saved(conversation, tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await main.pages.reveal(main.conversation.messages[0].id)
        await pilot.pause(0.3)
        notice = await main.chat_log.add_notice("shown after the jump")
        await pilot.pause(0.3)
        log = main.chat_log
        assert log.region.y <= notice.region.y < log.region.bottom, (notice.region, log.region)


async def test_choosing_the_chat_on_screen_while_it_streams_leaves_the_reply_writing(
    ollama_server: OllamaTestServer,
) -> None:
    # The open chat is the top row of Ctrl+O, and a search hit in it is in Ctrl+F: Enter on either
    # used to open it again, which stops the reply being written.
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY)
        ollama_server.queue_reply(Script(text="a short first answer"))
        await send(pilot, app, "hello there")
        words = " ".join(f"w{i}" for i in range(40))
        ollama_server.queue_reply(Script(text=words, tokens_per_second=12))
        await pilot.press(*"tell me a long story", "enter")
        await wait_until(pilot, lambda: main.is_generating)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConversationsScreen))
        await pilot.press("ctrl+f")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press(*"hello")
        await pilot.pause(0.6)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, SearchScreen))
        await wait_until(pilot, lambda: not main.is_generating, within=30)
        reply = main.conversation.messages[-1]
        assert (reply.state, reply.content) == (ReplyState.COMPLETE, words)


async def test_a_message_of_megabytes_is_shown_in_part_and_kept_whole(tiny_gguf: Path) -> None:
    # A 4 MB log, pasted or imported: laid out whole by Rich, in time that grows faster than its
    # length, it froze the app for most of a minute.
    log = "".join(
        f"2026-12-07 10:{i % 60:02d} worker {i}: request handled in {i % 97} ms\n" for i in range(40_000)
    )
    assert len(log) > 2_000_000
    conversation = Conversation(title="a pasted log")
    conversation.messages += [Message("user", log), Message("assistant", "That is a lot of requests.")]
    app = app_on_saved(conversation, tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        assert main.conversation.messages[0].content == log  # what is sent and exported
        await wait_until(
            pilot, lambda: "more not shown here: /export writes the whole message" in screen_text(app)
        )
        assert "That is a lot of requests." in screen_text(app)


async def test_a_resumed_turn_dragged_over_with_the_mouse_is_copied(tiny_gguf: Path) -> None:
    # A turn from the history is drawn as one Rich group: a drag over it selected nothing, and
    # Ctrl+C copied nothing.
    with ChatStore.open(default_store_path()) as store:
        lighthouse_chat(store)
    app = make_app(tiny_gguf)
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        main = app.chat_screen
        await wait_until(pilot, lambda: len(main.chat_log.query(HistoryTurn)) == 2)
        question, answer = main.chat_log.query(HistoryTurn)
        # The log scrolls to its end, the panel's first sample comes: turns move until then.
        regions = None
        while regions != (question.region, answer.region):
            regions = (question.region, answer.region)
            await pilot.wait_for_scheduled_animations()
            await pilot.pause(0.3)
        await pilot.mouse_down(question, offset=(3, 1))
        await pilot.hover(answer, offset=(3, 1))
        await pilot.mouse_up(answer, offset=(3, 1))
        await pilot.pause()
        copied = app.screen.get_selected_text() or ""
        assert "how do lighthouses work" in copied and "a lamp and a lens" in copied, (
            copied,
            app.screen.selections,
            question.region,
            answer.region,
            main.chat_log.scroll_y,
        )

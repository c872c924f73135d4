"""The edges of a reply's life on the chat screen: a message sent while the last reply is still
being saved, Esc while the reply waits for the model to load or before its request has reached
the model, and quitting while a reply waits to be saved. The real `ollama` client over real HTTP
to the test server, the real history database."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from chat_app_support import notices, send, wait_ready
from ollama_server import OllamaTestServer
from pilot_support import ollama_app, wait_until
from textual.pilot import Pilot

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.export import import_json
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.paths import data_dir
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens.chat import ChatScreen
from lollma_tui.ui.widgets.chat_log import ReplyTurn


def saved_thread() -> list[Message]:
    with ChatStore.open(data_dir() / "history.db") as store:
        found = store.latest_conversation_id()
        return [] if found is None else store.load(found).conversation.messages


def saved_user_messages() -> list[str]:
    return [m.content for m in saved_thread() if m.role == "user"]


@contextlib.asynccontextmanager
async def ready_app(server: OllamaTestServer) -> AsyncIterator[tuple[LollmaApp, Pilot[None]]]:
    """The app on the test server with its model loaded; every reply is "Fine."."""
    server.set_default_reply("Fine.")
    app = ollama_app(server.host)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_ready(pilot, app)
        yield app, pilot


@contextlib.contextmanager
def history_held_by_another_writer() -> Iterator[None]:
    """Another writer (another lollma-tui, a backup) holds the history database: saves wait."""
    other = sqlite3.connect(data_dir() / "history.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.rollback()
        other.close()


async def test_a_message_sent_while_the_last_reply_is_saved_follows_it(
    ollama_server: OllamaTestServer,
) -> None:
    # The reply's last words are on screen, with its stats, a moment before it is saved; a
    # message sent in that moment (a fast typist, a script) used to be refused and put back.
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen
        # The lock below must be taken before the reply ends (0.3 s was not room enough once, on
        # a loaded CI machine).
        ollama_server.faults.first_token_delay_s = 0.6
        generations = len(ollama_server.generations)
        await pilot.press(*"hello", "enter")
        await wait_until(pilot, lambda: len(ollama_server.generations) > generations)
        with history_held_by_another_writer():  # the reply's final save waits
            turn = main.chat_log.reply_turns()[-1]
            await wait_until(pilot, lambda: "tok/s" in str(turn.footer.render()))
            assert main.is_generating, "the reply was saved with the database locked"
            await pilot.press(*"and you", "enter")
            await pilot.pause(0.3)
        states = lambda: [t.message.state for t in main.chat_log.reply_turns()]  # noqa: E731
        await wait_until(pilot, lambda: states() == [ReplyState.COMPLETE] * 2, within=10, explain=states)
        await wait_until(pilot, lambda: not main.is_generating)
        assert main.prompt.text == ""
    assert saved_user_messages() == ["hello", "and you"]


async def test_a_reply_streams_on_while_another_writer_holds_the_history(
    ollama_server: OllamaTestServer,
) -> None:
    # The reply is saved about once a second as it streams. Those saves used to be awaited in the
    # token loop: with the file locked by another writer, the text stopped for SQLite's busy
    # timeout (3 s) at every save, and the tokens/s shown fell with it.
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen
        words = " ".join(f"w{i}" for i in range(25))
        ollama_server.set_default_reply(words)
        ollama_server.faults.piece_delay_s = 0.1
        generations = len(ollama_server.generations)
        await pilot.press(*"hello", "enter")
        await wait_until(pilot, lambda: len(ollama_server.generations) > generations)
        record = ollama_server.generations[-1]
        with history_held_by_another_writer():
            await wait_until(pilot, lambda: record.done, within=20)
            turn = main.chat_log.reply_turns()[-1]
            shown = lambda: turn.message.content  # noqa: E731
            await wait_until(pilot, lambda: shown() == words, within=1.0, explain=shown)
            assert main.is_generating, "the reply was saved with the database locked"
        await wait_until(pilot, lambda: not main.is_generating, within=10)
        assert turn.message.state == ReplyState.COMPLETE
    assert [(m.content, m.state) for m in saved_thread()][-1] == (words, ReplyState.COMPLETE)


async def test_escape_while_the_model_loads_drops_the_wait_and_the_chat_goes_on(
    ollama_server: OllamaTestServer,
) -> None:
    ollama_server.set_default_reply("Fine.")
    ollama_server.faults.load_delay_s = 2.0
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press(*"hello", "enter")
        await wait_until(pilot, lambda: len(main.chat_log.reply_turns()) == 1)
        turn = main.chat_log.reply_turns()[0]
        await wait_until(pilot, lambda: "waiting for the model" in str(turn.footer.render()))
        await pilot.press("escape")
        footer = lambda: turn.footer.render()  # noqa: E731 - what a wait that ran out shows
        await wait_until(pilot, lambda: not main.is_generating, within=5, explain=footer)
        assert turn.message.state == ReplyState.STOPPED
        assert "waiting" not in str(turn.footer.render())
        ollama_server.faults.load_delay_s = 0.0
        await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY)
        await pilot.press(*"again", "enter")
        await wait_until(pilot, lambda: len(main.chat_log.reply_turns()) == 2)
        await wait_until(pilot, lambda: not main.is_generating)
        assert main.chat_log.reply_turns()[-1].message.content == "Fine."
    assert saved_user_messages() == ["hello", "again"]


async def test_a_reply_says_it_is_under_way_before_its_first_word(ollama_server: OllamaTestServer) -> None:
    # Until the first token (a long prompt, a server loading the model) the turn was a heading
    # over nothing: with the side panel hidden, no sign that anything was happening.
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen
        ollama_server.delay_first_token(2.0)
        await pilot.press(*"hello", "enter")
        await wait_until(pilot, lambda: len(main.chat_log.reply_turns()) == 1)
        turn = main.chat_log.reply_turns()[0]
        await wait_until(pilot, lambda: "reading the prompt… Esc stops" in str(turn.footer.render()))
        assert turn.message.content == ""
        await wait_until(pilot, lambda: not main.is_generating, within=10)
        assert turn.message.content == "Fine." and "reading the prompt" not in str(turn.footer.render())


async def test_a_history_file_deleted_while_open_is_made_again_with_the_chat(
    ollama_server: OllamaTestServer,
) -> None:
    # SQLite went on writing to the deleted file: no word, and after quitting `history list`
    # said "no conversations saved yet".
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen
        await send(pilot, app, "first")
        for name in ("history.db", "history.db-wal", "history.db-shm"):
            (data_dir() / name).unlink(missing_ok=True)
        await send(pilot, app, "second")
        said = [text for text in notices(app) if "was deleted while open" in text]
        assert said and "saved in it whole" in said[0]
        await send(pilot, app, "third")
        assert len(main.conversation.messages) == 6
    assert [(m.role, m.content) for m in saved_thread()] == [
        ("user", "first"),
        ("assistant", "Fine."),
        ("user", "second"),
        ("assistant", "Fine."),
        ("user", "third"),
        ("assistant", "Fine."),
    ]


async def test_a_reply_wraps_again_when_the_side_panel_or_the_drawer_comes_and_goes(
    ollama_server: OllamaTestServer,
) -> None:
    # Back at a width laid out before, Textual reused that layout and the reply kept lines
    # drawn for the other width: half of each line was cut off, or its last letters.
    ollama_server.set_default_reply(" ".join(["the quick brown fox jumps over the lazy dog"] * 12))
    app = ollama_app(ollama_server.host)
    async with app.run_test(size=(120, 32)) as pilot:
        await wait_ready(pilot, app)
        main = app.chat_screen
        turn = await send(pilot, app, "hello")
        body = turn.body

        def drawn_at_its_width() -> bool:
            lines = [body.render_line(y) for y in range(body.size.height)]
            text = " ".join(line.text.strip() for line in lines if line.text.strip())
            shown = text.count("fox") == turn.message.content.count("fox") > 3
            return shown and all(line.cell_length == body.size.width for line in lines)

        assert drawn_at_its_width()
        for keys in (("ctrl+b", "ctrl+b"), ("f2", "escape"), ("ctrl+b", "ctrl+b")):
            for key in keys:
                await pilot.press(key)
                await pilot.pause(0.2)
            await wait_until(pilot, lambda: main.prompt.has_focus)
            await pilot.pause(0.2)
            assert drawn_at_its_width(), keys


async def test_text_selected_in_a_reply_with_the_mouse_is_what_is_copied(
    ollama_server: OllamaTestServer,
) -> None:
    # A drag across a reply selected the whole widget, showed nothing, and copied its CSS name,
    # "ReplyMarkdown.reply-text".
    ollama_server.set_default_reply("alpha beta gamma delta\n\nepsilon zeta eta theta")
    app = ollama_app(ollama_server.host)
    async with app.run_test(size=(120, 32)) as pilot:
        await wait_ready(pilot, app)
        turn = await send(pilot, app, "hello")
        body = turn.body
        lines = [line.text.rstrip() for line in body.rendered_lines]
        first = next(y for y, line in enumerate(lines) if "alpha" in line)
        last = next(y for y, line in enumerate(lines) if "epsilon" in line)
        start = lines[first].index("beta")
        end = lines[last].index("zeta") + len("zeta") - 1  # the cell under the pointer is selected
        left, top = body.gutter.left, body.gutter.top  # the mouse is given the widget's outer offsets
        await pilot.mouse_down(body, offset=(left + start, top + first))
        await pilot.hover(body, offset=(left + end, top + last))
        await pilot.mouse_up(body, offset=(left + end, top + last))
        await pilot.pause()
        assert app.screen.get_selected_text() == "beta gamma delta\n\nepsilon zeta"
        # What is selected shows as selected.
        drawn = body.render_line(first)
        selected = app.screen.get_component_rich_style("screen--selection")
        marked = "".join(
            segment.text for segment in drawn if segment.style and selected.bgcolor == segment.style.bgcolor
        )
        assert marked.startswith("beta gamma delta")


async def test_escape_before_the_request_reaches_the_model_stops_the_reply(
    ollama_server: OllamaTestServer,
) -> None:
    # Esc right after Ctrl+R (or Enter) is handled before the reply's worker has sent anything:
    # the engine has nothing to cancel yet, so the stop must not depend on it. (It used to be
    # lost, and the reply then stayed "streaming" with no text for good.)
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen
        await send(pilot, app, "hello")
        generations = len(ollama_server.generations)
        await main.action_regenerate()
        await main.action_stop()
        turn = main.chat_log.reply_turns()[-1]
        state = lambda: (turn.message.state, turn.message.content)  # noqa: E731
        await wait_until(pilot, lambda: not main.is_generating, within=10, explain=state)
        assert state() == (ReplyState.STOPPED, "")
        assert len(ollama_server.generations) == generations
        # A version stopped before any text gives way to the reply it was to replace.
        assert turn not in main.chat_log.children and "stopped before any text" in notices(app)[-1]
        assert main.conversation.messages[-1].content == "Fine."
        # The chat goes on.
        assert (await send(pilot, app, "again")).message.content == "Fine."
    assert [(m.role, m.content, m.state) for m in saved_thread()] == [
        (role, text, ReplyState.COMPLETE)
        for text in ("hello", "again")
        for role, text in (("user", text), ("assistant", "Fine."))
    ]


async def test_quitting_while_a_reply_waits_to_be_saved_stops_it_and_waits_for_nothing_else(
    ollama_server: OllamaTestServer,
) -> None:
    # A regenerated reply is saved before it is written, and with the database held by another
    # writer that save waits. Quitting then must end that reply, not wait for whatever else the
    # screen is doing: here a model download of a minute.
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen
        await send(pilot, app, "hello")
        ollama_server.delay_pull_steps(5.0)
        await main.commands.run("/pull smollm2:135m")
        generations = len(ollama_server.generations)
        with history_held_by_another_writer():
            regenerating = asyncio.create_task(main.action_regenerate())
            await wait_until(pilot, lambda: main.is_generating)
            quitting = asyncio.create_task(app.action_quit())
            await asyncio.sleep(0.3)
        await asyncio.wait_for(regenerating, 5)
        await asyncio.wait_for(quitting, 5)
        assert app.return_code == 0
        assert len(ollama_server.generations) == generations
    # The stopped version is kept as a version; the thread shows the answer it was to replace.
    assert [(m.role, m.content, m.state) for m in saved_thread()] == [
        ("user", "hello", ReplyState.COMPLETE),
        ("assistant", "Fine.", ReplyState.COMPLETE),
    ]


async def test_a_chat_whose_save_met_a_locked_history_is_saved_whole_with_the_next_message(
    ollama_server: OllamaTestServer,
) -> None:
    # Another program held the history's lock for longer than the store waits (a long import, a
    # backup): "second" could not be saved. Nothing more of the chat was saved for the rest of
    # the session, so everything after "first" was lost at the next start.
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen
        await send(pilot, app, "first")
        with history_held_by_another_writer():  # longer than the store waits: the saves fail
            await send(pilot, app, "second")
        assert any("saved with your next message" in text for text in notices(app))
        assert [(m.role, m.content) for m in saved_thread()] == [("user", "first"), ("assistant", "Fine.")]
        # The lock is gone: "third" saves what was missed, in its place, then itself.
        await send(pilot, app, "third")
        assert any("History is saved again" in text for text in notices(app))
        assert [m.content for m in main.conversation.messages if m.role == "user"] == [
            "first",
            "second",
            "third",
        ]
        # A new conversation is saved as usual.
        await pilot.press("ctrl+n")
        await send(pilot, app, "fourth")
    with ChatStore.open(data_dir() / "history.db") as store:
        [newest, older] = store.list_conversations()
        thread = store.load(older.id).conversation.messages
        assert store.load(newest.id).conversation.messages[0].content == "fourth"
    assert [(m.role, m.content, m.state) for m in thread] == [
        (role, text, ReplyState.COMPLETE)
        for text in ("first", "second", "third")
        for role, text in (("user", text), ("assistant", "Fine."))
    ]


async def test_a_regenerate_or_edit_that_met_a_locked_history_is_saved_on_its_branch_later(
    ollama_server: OllamaTestServer,
) -> None:
    # The catch-up saved only a thread that continued the stored one: after Ctrl+R or /edit
    # the stored one ends in the old version, so nothing was ever saved again, while the app
    # had said "saved with your next message". A restart brought back the chat as it was.
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen

        def on_screen() -> list[str]:
            return [m.id for m in main.conversation.messages]

        await send(pilot, app, "first")
        old_reply = main.conversation.messages[1].id
        with history_held_by_another_writer():
            await pilot.press("ctrl+r")
            await wait_until(pilot, lambda: on_screen()[1] != old_reply and not main.is_generating)
        assert any("saved with your next message" in text for text in notices(app))
        await send(pilot, app, "second")
        assert any("History is saved again" in text for text in notices(app))
        assert [m.id for m in saved_thread()] == on_screen()
        with history_held_by_another_writer():
            main.prompt.set_text("/edit")
            await pilot.press("enter")
            await wait_until(pilot, lambda: main.prompt.text == "second")
            await pilot.press("ctrl+a", *"edited ", "enter")
            await wait_until(pilot, lambda: main.conversation.messages[2].content == "edited second")
            await wait_until(pilot, lambda: len(on_screen()) == 4 and not main.is_generating)
        await send(pilot, app, "third")
        shown = on_screen()
    assert [m.id for m in saved_thread()] == shown and len(shown) == 6
    with ChatStore.open(data_dir() / "history.db") as store:
        assert old_reply in store.siblings(shown[1])  # the replaced version is kept beside it
        assert len(store.siblings(shown[2])) == 2  # and the message before its edit


async def test_a_regenerate_that_fails_gives_way_to_the_reply_it_replaced(
    ollama_server: OllamaTestServer,
) -> None:
    # A Ctrl+R that failed showed only its error, as the newest version: the answer the user
    # had read was hidden, and the next message went out without it ("q1\n\nq2").
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen
        await send(pilot, app, "q1")
        answer = main.conversation.messages[1]
        ollama_server.faults.stream_errors.append((0, "the GPU fell off the bus"))
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "the GPU fell off the bus" in notices(app)[-1])
        assert "shown again" in notices(app)[-1]
        await wait_until(pilot, lambda: not main.is_generating)
        assert main.conversation.messages == [main.conversation.messages[0], answer]
        assert main.chat_log.turn_for(answer.id) is not None and len(main.chat_log.turns()) == 2
        main.prompt.set_text("/version")
        await pilot.press("enter")
        await wait_until(pilot, lambda: notices(app)[-1].startswith("The last reply is version 1 of 2"))
        await send(pilot, app, "q2")
        asked = ollama_server.generations[-1].messages
        sent = [(m["role"], m["content"]) for m in asked if m["role"] != "system"]
        assert sent == [("user", "q1"), ("assistant", "Fine."), ("user", "q2")]
    thread = saved_thread()
    assert thread[1].id == answer.id and [m.content for m in thread] == ["q1", "Fine.", "q2", "Fine."]


async def test_export_of_a_chat_the_history_could_not_save_writes_what_is_on_screen(
    ollama_server: OllamaTestServer, tmp_path: Path
) -> None:
    # Export is how a user keeps a chat the history could not save: it wrote only the turns
    # saved before the failure (and said "Exported"), or nothing when the first save failed.
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen

        async def export(kind: str, name: str) -> str:
            before = len(notices(app))
            main.prompt.set_text(f"/export {kind} {tmp_path / name}")
            await pilot.press("enter")
            await wait_until(pilot, lambda: len(notices(app)) > before)
            return notices(app)[-1]

        with history_held_by_another_writer():
            await send(pilot, app, "never saved")
        assert "as shown here" in await export("md", "first.md")
        assert (
            "## You" in (tmp_path / "first.md").read_text()
            and "never saved" in (tmp_path / "first.md").read_text()
        )
        await send(pilot, app, "saved again")
        with history_held_by_another_writer():
            await send(pilot, app, "left out")
            said = await export("md", "rescue.md")
            assert "as shown here" in said and "rescue.md" in said
            assert await export("json", "rescue.json")
        text = (tmp_path / "rescue.md").read_text()
        assert all(words in text for words in ("never saved", "saved again", "left out")), text
        # The JSON file imports back as the whole chat.
        with ChatStore.open(tmp_path / "other.db") as store:
            imported = import_json(store, tmp_path / "rescue.json")
            thread = store.load(imported).conversation.messages
        assert [m.content for m in thread] == [m.content for m in main.conversation.messages]
        assert len(thread) == 6
        # Leaving it for a new chat would lose what is not saved: the first Ctrl+N says so.
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: "not all in the history" in notices(app)[-1])
        assert len(main.conversation.messages) == 6
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: not main.conversation.messages)


async def test_quitting_a_chat_the_history_could_not_save_warns_once(ollama_server: OllamaTestServer) -> None:
    # Ctrl+Q (or /quit) ended the app at once, losing the turns the history could not save,
    # though leaving the same chat for a new one was warned about.
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen
        await send(pilot, app, "kept on screen only")
        with history_held_by_another_writer():
            await send(pilot, app, "never saved")
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: "quitting loses" in notices(app)[-1])
        await pilot.pause(0.2)
        assert app.return_code is None and app.is_running
        assert len(main.conversation.messages) == 4
        # From another screen the chat log is out of view: the warning is a toast there.
        await pilot.press("f1")
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
        assert app.return_code is not None  # asked again: it quits

    ollama_server.set_default_reply("Fine.")
    app = ollama_app(ollama_server.host)
    async with app.run_test(size=(100, 32), notifications=True) as pilot:
        await wait_ready(pilot, app)
        with history_held_by_another_writer():
            await send(pilot, app, "never saved either")
        await pilot.press("f1")
        await pilot.press("ctrl+q")
        await wait_until(
            pilot, lambda: any("quitting loses" in str(toast.render()) for toast in app.screen.query("Toast"))
        )
        assert app.return_code is None


async def test_a_chat_created_while_the_history_is_locked_is_saved_with_the_next_message(
    ollama_server: OllamaTestServer,
) -> None:
    # The first message of a chat creates it in the history: with the file locked, the chat
    # was never created and went on unsaved to the end.
    async with ready_app(ollama_server) as (app, pilot):
        with history_held_by_another_writer():
            await send(pilot, app, "first")
        await send(pilot, app, "second")
    assert [(m.role, m.content) for m in saved_thread()] == [
        ("user", "first"),
        ("assistant", "Fine."),
        ("user", "second"),
        ("assistant", "Fine."),
    ]


async def test_escape_in_the_open_drawer_stops_the_reply_before_it_closes_the_drawer(
    ollama_server: OllamaTestServer,
) -> None:
    # The drawer's own Esc closed it while a reply was being written, which went on: Esc stops
    # a reply wherever the focus is, and closes the drawer only when none is being written.
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen
        ollama_server.set_default_reply(" ".join(f"w{i}" for i in range(200)))
        ollama_server.faults.piece_delay_s = 0.05
        await pilot.press(*"hello", "enter")
        turn = await wait_for_turn(pilot, main)
        await pilot.press("f2")
        drawer = main.settings_drawer
        await wait_until(pilot, lambda: drawer is not None and drawer.is_open and drawer.has_focus_within)
        assert main.is_generating
        await pilot.press("escape")
        await wait_until(pilot, lambda: not main.is_generating, within=10)
        assert turn.message.state == ReplyState.STOPPED
        assert drawer is not None and drawer.is_open
        await pilot.press("escape")
        await wait_until(pilot, lambda: not drawer.is_open)


async def wait_for_turn(pilot: Pilot[None], main: ChatScreen) -> ReplyTurn:
    await wait_until(pilot, lambda: bool(main.chat_log.reply_turns()) and main.is_generating)
    return main.chat_log.reply_turns()[-1]


async def test_a_reply_on_screen_takes_the_new_theme_s_colours(ollama_server: OllamaTestServer) -> None:
    # After /theme, user turns changed colour and reply bodies kept the old theme's until a
    # resize: their drawn lines were kept, as nothing asked for a new layout.
    async with ready_app(ollama_server) as (app, pilot):
        main = app.chat_screen
        await send(pilot, app, "hello")
        body = main.chat_log.reply_turns()[-1].body

        def text_colour() -> object:
            # None while the body's lines are being drawn again (the reply's final render).
            for y in range(body.rows):
                line = body.render_line(y)
                if line.text.strip():
                    return next((seg.style.color for seg in line if seg.text.strip() and seg.style), None)
            return None

        await wait_until(pilot, lambda: text_colour() is not None)
        before = text_colour()
        app.theme = "lollma-light"
        await wait_until(pilot, lambda: text_colour() not in (None, before), within=5, explain=text_colour)

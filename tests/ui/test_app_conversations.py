"""Conversation features in the app: edit and resend, continue, copy, export and import,
the conversation list and search, and the context overflow choice."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from history_support import lighthouse_chat
from pilot_support import wait_until
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.chat.conversation import Message, ReplyState, reply_end_note
from lollma_tui.core.chat.opening import default_store_path
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.settings import LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens.context_overflow import ContextOverflowScreen
from lollma_tui.ui.screens.conversations import ConversationsScreen
from lollma_tui.ui.screens.search import SearchScreen
from lollma_tui.ui.widgets.chat_log import HistoryTurn, Notice, ReplyTurn

SHORT = SamplingSettings(temperature=0.0, repeat_penalty=1.0, max_tokens=10)


def make_app(model: Path, sampling: SamplingSettings = SHORT, n_ctx: int = 1024) -> LollmaApp:
    return LollmaApp(StartupOptions(load=LoadSettings(model=str(model), n_ctx=n_ctx), sampling=sampling))


async def started(pilot: Pilot[None], app: LollmaApp) -> None:
    main = app.chat_screen
    await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY)
    await wait_until(pilot, lambda: main.history.store is not None)
    await app.workers.wait_for_complete([w for w in app.workers if w.group == "history-open"])


async def searched(pilot: Pilot[None], app: LollmaApp, text: str) -> None:
    """Ctrl+F, `text` typed, and its hits listed."""
    await pilot.press("ctrl+f")
    await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
    await pilot.press(*text)
    await pilot.pause(0.6)


async def type_enter(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text, "enter")
    await pilot.pause()


async def chat(pilot: Pilot[None], app: LollmaApp, text: str) -> None:
    main = app.chat_screen
    count = len(main.conversation.messages)
    await type_enter(pilot, text)
    await wait_until(
        pilot,
        lambda: len(main.conversation.messages) >= count + 2 and not main.is_generating,
    )


def notices(app: LollmaApp) -> list[str]:
    main = app.chat_screen
    return [str(n.render()) for n in main.chat_log.query(Notice)]


def stored_thread(conversation_id: str) -> list[Message]:
    with ChatStore.open(default_store_path()) as store:
        return store.load(conversation_id).conversation.messages


async def test_edit_and_resend_replaces_later_turns_and_keeps_the_old_branch(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "one")
        await chat(pilot, app, "two")
        original = main.conversation.messages[2]
        await type_enter(pilot, "/edit")
        assert main.prompt.text == "two"
        await pilot.press("ctrl+a")  # to the start of the line; then type over the old text
        await pilot.press(*"edited ", "enter")
        await wait_until(
            pilot,
            lambda: len(main.conversation.messages) == 4 and not main.is_generating,
        )
        assert [m.content for m in main.conversation.messages if m.role == "user"] == [
            "one",
            "edited two",
        ]
        assert main.chat_log.turn_for(original.id) is None
        conversation_id = main.conversation.id
        new_id = main.conversation.messages[2].id
    with ChatStore.open(default_store_path()) as store:
        assert store.siblings(new_id) == [original.id, new_id]
    assert [m.content for m in stored_thread(conversation_id) if m.role == "user"] == ["one", "edited two"]


async def test_editing_a_message_that_starts_with_a_slash_resends_it_as_a_message(tiny_gguf: Path) -> None:
    # Sent as "//etc/hosts…" it was saved as "/etc/hosts…", and /edit put that back as typed:
    # Enter then ran it as an unknown command and the text was gone.
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "//etc/hosts is a file")
        await type_enter(pilot, "/edit")
        assert main.prompt.text == "//etc/hosts is a file"
        await pilot.press("end", *" too", "enter")
        await wait_until(pilot, lambda: len(main.conversation.messages) == 2 and not main.is_generating)
        assert main.conversation.messages[0].content == "/etc/hosts is a file too"
        assert main.editing is None


async def test_an_edit_not_sent_says_so_and_esc_drops_it(tiny_gguf: Path) -> None:
    # Nothing showed it, and nothing but sending ended it: the next message, whatever it was,
    # replaced "two" and what followed.
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "one")
        await chat(pilot, app, "two")
        await type_enter(pilot, "/edit")
        assert "editing your last message" in str(main.prompt.border_title)
        await pilot.press("ctrl+a", "ctrl+k", "escape")
        await pilot.pause()
        assert main.editing is None and not main.prompt.border_title
        await chat(pilot, app, "three")
        assert [m.content for m in main.conversation.messages if m.role == "user"] == ["one", "two", "three"]


@pytest.mark.parametrize("again", ["ctrl+r", "/regen"])
async def test_a_reply_written_again_drops_an_edit_begun(again: str, tiny_gguf: Path) -> None:
    # The edit outlived Ctrl+R: the follow-up sent next replaced the question and its new reply.
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "one")
        await type_enter(pilot, "/edit")
        assert main.editing is not None
        main.prompt.clear()
        if again == "ctrl+r":
            await pilot.press("ctrl+r")
        else:
            await type_enter(pilot, again)
        await wait_until(pilot, lambda: main.editing is None)
        await wait_until(pilot, lambda: not main.is_generating)
        assert not main.prompt.border_title
        await chat(pilot, app, "and then?")
        assert [m.content for m in main.conversation.messages if m.role == "user"] == ["one", "and then?"]


def heading(turn: object) -> str:
    """The first line a reply's turn shows: its set-up heading (a live turn or one from history)."""
    assert isinstance(turn, ReplyTurn | HistoryTurn), turn
    if isinstance(turn, ReplyTurn):
        return str(turn.query_one(".turn-label", Static).render())
    label = turn.render().renderables[0]  # type: ignore[union-attr]
    assert isinstance(label, Text)
    return label.plain


async def regenerate(pilot: Pilot[None], app: LollmaApp) -> None:
    """Ctrl+R, and wait until the new version of the last reply is written."""
    main = app.chat_screen
    before = main.conversation.messages[-1].id
    await pilot.press("ctrl+r")
    await wait_until(pilot, lambda: main.conversation.messages[-1].id != before and not main.is_generating)


async def test_a_long_heading_wraps_so_the_version_stays_readable(tiny_gguf: Path) -> None:
    # A narrow terminal (or a long model name): the set-up heading runs over one line, and the
    # "version 2 of 2" at its end must not be cut off.
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(44, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "one")
        await regenerate(pilot, app)
        turn = main.chat_log.turn_for(main.conversation.messages[-1].id)
        await wait_until(pilot, lambda: heading(turn).endswith(" · version 2 of 2"))
        await pilot.pause()
        assert isinstance(turn, ReplyTurn)
        label = turn.query_one(".turn-label", Static)
        assert len(heading(turn)) > label.size.width  # it does need more than one line here
        assert label.size.height * label.size.width >= len(heading(turn)), label.size


async def test_version_shows_a_regenerated_replys_earlier_version_and_back(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "one")
        first = main.conversation.messages[-1]
        assert "version" not in heading(main.chat_log.turn_for(first.id))
        await type_enter(pilot, "/version")
        await wait_until(
            pilot, lambda: "The last reply is version 1 of 1 · Ctrl+R writes another." in notices(app)
        )
        await regenerate(pilot, app)
        second = main.conversation.messages[-1]
        # The heading says there is another version, without asking.
        await wait_until(
            pilot, lambda: heading(main.chat_log.turn_for(second.id)).endswith(" · version 2 of 2")
        )
        await type_enter(pilot, "/version")
        await wait_until(
            pilot, lambda: any(n.startswith("The last reply is version 2 of 2") for n in notices(app))
        )

        await type_enter(pilot, "/version prev")
        await wait_until(pilot, lambda: main.conversation.messages[-1].id == first.id)
        assert main.chat_log.turn_for(first.id) is not None and main.chat_log.turn_for(second.id) is None
        await wait_until(
            pilot, lambda: heading(main.chat_log.turn_for(first.id)).endswith(" · version 1 of 2")
        )
        await wait_until(
            pilot, lambda: any("Showing version 1 of 2 of the last reply" in n for n in notices(app))
        )
        # Only the reply changed: what the log said before stays, and nothing was "resumed".
        assert "The last reply is version 1 of 1 · Ctrl+R writes another." in notices(app)
        assert not any(n.startswith("Resumed") for n in notices(app))
        assert list(main.chat_log.turns())[-1].message.id == first.id
        conversation_id = main.conversation.id
        # The store shows that branch from now on: a restart opens it too.
        assert stored_thread(conversation_id)[-1].id == first.id

        await type_enter(pilot, "/version 3")
        await wait_until(
            pilot, lambda: "✗ There is no such version: the last reply has 2 versions." in notices(app)
        )
        # A digit int() does not read is a usage error, not the end of the app.
        await type_enter(pilot, "/version ²")
        await wait_until(pilot, lambda: "✗ Usage: /version [N|prev|next]" in notices(app))
        await type_enter(pilot, "/version next")
        await wait_until(pilot, lambda: main.conversation.messages[-1].id == second.id)
        assert [m.role for m in main.conversation.messages] == ["user", "assistant"]


async def test_continue_appends_to_a_reply_cut_at_the_limit(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf, sampling=SHORT.with_changes(max_tokens=6))
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "tell me about the cache")
        reply = main.conversation.messages[-1]
        assert reply.state == ReplyState.LENGTH
        before, first = reply.content, reply.stats
        assert first is not None and first.gen_tokens == 6
        await type_enter(pilot, "/continue")
        await wait_until(pilot, lambda: not main.is_generating and reply.state != ReplyState.STREAMING)
        assert len(main.conversation.messages) == 2  # the same reply grew; no new turn
        assert reply.content.startswith(before) and len(reply.content) > len(before)
        # The figures are the whole reply's: they were the continuation's alone ("6 tokens").
        whole = reply.stats
        assert whole is not None and whole.gen_tokens == 12 and whole.total_s > first.total_s
        assert (whole.prompt_tokens, whole.ttft_s) == (first.prompt_tokens, first.ttft_s)
        assert whole.gen_tps is not None and whole.gen_tps > 0
        conversation_id = main.conversation.id
    (saved_reply,) = [m for m in stored_thread(conversation_id) if m.role == "assistant"]
    assert saved_reply.content == reply.content and saved_reply.stats == whole


async def test_continue_on_a_reply_that_filled_the_context_says_so_and_keeps_it(tiny_gguf: Path) -> None:
    # It was sent again, failed at once, and the reply was relabelled "stopped" for good.
    app = make_app(tiny_gguf, sampling=SHORT.with_changes(max_tokens=None), n_ctx=64)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "hi")
        reply = main.conversation.messages[-1]
        n_ctx = main.models.loaded.n_ctx  # type: ignore[union-attr]  # llama.cpp's least, 256
        assert f"cut at the context limit ({n_ctx} tokens)" == reply_end_note(reply.state, reply.stats)
        before = reply.content
        await type_enter(pilot, "/continue")
        await wait_until(pilot, lambda: f"fills the model's context ({n_ctx} tokens)" in notices(app)[-1])
        assert not main.is_generating
        assert (reply.state, reply.content) == (ReplyState.LENGTH, before)


async def test_copy_sends_osc52_and_saves_a_file(tiny_gguf: Path, tmp_path: Path) -> None:
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "hello")
        written: list[str] = []
        driver = app._driver
        assert driver is not None
        original_write = driver.write
        driver.write = lambda data: (written.append(data), original_write(data))[1]  # type: ignore[method-assign]
        reply = main.conversation.messages[-1].content
        # Give the reply a code block to copy on its own.
        main.conversation.messages[-1].content = reply + "\n\n```python\nprint('hi')\n```\n"
        await type_enter(pilot, "/copy code 1")
        sequences = [w for w in written if w.startswith("\x1b]52;c;")]
        assert sequences, written
        copied = base64.b64decode(sequences[-1][len("\x1b]52;c;") : -1]).decode()
        assert copied == "print('hi')"
        await pilot.press("f3")
        await pilot.pause()
        copied = base64.b64decode([w for w in written if w.startswith("\x1b]52;c;")][-1][7:-1]).decode()
        assert copied == main.conversation.messages[-1].content
        saved = Path(notices(app)[-1].split("also in ")[1].rstrip("."))
        assert saved.read_text() == copied
        # Where the file cannot be written (a full disk, a folder in its place), the copy still
        # happened and the app goes on; it ended on the OSError.
        saved.unlink()
        saved.mkdir()
        await type_enter(pilot, "/copy")
        await wait_until(pilot, lambda: "could not also be saved" in notices(app)[-1])
        assert notices(app)[-1].startswith("! Copied the last reply")
        assert app.is_running


async def test_export_and_import_round_trip(tiny_gguf: Path, tmp_path: Path) -> None:
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "export me")
        await type_enter(pilot, f"/export json {tmp_path / 'main.json'}")
        await type_enter(pilot, f"/export md {tmp_path / 'main.md'}")
        await wait_until(pilot, lambda: (tmp_path / "main.md").exists())
        document = json.loads((tmp_path / "main.json").read_text())
        assert "export me" in json.dumps(document)
        markdown = (tmp_path / "main.md").read_text()
        assert "export me" in markdown and "tok/s" in markdown
        original_id = main.conversation.id
        await type_enter(pilot, f"/import {tmp_path / 'main.json'}")
        await wait_until(pilot, lambda: main.conversation.id != original_id)
        assert main.conversation.messages[0].content == "export me"
        # It is still in the history: the app said nothing of a copy, the command line did.
        copied = "as a copy (its ids were already in the history)"
        assert notices(app)[-1].startswith(f"Imported “export me” from {tmp_path / 'main.json'} {copied} · ")
        (tmp_path / "bad.json").write_text('{"format": "nope"}')
        with ChatStore.open(default_store_path()) as store:
            before = store.count_conversations()
        await type_enter(pilot, f"/import {tmp_path / 'bad.json'}")
        await wait_until(pilot, lambda: "Import failed" in notices(app)[-1])
        with ChatStore.open(default_store_path()) as store:
            assert store.count_conversations() == before


async def test_export_takes_quoted_paths_new_folders_and_titles_in_any_script(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "export me")
        # A terminal puts quotes around a dropped file: they were taken as part of its name.
        await type_enter(pilot, f'/export json "{tmp_path / "my notes.json"}"')
        await wait_until(pilot, lambda: (tmp_path / "my notes.json").exists())
        original_id = main.conversation.id
        await type_enter(pilot, f"/import '{tmp_path / 'my notes.json'}'")
        await wait_until(pilot, lambda: main.conversation.id != original_id)
        # A title in Cyrillic was named "conversation.md", as every other non-Latin one was; a
        # folder named with a trailing / that is not there yet became a file called "new".
        await type_enter(pilot, "/rename Привет мир")
        await type_enter(pilot, f"/export md {tmp_path / 'new'}/")
        await wait_until(pilot, lambda: (tmp_path / "new" / "привет-мир.md").exists())
        # `~typo/` (meant `~/`) made a folder named `~typo` in the working folder.
        monkeypatch.chdir(tmp_path)
        await type_enter(pilot, "/export md ~no-such-user-here/x.md")
        await wait_until(pilot, lambda: "Export failed" in notices(app)[-1])
        assert "no user named 'no-such-user-here'" in notices(app)[-1]
        await type_enter(pilot, "/import ~no-such-user-here/x.json")
        await wait_until(pilot, lambda: "Import failed" in notices(app)[-1])
        assert notices(app)[-1].endswith(
            "~no-such-user-here/x.json: no user named 'no-such-user-here' for ~no-such-user-here"
        )
        assert not (tmp_path / "~no-such-user-here").exists()


async def test_conversation_list_and_search_open_other_conversations(tiny_gguf: Path) -> None:
    with ChatStore.open(default_store_path()) as store:
        old = lighthouse_chat(store)
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await type_enter(pilot, "/clear")
        await chat(pilot, app, "a newer conversation")
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        await pilot.pause(0.3)
        await pilot.press("down", "enter")  # the list is newest first: the second is the old one
        await wait_until(pilot, lambda: main.conversation.id == old.id)
        assert [m.content for m in main.conversation.messages] == [
            "how do lighthouses work",
            "a lamp and a lens",
        ]
        await type_enter(pilot, "/clear")
        await searched(pilot, app, "lens")
        await pilot.press("enter")
        await wait_until(pilot, lambda: main.conversation.id == old.id)
        assert main.chat_log.turn_for(old.messages[1].id) is not None


async def test_a_message_that_would_overflow_the_context_asks_first(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf, sampling=SHORT.with_changes(max_tokens=16), n_ctx=256)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "the model " * 8)
        await chat(pilot, app, "the cache " * 8)
        await wait_until(pilot, lambda: main.model_card.context is not None)
        used = main.model_card.context.used  # type: ignore[union-attr]
        long_message = "quant layer memory " * 4
        await pilot.press(*long_message, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ContextOverflowScreen))
        # The question counts the conversation so far, the message and room for the reply.
        question = str(app.screen.query_one("#overflow-question").render())
        found = re.search(
            r"\(([\d,]+) of 256 tokens, ([\d,]+) too many\)\. The conversation so far takes ([\d,]+)\.",
            question,
        )
        assert found is not None, question
        total, over, so_far = (int(group.replace(",", "")) for group in found.groups())
        assert so_far == used and total > used and over == total - 256
        await pilot.press("c")  # cancel: nothing is sent, the text comes back
        await wait_until(pilot, lambda: not isinstance(app.screen, ContextOverflowScreen))
        assert main.prompt.text == long_message
        assert len(main.conversation.messages) == 4
        main.prompt.clear()
        # A message typed as "//…" comes back as typed: it came back as a command.
        await pilot.press(*f"//{long_message}", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ContextOverflowScreen))
        await pilot.press("c")
        await wait_until(pilot, lambda: not isinstance(app.screen, ContextOverflowScreen))
        assert main.prompt.text == f"//{long_message}"
        main.prompt.clear()
        await pilot.press(*long_message, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ContextOverflowScreen))
        await pilot.press("t")  # truncate: the oldest turns are left out, then it is sent
        await wait_until(
            pilot,
            lambda: len(main.conversation.messages) == 6 and not main.is_generating,
        )
        assert main.conversation.context_from >= 2
        assert main.conversation.messages[main.conversation.context_from].role == "user"
        reply = main.conversation.messages[-1]
        assert reply.state in (ReplyState.COMPLETE, ReplyState.LENGTH)
        assert len(main.conversation.messages) == 6  # nothing was deleted from the conversation
        # A larger context holds it all: what was left out is sent again (it stayed left out).
        await type_enter(pilot, "/ctx 2048")
        await wait_until(pilot, lambda: main.models.ready and main.models.loaded.n_ctx == 2048)  # type: ignore[union-attr]
        await chat(pilot, app, "and now?")
        assert main.conversation.context_from == 0
        assert "The whole conversation fits the context now" in " ".join(notices(app))
        last = main.conversation.messages[-1]
        assert last.stats is not None and last.stats.prompt_tokens is not None
        assert last.stats.prompt_tokens > used  # every turn was in the prompt


async def test_an_edit_or_a_regenerate_that_no_longer_fits_the_context_is_refused(tiny_gguf: Path) -> None:
    # After a smaller /ctx, Ctrl+R made a new version that was only llama.cpp's "exceed context
    # window" error, hiding the good reply; an edit lengthened past the context was sent the same.
    app = make_app(tiny_gguf, sampling=SHORT.with_changes(max_tokens=16), n_ctx=4096)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        main.prompt.set_text("the model the cache " * 60)  # pasted
        await chat(pilot, app, "")
        reply = main.conversation.messages[-1]
        assert reply.stats is not None and (reply.stats.prompt_tokens or 0) > 256
        await type_enter(pilot, "/ctx 256")
        await wait_until(pilot, lambda: main.models.ready and main.models.loaded.n_ctx == 256)  # type: ignore[union-attr]
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "would not fit the model's context" in notices(app)[-1])
        assert main.conversation.messages[-1] is reply and not main.is_generating
        await type_enter(pilot, "/edit")
        await pilot.press("end", *" more", "enter")
        await wait_until(pilot, lambda: sum("would not fit" in text for text in notices(app)) == 2)
        assert main.conversation.messages[-1] is reply and not main.is_generating
        assert main.editing is not None and main.prompt.text.endswith("the cache  more")


async def test_leaving_out_turns_is_not_offered_when_the_message_alone_does_not_fit(tiny_gguf: Path) -> None:
    # It was offered while there were earlier turns: they were left out, and the message was
    # sent anyway, for the backend's "exceed context window" error.
    app = make_app(tiny_gguf, sampling=SHORT.with_changes(max_tokens=16), n_ctx=256)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "the model")
        main.prompt.set_text("the model the cache " * 15)  # pasted
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ContextOverflowScreen))
        choices = app.screen.query_one("#overflow-choices", OptionList)
        truncate = choices.get_option("truncate")
        assert truncate.disabled and "nothing earlier to leave out" in str(truncate.prompt)
        await pilot.press("t")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ContextOverflowScreen) and main.conversation.context_from == 0
        await pilot.press("c")
        await wait_until(pilot, lambda: not isinstance(app.screen, ContextOverflowScreen))
        assert len(main.conversation.messages) == 2


async def test_an_edit_or_a_regenerate_that_overflows_may_leave_out_the_oldest_turns(tiny_gguf: Path) -> None:
    # Refused outright, Ctrl+R and /edit could not be used at all in a long chat after a smaller
    # /ctx, or after a restart (the turns left out before are sent again): "/ctx with more, or
    # Ctrl+N", though leaving out the oldest turns, as a new message may, makes it fit.
    app = make_app(tiny_gguf, sampling=SHORT.with_changes(max_tokens=16), n_ctx=4096)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        for words in ("the model the cache ", "quant layer memory ", "the cache the model "):
            main.prompt.set_text(words * 5)  # pasted
            await chat(pilot, app, "")
        await type_enter(pilot, "/ctx 256")
        await wait_until(pilot, lambda: main.models.ready and main.models.loaded.n_ctx == 256)  # type: ignore[union-attr]
        before = list(main.conversation.messages)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, ContextOverflowScreen))
        question = str(app.screen.query_one("#overflow-question").render())
        assert question.startswith("Writing the reply again would overflow the model's context"), question
        await pilot.press("n")  # a new conversation is no answer: the turn is in this one
        await pilot.pause(0.2)
        assert isinstance(app.screen, ContextOverflowScreen)
        await pilot.press("c")
        await wait_until(pilot, lambda: not isinstance(app.screen, ContextOverflowScreen))
        assert main.conversation.messages == before and not main.is_generating
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, ContextOverflowScreen))
        await pilot.press("t")
        await wait_until(
            pilot,
            lambda: main.conversation.messages[-1] is not before[-1] and not main.is_generating,
            explain=lambda: (notices(app), [w for w in main.workers], main.conversation.messages[-1]),
        )
        reply = main.conversation.messages[-1]
        assert reply.state in (ReplyState.COMPLETE, ReplyState.LENGTH), reply.error
        assert reply.stats is not None and reply.stats.prompt_tokens is not None
        assert reply.stats.prompt_tokens + 16 <= 256
        assert main.conversation.context_from >= 2 and len(main.conversation.messages) == 6
        # An edit of an early turn leaves out what is before it, as far as it must.
        main.conversation.context_from = 0
        await type_enter(pilot, "/edit")
        await pilot.press("end", *" again", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ContextOverflowScreen))
        question = str(app.screen.query_one("#overflow-question").render())
        assert question.startswith("The edited message would overflow"), question
        await pilot.press("t")
        await wait_until(
            pilot, lambda: main.conversation.messages[-2].content.endswith("again") and not main.is_generating
        )
        reply = main.conversation.messages[-1]
        assert reply.state in (ReplyState.COMPLETE, ReplyState.LENGTH), reply.error
        assert main.editing is None and main.conversation.context_from >= 2
        assert reply.stats is not None and (reply.stats.prompt_tokens or 0) + 16 <= 256


async def test_leaving_out_the_oldest_turns_makes_room_for_the_system_prompt_too(tiny_gguf: Path) -> None:
    options = StartupOptions(
        load=LoadSettings(model=str(tiny_gguf), n_ctx=512),
        sampling=SHORT.with_changes(max_tokens=16),
        system_prompt="the model the cache " * 4,
    )
    app = LollmaApp(options)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await chat(pilot, app, "the model " * 8)
        await chat(pilot, app, "the cache " * 8)
        await pilot.press(*"quant layer memory " * 4, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ContextOverflowScreen))
        await pilot.press("t")
        await wait_until(pilot, lambda: len(main.conversation.messages) == 6 and not main.is_generating)
        reply = main.conversation.messages[-1]
        # Left out as far as the system prompt needs too: the prompt and the reply fit.
        assert reply.state in (ReplyState.COMPLETE, ReplyState.LENGTH), reply.error
        assert reply.stats is not None and reply.stats.prompt_tokens is not None
        assert reply.stats.prompt_tokens + 16 <= 512


async def test_a_search_hit_whose_chat_was_deleted_meanwhile_says_so(tiny_gguf: Path) -> None:
    # Deleted from elsewhere (`history delete`, another lollma-tui) while the hit was listed:
    # Enter said only "no message cce38842…".
    with ChatStore.open(default_store_path()) as store:
        old = lighthouse_chat(store)
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        await type_enter(pilot, "/clear")
        await searched(pilot, app, "lens")
        with ChatStore.open(default_store_path()) as store:
            store.delete_conversation(old.id)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: "✗ That message is gone: its conversation was deleted." in notices(app)
        )
        assert main.conversation.id != old.id


async def test_a_saved_chat_keeps_its_own_system_prompt_whatever_system_says(tiny_gguf: Path) -> None:
    # `/system off`, quit, start again with --system (a shell alias): the chat had it back, and
    # it was sent again.
    with ChatStore.open(default_store_path()) as store:
        old = lighthouse_chat(store)  # saved with no system prompt
    options = StartupOptions(
        load=LoadSettings(model=str(tiny_gguf), n_ctx=1024),
        sampling=SHORT,
        system_prompt="Talk like a pirate.",
    )
    app = LollmaApp(options)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await started(pilot, app)
        assert main.conversation.id == old.id
        assert main.conversation.system_prompt == ""
        assert main.conversation.history()[0].role == "user"
        # A new chat is the flag's.
        await type_enter(pilot, "/clear")
        await wait_until(pilot, lambda: main.conversation.id != old.id)
        assert main.conversation.system_prompt == "Talk like a pirate."

"""Escape sequences and links from a model, a server or a file never steer the terminal.

Replies come from the Ollama-compatible test server through the real `ollama` client, so the
escape sequences travel as JSON's ``\\u001b`` just as a real server sends them; saved text comes
from a real export file imported with /import.
"""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from typing import Any

import pytest
from ollama_server import OllamaTestServer
from ollama_server.engines import Script
from pilot_support import ollama_app, wait_until
from terminal_output import (
    click_actions,
    click_targets,
    foreign_controls,
    hyperlinks,
    screen_output,
    screen_text,
)
from textual import events
from textual.pilot import Pilot
from textual.widgets import Collapsible, OptionList

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.chat.conversation import ReplyState
from lollma_tui.core.safe_text import safe_link
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens.conversations import ConversationsScreen
from lollma_tui.ui.screens.search import SearchScreen
from lollma_tui.ui.widgets.chat_log import ReplyTurn

CONTROLS = {chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}

REPLY_PIECES = (
    "Hello ",
    "\x1b]0;PWNED\x07",  # set the window title
    "world\r",
    "\n",  # a CRLF split across two pieces
    "\x1b[2J",  # clear the screen
    "cleared ",
    "\x1b]52;c;cHduZWQ=\x1b\\",  # write the clipboard
    "copied ",
    "\x9b2J",  # the 8-bit CSI
    "done.",
)
SHOWN_REPLY = "Hello world\ncleared copied done."  # each sequence goes whole


async def ready(pilot: Pilot[None], app: LollmaApp) -> None:
    main = app.chat_screen
    await wait_until(
        pilot, lambda: main.models.backend.status.state == BackendState.READY and main.history.is_open
    )


async def type_line(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text, "enter")


async def send(pilot: Pilot[None], app: LollmaApp, text: str) -> ReplyTurn:
    main = app.chat_screen
    before = len(main.chat_log.reply_turns())
    await type_line(pilot, text)
    await wait_until(pilot, lambda: len(main.chat_log.reply_turns()) > before)
    await wait_until(pilot, lambda: not main.is_generating)
    await pilot.pause()
    return main.chat_log.reply_turns()[-1]


def assert_terminal_safe(app: LollmaApp) -> None:
    output = screen_output(app)
    assert foreign_controls(output) == []
    assert all(safe_link(target) for target in hyperlinks(output))
    assert "app.quit" not in click_actions(app)


async def test_a_streamed_reply_reaches_screen_store_copy_and_export_without_controls(
    ollama_server: OllamaTestServer, tmp_path: Path
) -> None:
    ollama_server.queue_reply(Script(pieces=REPLY_PIECES, tokens_per_second=200))
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        turn = await send(pilot, app, "say something odd")
        assert turn.message.content == SHOWN_REPLY
        assert_terminal_safe(app)

        await type_line(pilot, "/copy")
        copy_file = tmp_path / "lollma-state" / "last-copy.txt"
        await wait_until(pilot, lambda: copy_file.exists())
        assert copy_file.read_text(encoding="utf-8") == SHOWN_REPLY
        assert app.clipboard == SHOWN_REPLY

        target = tmp_path / "odd.md"
        await type_line(pilot, f"/export md {target}")
        await wait_until(pilot, lambda: target.exists())
        exported = target.read_text(encoding="utf-8")
        assert "Hello world\ncleared" in exported and not CONTROLS & set(exported)
        # What was saved is what was shown: a later session opens the same text.
        store = main.history.store
        assert store is not None
        window = await store.run(store.store.load, main.conversation.id)
        assert window.conversation.messages[-1].content == SHOWN_REPLY


async def test_a_server_error_and_a_thinking_section_are_shown_without_controls(
    ollama_server: OllamaTestServer,
) -> None:
    app = ollama_app(ollama_server.host, model="qwen3:0.6b")
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        ollama_server.queue_reply(
            Script(text="Four.", thinking="Two \x1b]0;PWNED\x07plus\x1b[2J two [@click=app.quit]is four.")
        )
        turn = await send(pilot, app, "2+2?")
        assert turn.thinking == "Two plus two [@click=app.quit]is four."
        turn.query_one(Collapsible).collapsed = False
        await pilot.pause()
        assert "Two plus two" in screen_text(app)
        assert_terminal_safe(app)

        ollama_server.fail_stream("CUDA [/] error\x1b]0;PWNED\x07 [@click=app.quit]boom\x1b[2J", after=1)
        failed = await send(pilot, app, "again")
        assert failed.message.state == ReplyState.ERROR
        error = failed.message.error or ""
        assert "error [@click=app.quit]boom" in error and not CONTROLS & set(error)
        assert "PWNED" not in error and "[2J" not in error
        assert_terminal_safe(app)


async def test_only_http_links_in_a_reply_open(
    ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def open_in_browser(url: str, *args: Any, **kwargs: Any) -> bool:
        opened.append(url)
        return True

    # Where Textual's driver hands a URL to the system; nothing may get here but http(s).
    monkeypatch.setattr(webbrowser, "open", open_in_browser)
    ollama_server.queue_reply(
        "[share](smb://evil.example/share) [passwords](%66ile:///etc/passwd) "
        "[run](%6Aavascript:alert(1)) [docs](https://example.com/docs)"
    )
    app = ollama_app(ollama_server.host)
    async with app.run_test(size=(100, 32), notifications=True) as pilot:
        await ready(pilot, app)
        await send(pilot, app, "links please")
        links = {action: at for action, at in click_targets(app).items() if action.startswith("link(")}
        assert len(links) == 4
        for at in links.values():
            await pilot.click(offset=at)
            await pilot.pause()
        assert opened == ["https://example.com/docs"]
        toasts = " ".join(str(toast.render()) for toast in app.screen.query("Toast"))
        for refused in ("smb://evil.example/share", "file:///etc/passwd", "javascript:alert(1)"):
            assert f"Not opened: {refused}" in toasts
        assert_terminal_safe(app)


async def test_pasted_text_reaches_the_prompt_and_the_chat_without_controls(
    ollama_server: OllamaTestServer,
) -> None:
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        # What the driver posts for a bracketed paste: here, terminal output with its colours.
        app.post_message(events.Paste("\x1b[1;31mred\x1b[0m and \x1b]0;PWNED\x07 plain"))
        await wait_until(pilot, lambda: "plain" in main.prompt.text)
        assert main.prompt.text == "red and  plain"
        assert_terminal_safe(app)
        await send(pilot, app, "")
        assert main.conversation.messages[0].content == "red and  plain"
        assert_terminal_safe(app)


def hostile_export() -> dict[str, Any]:
    """A conversation export whose title and messages carry markup and escape sequences."""
    return {
        "format": "lollma-tui/conversation",
        "version": 1,
        "exported_at": 1764076801.5,
        "conversation": {
            "id": "hostile-conversation",
            "title": "Evil [/] chat\x1b]0;PWNED\x07 [@click=app.quit]q",
            "system_prompt": "",
            "created_at": 1764076000.0,
            "updated_at": 1764076801.0,
            "current_message_id": "hostile-2",
        },
        "messages": [
            {
                "id": f"hostile-{n}",
                "parent_id": None if n == 1 else "hostile-1",
                "role": role,
                "content": content,
                "state": "complete",
                "error": None,
                "created_at": 1764076000.0 + n,
                "stats": None,
                "sampling": None,
            }
            for n, role, content in (
                (1, "user", "hostile question\x1b[2J [@click=app.quit]click"),
                (
                    2,
                    "assistant",
                    "hostile answer\x1b]0;PWNED\x07 with **bold**\x9b2J, "
                    "[a share](smb://evil.example/share) and [the docs](https://example.com/docs)",
                ),
            )
        ],
    }


async def test_an_imported_conversation_is_shown_without_controls_in_chat_list_and_search(
    ollama_server: OllamaTestServer, tmp_path: Path
) -> None:
    original = hostile_export()
    source = tmp_path / "hostile.json"
    source.write_text(json.dumps(original), encoding="utf-8")
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await type_line(pilot, f"/import {source}")
        await wait_until(pilot, lambda: main.conversation.title.startswith("Evil [/] chat"))
        await pilot.pause()
        shown = screen_text(app)
        assert "hostile answer with" in shown and "Evil [/] chat [@click=app.quit]q" in shown
        # A saved reply's links are terminal hyperlinks: only the http(s) one stays a link.
        assert hyperlinks(screen_output(app)) == ["https://example.com/docs"]
        assert_terminal_safe(app)
        # Exports of saved text that holds escape sequences: Markdown drops them, JSON escapes
        # them (it is a backup: nothing is lost).
        markdown, backup = tmp_path / "again.md", tmp_path / "again.json"
        await type_line(pilot, f"/export md {markdown}")
        await type_line(pilot, f"/export json {backup}")
        await wait_until(pilot, lambda: markdown.exists() and backup.exists())
        assert "hostile answer with" in markdown.read_text(encoding="utf-8")
        assert not CONTROLS & set(markdown.read_text(encoding="utf-8"))
        assert not CONTROLS & set(backup.read_text(encoding="utf-8"))
        saved = json.loads(backup.read_text(encoding="utf-8"))
        assert [m["content"] for m in saved["messages"]] == [m["content"] for m in original["messages"]]

        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        listed = app.screen.query_one(OptionList)
        await wait_until(pilot, lambda: listed.option_count == 1)
        await pilot.pause()
        assert "Evil [/] chat [@click=app.quit]q" in screen_text(app)
        assert_terminal_safe(app)
        await pilot.press("escape")

        await pilot.press("ctrl+f")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press(*"hostile")
        hits = app.screen.query_one("#search-hits", OptionList)
        await wait_until(pilot, lambda: hits.option_count > 0)
        await pilot.pause()
        assert "Evil [/] chat [@click=app.quit]q" in screen_text(app)
        assert_terminal_safe(app)

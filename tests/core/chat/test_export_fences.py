"""Markdown export closes only a code fence a reply really left open, with that fence's marker.

Checked by parsing the exported file as a Markdown reader would: the turn after the reply must
still be a heading, and the reply's notes a quote, not text inside a code block.
"""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.export import export_markdown
from lollma_tui.core.chat.store import ChatStore

NEXT = "What comes next?"


def _exported(store: ChatStore, reply: str, state: ReplyState = ReplyState.STOPPED) -> str:
    chat = store.new_conversation("")
    store.add_message(chat.id, Message("user", "Show me some Markdown."))
    writer = store.start_reply(chat.id)
    writer.append_delta(reply)
    writer.finish(state)
    store.add_message(chat.id, Message("user", NEXT))
    return export_markdown(store, chat.id, exported_at=1_764_000_000.0)


def _code_blocks(tokens: list[Token]) -> list[Token]:
    return [token for token in tokens if token.type in ("fence", "code_block")]


def _assert_turns_outside_code(markdown: str) -> list[Token]:
    tokens = MarkdownIt("commonmark").parse(markdown)
    headings = [tokens[i + 1].content for i, token in enumerate(tokens) if token.type == "heading_open"]
    assert sum(heading.startswith("You · ") for heading in headings) == 2, headings
    assert any(heading.startswith("Assistant · ") for heading in headings), headings
    paragraphs = [tokens[i + 1].content for i, token in enumerate(tokens) if token.type == "paragraph_open"]
    assert NEXT in paragraphs
    assert "- state: stopped" not in "".join(block.content for block in _code_blocks(tokens))
    assert not any(NEXT in block.content for block in _code_blocks(tokens))
    return tokens


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        # A complete explanation: the indented line is code, not a fence; nothing to close.
        ("Put three backticks on a line:\n\n    ```\n\nThen close it.", "```\n"),
        ("Here:\n\n~~~python\nx = 1\ny = 2", "x = 1\ny = 2\n"),  # stopped inside ~~~
        ("Example:\n\n````md\n```\ncode\n```\nmore", "```\ncode\n```\nmore\n"),  # inside ````
        ("Run:\n\n```bash\nls", "ls\n"),  # the plain case still closes
        ("Done:\n\n```\nx\n```", "x\n"),  # already closed at the very end
        ("Done:\n\n~~~~\nx\n~~~~~~  ", "x\n"),  # closed by a longer fence with trailing spaces
        ("Mixed:\n\n```\n~~~\nstill code", "~~~\nstill code\n"),  # ~~~ cannot close ```
        ("Opened, no code yet:\n\n```", ""),
        ("Quoted:\n\n> ```\n> code", "code\n"),  # the quote ends it; nothing to add
        ("Escaped:\n\n\x1b[0m```\nx", "x\n"),  # what the file shows once escapes are dropped
    ],
)
def test_only_an_open_fence_is_closed_and_the_next_turn_stays_outside(
    store: ChatStore, reply: str, code: str
) -> None:
    markdown = _exported(store, reply)
    tokens = _assert_turns_outside_code(markdown)
    assert [block.content for block in _code_blocks(tokens)] == [code]


def test_the_closing_line_uses_the_fences_own_marker(store: ChatStore) -> None:
    markdown = _exported(store, "Example:\n\n````md\n```\ncode\n```\nmore")
    assert "\nmore\n````\n" in markdown
    markdown = _exported(store, "Here:\n\n  ~~~python\nx = 1")
    assert "\nx = 1\n~~~\n" in markdown


def test_a_complete_reply_about_fences_is_exported_unchanged(store: ChatStore) -> None:
    reply = "Put three backticks on a line:\n\n    ```\n\nThen close it."
    markdown = _exported(store, reply, ReplyState.COMPLETE)
    assert f"{reply}\n\n## You" in markdown

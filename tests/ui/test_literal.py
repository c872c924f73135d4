"""ui/literal.py: untrusted text as widgets take it, shown as written and without controls."""

from __future__ import annotations

import pytest

from lollma_tui.ui.literal import (
    StreamCleaner,
    drop_unsafe_links,
    literal,
    literal_options,
    literal_text,
    plain,
)

HOSTILE = "Evil [/] [@click=app.quit]x[/]\x1b]0;title\x07\tend\x9b2J\r\nnext"


def test_literal_content_is_the_text_without_controls_and_without_markup() -> None:
    content = literal(HOSTILE)
    assert content.plain == "Evil [/] [@click=app.quit]x[/]]0;title\tend2J\nnext"
    assert not content.spans  # nothing styled, nothing clickable


def test_one_line_text_turns_line_breaks_and_tabs_into_spaces() -> None:
    assert plain(HOSTILE, one_line=True) == "Evil [/] [@click=app.quit]x[/]]0;title end2J next"
    assert literal_text(HOSTILE, one_line=True, style="bold").plain == plain(HOSTILE, one_line=True)


def test_select_options_keep_their_values() -> None:
    options = literal_options([("[b]a\x1b[2J", 1), ("b", 2)])
    assert [(prompt.plain, value) for prompt, value in options] == [("[b]a[2J", 1), ("b", 2)]
    assert not options[0][0].spans


@pytest.mark.parametrize(
    ("pieces", "shown"),
    [
        (["one\r", "\ntwo"], "one\ntwo"),  # a CRLF split between pieces is one line break
        (["one\r", "two"], "one\ntwo"),  # a lone CR is a line break too
        (["one\r", "\r", "\n"], "one\n\n"),
        (["one", "\r"], "one"),  # nothing follows a last CR
        (["\x1b", "]0;t\x07", "x"], "]0;tx"),  # an escape split between pieces loses its controls
    ],
)
def test_stream_cleaner_cleans_text_that_arrives_in_pieces(pieces: list[str], shown: str) -> None:
    cleaner = StreamCleaner()
    assert "".join(cleaner.feed(piece) for piece in pieces) == shown


def test_markdown_links_and_images_of_other_schemes_are_unlinked() -> None:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt().parse(
        "[a](smb://h/s) [b](https://ok.example/) ![c](x-man-page://ls) "
        "![d](http://ok.example/i.png) [e](/etc)"
    )
    drop_unsafe_links(tokens)
    links = [
        token.attrs.get("href", token.attrs.get("src"))
        for block in tokens
        for token in block.children or ()
        if token.type in ("link_open", "image")
    ]
    assert links == ["", "https://ok.example/", "", "http://ok.example/i.png", ""]

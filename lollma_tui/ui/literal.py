"""The one way the UI shows text it did not write itself: from a model, a file, a server or the user.

Such text is shown literally, never parsed as Textual markup: a model named ``Evil [/] Model``
cannot raise `MarkupError`, and ``[@click=app.quit]`` cannot become an action link. Its control
characters are dropped (`core.safe_text.clean_text`): an escape sequence in a reply, a title or
a file name cannot retitle the window, write the clipboard or clear the screen.

Widgets take such text as `Content` (`literal`); as Rich `Text` where a widget only searches
`str` and `Text` prompts (`Select`'s type-to-search) or holds Rich cells (`DataTable`); or as a
cleaned `str` (`plain`) for a widget already told not to parse markup (``Static(markup=False)``,
``notify(markup=False)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

from rich.text import Text
from textual.content import Content

from lollma_tui.core.safe_text import clean_text, safe_link, settled_length

if TYPE_CHECKING:
    from markdown_it.token import Token

T = TypeVar("T")


def plain(text: str, *, one_line: bool = False) -> str:
    """`text` without control characters; `one_line` turns newlines and tabs into spaces."""
    return clean_text(text, keep_lines=not one_line)


def literal(text: str, *, one_line: bool = False) -> Content:
    """`text` as `Content` shown exactly as written (markup is not parsed), without controls."""
    return Content(plain(text, one_line=one_line))


def literal_text(text: str, *, one_line: bool = False, style: str = "") -> Text:
    """`text` as a Rich `Text` shown exactly as written, without controls."""
    return Text(plain(text, one_line=one_line), style=style)


def literal_options(options: Iterable[tuple[str, T]]) -> list[tuple[Text, T]]:
    """A `Select`'s options with literal one-line prompts (type-to-search still finds them)."""
    return [(literal_text(prompt, one_line=True), value) for prompt, value in options]


def drop_unsafe_links(tokens: Iterable[Token]) -> None:
    """Unlink each link and image in parsed Markdown whose target `safe_link` refuses.

    For Markdown that Rich draws: Rich turns a link into a terminal hyperlink (OSC 8), which the
    terminal opens on a click without asking the app. The link's text stays, unlinked.
    """
    for block in tokens:
        for token in block.children or ():
            if token.type == "link_open" and safe_link(str(token.attrs.get("href", ""))) is None:
                token.attrs["href"] = ""
            elif token.type == "image" and safe_link(str(token.attrs.get("src", ""))) is None:
                token.attrs["src"] = ""


class StreamCleaner:
    """`plain` for text that arrives in pieces (a streamed reply or its thinking).

    What a piece's end leaves undecided waits for the next piece: a carriage return (a CRLF
    split across two pieces is one line break, not two) and an escape sequence cut at the end
    (``ESC`` alone, or an OSC whose terminator is still to come), which then goes whole. An
    unterminated sequence waits no longer than `MAX_SEQUENCE_BODY` characters, as `clean_text`
    keeps the text after one that long. The pieces so cleaned, then `finish`, join to exactly
    `plain` of the whole text. Without `finish`, only what a CR at the very end decides is
    missing (its line break); a sequence cut short at the end is dropped by `plain` too.
    """

    def __init__(self) -> None:
        self._held_cr = False
        self._pending = ""  # line breaks settled; starts with an escape sequence that may go on

    def feed(self, piece: str) -> str:
        if self._held_cr:
            piece = "\r" + piece
        self._held_cr = piece.endswith("\r")
        if self._held_cr:
            piece = piece[:-1]
        if "\r" in piece:
            piece = piece.replace("\r\n", "\n").replace("\r", "\n")
        text = self._pending + piece
        settled = settled_length(text)
        self._pending = text[settled:]
        return plain(text[:settled])

    def finish(self) -> str:
        """What was held back for a next piece, now that none will come."""
        rest = self._pending + ("\n" if self._held_cr else "")
        self._pending, self._held_cr = "", False
        return plain(rest)

"""The reply widget: streamed block by block it shows what the whole document shows, grows in
steps while it streams, and never draws a control character."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import pytest
from pilot_support import ThemedApp, wait_until
from textual.app import ComposeResult
from textual.containers import VerticalScroll

from lollma_tui.ui.widgets.reply_markdown import (
    CODE_CHUNK_LINES,
    MIN_STEP_LINES,
    STEP_SHARE,
    ReplyMarkdown,
    preload,
)

DOCUMENT = """# Streaming

A paragraph with **bold**, *italic* and `code`, long enough to wrap across more than one line
of the log at this width, so that wrapping is part of what is compared.

- first item
- second item with a [link](https://example.org)
- third item

```python
def add(a, b):
    return a + b
```

| model | tok/s |
|---|---|
| gemma | 77 |

> A quote to finish, followed by a rule.

---

1. one
2. two
"""


class Host(ThemedApp):
    CSS: ClassVar[str] = "VerticalScroll { height: 1fr; } ReplyMarkdown { padding: 0 0 0 2; }"

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield ReplyMarkdown(id="streamed")
            yield ReplyMarkdown(id="whole")


def texts(body: ReplyMarkdown) -> list[str]:
    return [line.text.rstrip() for line in body.rendered_lines]


def words(text: str) -> list[str]:
    """Token-sized pieces, spaces and newlines attached, as a model streams them."""
    pieces: list[str] = []
    for word in text.split(" "):
        pieces.append(word + " ")
    pieces[-1] = pieces[-1][:-1]
    return pieces


def characters(text: str, size: int = 3) -> list[str]:
    """Pieces of `size` characters: a block is seen in every state it passes through (">" alone)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("split", [words, characters])
async def test_a_streamed_reply_shows_what_the_whole_document_shows(
    split: Callable[[str], list[str]],
) -> None:
    app = Host()
    async with app.run_test(size=(90, 40)) as pilot:
        streamed = app.query_one("#streamed", ReplyMarkdown)
        whole = app.query_one("#whole", ReplyMarkdown)
        whole.update(DOCUMENT)
        for count, piece in enumerate(split(DOCUMENT)):
            streamed.append(piece)
            if count % 5 == 0:
                await pilot.pause()
        await wait_until(pilot, lambda: bool(streamed.rendered_lines) and bool(whole.rendered_lines))
        assert streamed.source == DOCUMENT
        # Before the final render: finished blocks were rendered one by one as the text came.
        assert texts(streamed) == texts(whole)
        assert streamed.rendered_lines == whole.rendered_lines  # colours and styles too
        assert any("def add(a, b):" in line for line in texts(whole))
        assert any("gemma" in line and "77" in line for line in texts(whole))


LISTING = (
    "Here is the listing:\n\n```python\n"
    + "".join(f"value_{i} = compute({i}, 'label {i}')  # line {i}\n" for i in range(CODE_CHUNK_LINES * 3 + 5))
    + "```\n"
)


async def test_a_long_code_block_streamed_in_chunks_shows_what_the_whole_block_shows() -> None:
    app = Host()
    async with app.run_test(size=(90, 40)) as pilot:
        streamed = app.query_one("#streamed", ReplyMarkdown)
        whole = app.query_one("#whole", ReplyMarkdown)
        whole.update(LISTING)
        for line in LISTING.splitlines(keepends=True):
            for piece in words(line):
                streamed.append(piece)
            await pilot.pause()
        await wait_until(pilot, lambda: bool(streamed.rendered_lines) and bool(whole.rendered_lines))
        assert sum("= compute(" in line for line in texts(streamed)) == CODE_CHUNK_LINES * 3 + 5
        assert streamed.rendered_lines == whole.rendered_lines


async def test_the_reply_grows_a_step_at_a_time_and_fits_its_text_once_done() -> None:
    app = Host()
    async with app.run_test(size=(90, 40)) as pilot:
        body = app.query_one("#streamed", ReplyMarkdown)
        step = max(MIN_STEP_LINES, 40 // STEP_SHARE)
        heights: set[int] = set()
        for piece in words(DOCUMENT):
            body.append(piece)
            await pilot.pause()
            heights.add(body.size.height)
            assert body.size.height >= len(body.rendered_lines)
        assert all(height % step == 0 for height in heights)
        assert len(heights) < len(texts(body)) // 2  # far fewer heights than lines
        body.update(body.source)
        await pilot.pause()
        assert body.size.height == len(body.rendered_lines)


async def test_control_characters_in_a_reply_are_not_drawn() -> None:
    app = Host()
    async with app.run_test(size=(90, 40)) as pilot:
        body = app.query_one("#streamed", ReplyMarkdown)
        body.append("plain \x1b[31mred\x1b[0m bell\x07 and\r carriage\n\ttab")
        await wait_until(pilot, lambda: bool(body.rendered_lines))
        drawn = "".join(segment.text for line in body.rendered_lines for segment in line)
        assert "\x1b" not in drawn and "\x07" not in drawn and "\r" not in drawn
        assert "plain red bell" in drawn  # each sequence goes whole; the rest is kept
        assert body.source.startswith("plain red bell and\n carriage")


async def test_a_crlf_split_between_two_pieces_is_one_line_break() -> None:
    app = Host()
    async with app.run_test(size=(90, 40)) as pilot:
        body = app.query_one("#streamed", ReplyMarkdown)
        for piece in ("one\r", "\ntwo\r", "\n"):
            body.append(piece)
        await pilot.pause()
        assert body.source == "one\ntwo\n"


async def test_a_link_is_a_click_for_the_app_never_a_terminal_hyperlink() -> None:
    app = Host()
    async with app.run_test(size=(90, 40)) as pilot:
        body = app.query_one("#streamed", ReplyMarkdown)
        body.append("see [the docs](https://example.org/docs) and [a share](smb://evil.example/s) ")
        await wait_until(pilot, lambda: bool(body.rendered_lines))
        segments = [segment for line in body.rendered_lines for segment in line]
        # A hyperlink is opened by the terminal, which never asks the app.
        assert not [segment.text for segment in segments if segment.style and segment.style.link]
        clicks = {segment.style.meta.get("@click") for segment in segments if segment.style}
        assert {"link('https://example.org/docs')", "link('smb://evil.example/s')"} <= clicks


async def test_text_in_angle_brackets_is_shown_as_the_model_wrote_it() -> None:
    # Read as HTML, which rich does not draw: "List<String>" showed as "List".
    app = Host()
    async with app.run_test(size=(90, 40)) as pilot:
        body = app.query_one("#streamed", ReplyMarkdown)
        body.update("In Java use List<String> names; press <Enter>.\n\n<details>\nhidden?\n</details>\n")
        await wait_until(pilot, lambda: any("List" in line for line in texts(body)))
        drawn = "\n".join(texts(body))
        assert "List<String> names; press <Enter>." in drawn
        assert "<details>" in drawn and "hidden?" in drawn


async def test_a_link_opens_as_written_not_percent_decoded() -> None:
    app = Host()
    opened: list[str] = []
    app.open_url = lambda url, **_: opened.append(url)  # type: ignore[method-assign]
    async with app.run_test(size=(90, 40)):
        body = app.query_one("#streamed", ReplyMarkdown)
        await body.action_link("https://example.com/login?next=%2Fa%3Fx%3D1%26y%3D2")
    assert opened == ["https://example.com/login?next=%2Fa%3Fx%3D1%26y%3D2"]


async def test_a_code_line_being_written_shows_no_closing_fence() -> None:
    app = Host()
    async with app.run_test(size=(90, 40)) as pilot:
        body = app.query_one("#streamed", ReplyMarkdown)
        body.append("Here:\n\n```python\ndef main")
        await wait_until(pilot, lambda: any("def main" in line for line in texts(body)))
        assert not [line for line in texts(body) if "```" in line]


def test_preload_renders_every_kind_of_block_without_an_app() -> None:
    # It runs on a thread of its own at start-up, where an error would go unseen.
    preload()

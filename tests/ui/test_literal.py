"""ui/literal.py: untrusted text as widgets take it, shown as written and without controls."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lollma_tui.core.safe_text import MAX_SEQUENCE_BODY
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
    assert content.plain == "Evil [/] [@click=app.quit]x[/]\tend\nnext"
    assert not content.spans  # nothing styled, nothing clickable


def test_one_line_text_turns_line_breaks_and_tabs_into_spaces() -> None:
    assert plain(HOSTILE, one_line=True) == "Evil [/] [@click=app.quit]x[/] end next"
    assert literal_text(HOSTILE, one_line=True, style="bold").plain == plain(HOSTILE, one_line=True)


def test_select_options_keep_their_values() -> None:
    options = literal_options([("[b]a\x1b[2J", 1), ("b", 2)])
    assert [(prompt.plain, value) for prompt, value in options] == [("[b]a", 1), ("b", 2)]
    assert not options[0][0].spans


@pytest.mark.parametrize(
    ("pieces", "shown"),
    [
        (["one\r", "\ntwo"], "one\ntwo"),  # a CRLF split between pieces is one line break
        (["one\r", "two"], "one\ntwo"),  # a lone CR is a line break too
        (["one\r", "\r", "\n"], "one\n\n"),
        (["one", "\r"], "one"),  # nothing follows a last CR
        (["\x1b", "]0;t\x07", "x"], "x"),  # an escape split between pieces goes whole
        (["a\x1b]0;", "ti", "tle\x1b", "\\b"], "ab"),  # and so does one split inside
        (["a\x1b[3", "1mb\x1b[2", "J"], "ab"),
    ],
)
def test_stream_cleaner_cleans_text_that_arrives_in_pieces(pieces: list[str], shown: str) -> None:
    cleaner = StreamCleaner()
    assert "".join(cleaner.feed(piece) for piece in pieces) == shown


L = MAX_SEQUENCE_BODY
TRICKY = [
    "a\x1b]0;T\x07b\x1b[2J\x1b[Hc",
    "x\x1b]52;c;TExBTUE=\x1b\\y\x1b]8;;https://e.example\x1b\\link\x1b]8;;\x1b\\",
    "\r\n\x1b[31mred\x1b[0m\r\x1b(B\x1b)0\x1b7\x1b8\x1bc\r",
    "\x9d0;t\x9c\x9b1m\x90q\x9c\x98s\x9c\x9e\x07\x9fz\x9b",
    "\x1bPq#0;2;0;0;0\x1b\\done\x1b_apc\x07still\x1b\\\x1b^pm",
    "\x1b]" + "z" * (L - 1) + "\x07tail",
    "\x1b]" + "z" * (L + 5) + "\x07tail",
    "\x1bP" + "z" * L + "\x1b\\" + "\x1b]" + "y" * (L + 1),
    "\x1b]" + "a" * 1000 + "\x9d" + "b" * L + "\x07tail",  # a C1 inside a too long OSC
    "\x1b[" + "1" * 70 + "m\x1b[" + "2" * 64 + "m\x1b[?25l",
    "\x1b[12\x1b]0;t\x1b\\x\x1b]0;a\r\nb\x07c\r",
    "a\x1b\x1b[1m\x1b\x1b\\\x1b\x1b((\x1b7x\x1b( \x9b",
    "\ud800\x1b[1m\x1b]0;t\x9bxx\udfff\x1b]0;\x1b",
    "stopped inside: \x1b]0;no terminator",
]


def _pieces(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 12))))
    return [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def _streamed(pieces: list[str]) -> tuple[str, str]:
    cleaner = StreamCleaner()
    return "".join(cleaner.feed(piece) for piece in pieces), cleaner.finish()


def _random_text(rng: random.Random) -> str:
    alphabet = ["\x1b", "[", "]", "\\", "\x07", "\x9b", "\x9c", "\x9d", "\x90", "\x85", "P", "_", "(",
                "1", ";", "m", "a", " ", "\r", "\n", "\ud800", "日"]  # fmt: skip
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))


def test_streamed_text_is_cleaned_exactly_as_the_whole_text() -> None:
    rng = random.Random(20251124)
    texts = TRICKY + [_random_text(rng) for _ in range(400)]
    for text in texts:
        whole = plain(text)
        splits = [list(text), [text]] + [_pieces(text, rng) for _ in range(40)]
        for pieces in splits if len(text) < 100 else splits[1:]:
            shown, rest = _streamed(pieces)
            assert (shown + rest, pieces) == (whole, pieces)
            # The app's streams never call finish: they miss only what a last CR decides.
            assert rest == "" or text.endswith("\r")


def test_an_unterminated_sequence_is_not_held_back_for_ever() -> None:
    cleaner = StreamCleaner()
    shown = cleaner.feed("a\x1b]") + "".join(cleaner.feed("x") for _ in range(L + 10))
    assert shown == "a" + "x" * (L + 10)  # past the limit only the introducer was dropped
    held = StreamCleaner()
    assert held.feed("a\x1b]0;tit") == "a"
    assert held.feed("le\x07b") == "b"


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


async def test_ctrl_c_says_which_key_quits_in_plain_words() -> None:
    # Textual's toast is markup ("Press [b]ctrl+q[/b] …"), which our literal toasts showed as is.
    from textual.binding import Binding

    from lollma_tui.ui.literal_app import LiteralApp

    class Quits(LiteralApp[None]):
        BINDINGS = [Binding("ctrl+q", "quit", "Quit")]

    app = Quits()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+c")
        await pilot.pause()
        (toast,) = app._notifications
        assert (toast.title, toast.message) == ("Do you want to quit?", "Press ^q to quit")


async def test_a_screenshot_says_where_it_went_or_why_it_did_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Textual saves to ~/Downloads, missing on a headless box: "Failed to save screenshot" and
    # no reason; where it worked, "Saved screenshot to [$text-success]'…'" with the markup shown.
    from lollma_tui.ui.literal_app import LiteralApp

    monkeypatch.setenv("LOLLMA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no Downloads folder in it
    app: LiteralApp[None] = LiteralApp()
    async with app.run_test() as pilot:
        app.action_screenshot()
        await pilot.pause(0.5)
        (saved,) = (tmp_path / "state" / "screenshots").iterdir()
        assert saved.read_text().startswith("<svg")
        (toast,) = app._notifications
        assert toast.message == f"Saved to {saved}"
        (tmp_path / "blocked").write_text("a file where a folder should be")
        app.action_screenshot(path=str(tmp_path / "blocked"))
        await pilot.pause(0.5)
        failed = list(app._notifications)[-1]
        assert failed.severity == "error"
        assert failed.message.startswith(f"Not saved: {tmp_path / 'blocked'}/")
        assert failed.message.rsplit(".svg: ", 1)[1]  # and why


BUSY_APP = """
import sys, time
from lollma_tui.ui.literal_app import LiteralApp

class Busy(LiteralApp[None]):
    def on_mount(self) -> None:
        self.set_timer(0.1, self.busy)

    def busy(self) -> None:
        print("busy", flush=True)
        end = time.monotonic() + 60
        while time.monotonic() < end:  # the loop's turn never comes (a huge message laid out)
            sum(range(1000))

Busy().run(headless=True)
"""


def test_a_second_signal_ends_an_app_whose_loop_is_busy() -> None:
    # Both signals waited for the loop, which a long layout held: only kill -9 ended the app.
    import signal
    import subprocess
    import sys
    import time

    child = subprocess.Popen([sys.executable, "-c", BUSY_APP], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "busy\n"
        child.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()

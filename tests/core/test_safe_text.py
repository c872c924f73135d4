"""Untrusted text loses what a terminal would act on; links are http(s) only."""

from __future__ import annotations

import json

import pytest

from lollma_tui.core.safe_text import MAX_SEQUENCE_BODY, clean_text, safe_link

ESCAPES = [
    "\x1b]0;pwned\x07",  # OSC: retitle the window
    "\x1b]52;c;aGVsbG8=\x1b\\",  # OSC 52: write the clipboard
    "\x1b[2J\x1b[H",  # clear the screen
    "\x9b31m",  # 8-bit CSI
    "\x9d0;title\x9c",  # 8-bit OSC ... ST
    "\x00\x08\x7f\x0b\x0c",
]


@pytest.mark.parametrize("sequence", ESCAPES)
def test_escape_sequences_lose_every_control_character(sequence: str) -> None:
    for keep_lines in (True, False):
        cleaned = clean_text(f"before {sequence} after", keep_lines=keep_lines)
        assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in cleaned), repr(cleaned)
        assert cleaned.startswith("before ") and cleaned.endswith(" after")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1b]0;T\x07b", "ab"),  # OSC ... BEL
        ("a\x1b]52;c;TExBTUE=\x1b\\b", "ab"),  # OSC ... ST
        ("a\x1b[2J\x1b[Hb\x1b[?25l\x1b[38;2;1;2;3m", "ab"),  # CSI
        ("a\x1bPq#0;2\x1b\\b\x1bXsos\x1b\\\x1b^pm\x1b\\\x1b_apc\x1b\\", "ab"),  # DCS SOS PM APC
        ("a\x9b31mb\x9d0;t\x9c\x9d0;t\x07\x90q\x9c", "ab"),  # 8-bit forms
        ("a\x1b(Bb\x1b7\x1b8\x1bc", "ab"),  # nF and two-character escapes
        ("a\x1b]0;T\x1b[1mb", "ab"),  # an ESC cuts an OSC short, as in a terminal
        ("a\x1b]0;T\x85b", "ab"),  # and so does a C1 character
        ("a\x1b[12\nb", "a12\nb"),  # not a CSI: only its introducer goes
        ("a\x1b]0;Tit", "a"),  # a reply stopped inside a sequence
        ("a\x1b[3", "a"),
        ("a\x1b", "a"),
        ("a\x1b]0;T\r\nU\x07b", "ab"),
    ],
)
def test_escape_sequences_are_removed_whole(text: str, shown: str) -> None:
    assert clean_text(text) == shown
    assert clean_text(text, keep_lines=False) == shown.replace("\n", " ")


def test_an_unterminated_sequence_hides_at_most_its_limit() -> None:
    limit = MAX_SEQUENCE_BODY
    assert clean_text("a\x1b]" + "x" * limit + "\x07b") == "ab"
    assert clean_text("a\x1b]" + "x" * limit) == "a"
    # Longer, the introducer alone goes: a stray ESC ] cannot hide the rest of a reply.
    longer = "x" * (limit + 1)
    assert clean_text("a\x1b]" + longer + "\x07b") == "a" + longer + "b"
    assert clean_text("a\x1bP" + longer) == "a" + longer
    assert clean_text("a\x9d" + longer) == "a" + longer
    assert clean_text("a\x1b[" + "1" * 65 + "mb") == "a" + "1" * 65 + "mb"
    reply = "Escapes start with \x1b] and then\n\n" + "more text. " * 1000
    assert clean_text(reply) == reply.replace("\x1b]", "")


def test_every_c0_and_c1_character_is_removed_but_newline_and_tab() -> None:
    everything = "".join(chr(code) for code in range(0xA0))
    cleaned = clean_text(everything)
    # The CR becomes a newline; nothing else below U+00A0 but printable ASCII survives.
    assert cleaned == "\t\n\n" + "".join(chr(code) for code in range(0x20, 0x7F))


def test_line_breaks_kept_or_flattened() -> None:
    assert clean_text("a\r\nb\rc\n\td") == "a\nb\nc\n\td"
    assert clean_text("a\r\nb\rc\n\td", keep_lines=False) == "a b c  d"


def test_lone_surrogates_become_replacement_characters() -> None:
    decoded = json.loads('"x\\ud800y\\udfffz"')
    cleaned = clean_text(decoded)
    assert cleaned == "x\ufffdy\ufffdz"
    cleaned.encode("utf-8")  # what the terminal driver does; a lone surrogate raises here
    from_file = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert clean_text(from_file, keep_lines=False) == "caf\ufffd"


def test_ordinary_text_is_returned_as_is() -> None:
    text = "Entanglement is … **bold** [link](https://example.com) 日本語 🙂\n\tcode"
    assert clean_text(text) is text


@pytest.mark.parametrize(
    "url",
    ["https://example.com", "http://127.0.0.1:11434/api", "HTTPS://Example.com/a?b=c#d", " https://x.org "],
)
def test_http_links_are_allowed(url: str) -> None:
    assert safe_link(url) == url.strip()


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "data:text/html,<b>x</b>",
        "ftp://example.com/file",
        "vscode://open?file=/etc/passwd",
        "//example.com/path",
        "https://",
        "http:///path",
        "https://exa mple.com",
        "https://example.com/\x1b]0;x\x07",
        "https://[::1",
        "",
        "   ",
    ],
)
def test_other_links_are_refused(url: str) -> None:
    assert safe_link(url) is None

"""The one rule for showing text that came from a model, a file, a server or the user.

Such text may carry terminal escape sequences (a reply can retitle the window, write the
clipboard through OSC 52 or clear the screen) and lone surrogates (from JSON ``\\ud800`` or a
file decoded with ``surrogateescape``) that make the terminal's UTF-8 encoder raise. Every
front end routes untrusted strings through `clean_text`, and untrusted link targets through
`safe_link`, before showing or opening them.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

# C0 except tab and newline, DEL, C1, and every surrogate code point: a Python str holding one
# cannot be encoded to UTF-8, and one from a decoded file or JSON is never part of a valid pair.
_UNSAFE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")
_UNSAFE_KEEPING_LINES: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_BREAKS: Final = re.compile(r"[\n\t]")

MAX_SEQUENCE_BODY: Final = 4096
"""Characters an OSC, DCS, SOS, PM or APC string may hold before its terminator. Without a
terminator that near, only its introducer is dropped: a stray ``ESC ]`` in a reply cannot hide
the rest of it (nor hold a streamed reply back for longer than this)."""
_MAX_CSI_PART: Final = 64
"""Parameter, and intermediate, characters a CSI or an nF escape may hold."""

_INTRODUCER: Final = re.compile(r"[\x1b\x90\x98\x9b\x9d\x9e\x9f]")
# As in a terminal, ESC or any C1 character cuts short the sequence it arrives in; so does the
# end of the text, which is a sequence cut short too (a reply stopped inside one). The cut-short
# sequence is dropped as far as it went. That both end it alike is what lets `settled_length`
# hold a streamed sequence back at the first character of the piece that may go on with it.
_CUT: Final = r"(?=[\x1b\x80-\x9f])|\Z"
_STRING_END: Final = rf"\x1b\\|\x9c|{_CUT}"
# A whole escape sequence, so that its printable part goes with its control characters. A
# form that does not match (too long, or a character it cannot hold) loses only its introducer.
_SEQUENCE: Final = re.compile(
    # CSI: ESC [ (or 8-bit CSI), parameters, intermediates, one final character.
    rf"(?:\x1b\[|\x9b)[\x30-\x3f]{{0,{_MAX_CSI_PART}}}[\x20-\x2f]{{0,{_MAX_CSI_PART}}}(?:[\x40-\x7e]|{_CUT})"
    # OSC: ESC ] (or 8-bit OSC) up to BEL or ST.
    rf"|(?:\x1b\]|\x9d)[^\x07\x1b\x80-\x9f]{{0,{MAX_SEQUENCE_BODY}}}(?:\x07|{_STRING_END})"
    # DCS, SOS, PM, APC: up to ST only.
    rf"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x80-\x9f]{{0,{MAX_SEQUENCE_BODY}}}(?:{_STRING_END})"
    # nF (character set designation and the like): ESC, intermediates, one final character.
    rf"|\x1b[\x20-\x2f]{{1,{_MAX_CSI_PART}}}(?:[\x30-\x7e]|{_CUT})"
    # Any other ESC with the printable character after it (if one is there).
    r"|\x1b[\x20-\x7e]?"
)
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")
_LINK_SCHEMES: Final = frozenset({"http", "https"})


def clean_text(text: str, *, keep_lines: bool = True) -> str:
    """``text`` without escape sequences or control characters, safe to show literally.

    Each escape sequence (CSI, OSC, DCS, SOS, PM, APC, in 7-bit or 8-bit form, and the
    two-character ones) is removed whole, within the limits of `MAX_SEQUENCE_BODY`. Newline and
    tab stay when ``keep_lines`` (a CRLF or lone CR becomes a newline); otherwise, for one-line
    places such as titles, menus and toasts, each of them becomes a space. Lone surrogates
    become U+FFFD; every other control character (C0, DEL, C1) is removed.
    """
    pattern = _UNSAFE_KEEPING_LINES if keep_lines else _UNSAFE
    if pattern.search(text) is None:  # the common case: nothing to copy
        return text
    # Line breaks first: `StreamCleaner` settles them before it looks for sequences, and a
    # sequence's length limit must count the same characters in both.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _INTRODUCER.search(text) is not None:
        text = _SEQUENCE.sub("", text)
    if not keep_lines:
        text = _LINE_BREAKS.sub(" ", text)
    text = _SURROGATE.sub("\ufffd", text)
    return pattern.sub("", text)


def settled_length(text: str) -> int:
    """How much of ``text``, the start of a stream, more text cannot change the cleaning of.

    ``text`` must have its line breaks settled already (no CR) and start where no escape
    sequence is open. What follows the returned length, an escape sequence that reaches the
    end of ``text`` and so may go on in the next piece, waits for it: then
    ``clean_text(text[:n]) + clean_text(text[n:] + rest) == clean_text(text + rest)``. What
    waits is never longer than an escape sequence may be.
    """
    if _INTRODUCER.search(text) is None:
        return len(text)
    last = None
    for last in _SEQUENCE.finditer(text):  # noqa: B007 (only the last one can be open)
        pass
    return last.start() if last is not None and last.end() == len(text) else len(text)


def has_surrogates(text: str) -> bool:
    """True when `text` holds a surrogate code point (a lone one from a JSON escape or a
    ``surrogateescape`` decode): such text cannot be encoded to UTF-8, stored or shown as is."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def safe_link(url: str) -> str | None:
    """``url`` if it is an http(s) link to a host, else None: never open another scheme.

    ``javascript:``, ``file:``, ``data:``, custom schemes and anything with control characters
    or spaces (which browsers and openers treat inconsistently) are refused.
    """
    candidate = url.strip()
    if not candidate or _UNSAFE.search(candidate) or any(ch.isspace() for ch in candidate):
        return None
    try:
        split = urllib.parse.urlsplit(candidate)
        hostname = split.hostname
    except ValueError:
        return None
    if split.scheme.lower() not in _LINK_SCHEMES or not hostname:
        return None
    return candidate

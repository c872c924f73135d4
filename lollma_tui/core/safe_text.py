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
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")
_LINK_SCHEMES: Final = frozenset({"http", "https"})


def clean_text(text: str, *, keep_lines: bool = True) -> str:
    """``text`` without control characters, safe to show literally.

    Newline and tab stay when ``keep_lines`` (a CRLF or lone CR becomes a newline); otherwise,
    for one-line places such as titles, menus and toasts, each of them becomes a space. Lone
    surrogates become U+FFFD; every other control character (C0, DEL, C1, so ESC and the
    8-bit CSI) is removed.
    """
    pattern = _UNSAFE_KEEPING_LINES if keep_lines else _UNSAFE
    if pattern.search(text) is None:  # the common case: nothing to copy
        return text
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not keep_lines:
        text = _LINE_BREAKS.sub(" ", text)
    text = _SURROGATE.sub("\ufffd", text)
    return pattern.sub("", text)


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

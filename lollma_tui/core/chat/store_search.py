"""Search across every conversation: FTS5 where this sqlite has it, a LIKE scan where it does not;
and a conversation found by the start of its id.

This module builds the statement, runs it and turns its rows into hits; `ChatStore.search` hands
it the store's read transaction, so locking and error mapping stay in one place. A query with no
words builds no statement, and so opens no transaction.

Snippets are cut here in Python, not by SQLite's snippet(): that one's cost grows with the square
of the matches in one message (a reply repeating one word 20,000 times took 2 s), and it runs
under the store's lock. Here a snippet looks at a bounded start of each hit's text.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final, TypedDict, Unpack

from lollma_tui.core.backends.base import Role
from lollma_tui.core.chat.errors import AmbiguousIdError, NotFoundError

UNSPACED_SCRIPT = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]"
)
"""Thai, Lao, Myanmar, Khmer, Japanese kana, Chinese characters and Hangul: scripts written
without spaces between words (or, in Korean, with particles joined to them). The index takes a
whole run of them for one word, so a word inside one is looked for with LIKE."""

SNIPPET_WIDTH: Final = 60
"""Characters of context around the first match, about the 12 words SQLite's snippet() showed."""
SNIPPET_SCAN: Final = 16_384
"""Characters of a message searched for the match to show: a hit further in shows the start of
the message. Bounds the Python work per hit, and what SQLite copies out per row."""
PROGRESS_STEPS = 1000
"""SQLite virtual-machine steps between two looks at a search's `cancelled`: often enough to stop
within microseconds, rarely enough to cost nothing measurable. Tests lower it."""

_WORD_CHAR: Final = r"[^\W_]"
"""A character the index's unicode61 tokenizer keeps in a word (letters and digits, not "_")."""

Cancelled = Callable[[], bool]


class SearchCancelledError(Exception):
    """The caller's `cancelled` said stop while the search ran: a newer search made it useless.
    Not a `StoreError`: nothing failed, and the store is as it was."""


class SearchOptions(TypedDict, total=False):
    """The keywords of `ChatStore.search`."""

    limit: int
    """At most this many hits (default 50)."""
    marks: tuple[str, str]
    """Put around each match in a snippet (default "[" and "]")."""
    cancelled: Cancelled | None
    """Polled while the statement runs: true stops it with `SearchCancelledError` and lets go of
    the store, so a search the user typed past does not hold up the next one or a save."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    conversation_id: str
    conversation_title: str
    message_id: str
    role: Role
    snippet: str
    created_at: float


@dataclass(frozen=True, slots=True)
class SearchStatement:
    sql: str
    params: tuple[object, ...]
    marks: tuple[str, str]
    words: re.Pattern[str]
    """The query's words as they match folded text (see `_folded`): the snippet is cut around them."""

    def hits(self, rows: Sequence[Sequence[Any]]) -> list[SearchHit]:
        return [
            SearchHit(row[0], row[1], row[2], row[3], cut_snippet(row[4], self.words, self.marks), row[5])
            for row in rows
        ]


def search_statement(query: str, *, fts: bool, limit: int, marks: tuple[str, str]) -> SearchStatement | None:
    """The statement matching every word of `query` (the last as a prefix); None when it has none.

    Its rows hold the first `SNIPPET_SCAN` characters of each message (and one more, so a cut at
    the end can tell there is more), never the whole text.
    """
    if fts and not UNSPACED_SCRIPT.search(query):
        match = fts_query(query)
        if match is None:
            return None
        # The index picks and orders the rows on its own; only those `limit` rows are joined.
        return SearchStatement(
            "SELECT m.conversation_id, c.title, m.id, m.role, substr(m.content, 1, ?), m.created_at"
            " FROM (SELECT rowid, rank FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?)"
            " AS f JOIN messages AS m ON m.n = f.rowid JOIN conversations AS c ON c.id = m.conversation_id"
            " ORDER BY f.rank",
            (SNIPPET_SCAN + 1, match, limit),
            marks,
            _fts_words(query),
        )
    # For a sqlite without FTS5, and for scripts written without spaces: slow on big histories,
    # but it finds a word anywhere in a message.
    terms = query.split()
    if not terms:
        return None
    escaped = [term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for term in terms]
    where = " AND ".join("m.content LIKE ? ESCAPE '\\'" for _ in escaped)
    return SearchStatement(
        "SELECT m.conversation_id, c.title, m.id, m.role, substr(m.content, 1, ?), m.created_at"
        f" FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id WHERE {where}"
        " ORDER BY m.created_at DESC LIMIT ?",
        (SNIPPET_SCAN + 1, *[f"%{term}%" for term in escaped], limit),
        marks,
        _words_pattern([re.escape(_fold(term)) for term in terms]),
    )


def run_search(
    read: Callable[[], AbstractContextManager[sqlite3.Connection]],
    query: str,
    *,
    fts: bool,
    **options: Unpack[SearchOptions],
) -> list[SearchHit]:
    """`ChatStore.search`, given the store's read transaction and whether it has the index."""
    marks = options.get("marks", ("[", "]"))
    statement = search_statement(query, fts=fts, limit=options.get("limit", 50), marks=marks)
    if statement is None:
        return []
    with read() as conn:
        rows = fetch_rows(conn, statement, options.get("cancelled"))
    # Cut outside the transaction: Python's share of the work does not hold the store's lock.
    return statement.hits(rows)


def fetch_rows(
    conn: sqlite3.Connection, statement: SearchStatement, cancelled: Cancelled | None = None
) -> list[Any]:
    """Run `statement`; raises `SearchCancelledError` as soon as `cancelled()` turns true.

    `cancelled` is polled from a progress handler on this thread, not answered with
    `Connection.interrupt()` from the caller's: an interrupt that lands just after the search let
    go of the connection would stop whatever took it next, such as the save of a reply. The
    handler is removed before returning, so no later statement sees it.
    """
    if cancelled is None:
        return conn.execute(statement.sql, statement.params).fetchall()
    conn.set_progress_handler(lambda: 1 if cancelled() else 0, PROGRESS_STEPS)
    try:
        return conn.execute(statement.sql, statement.params).fetchall()
    except sqlite3.OperationalError:
        if cancelled():  # SQLite says "interrupted": the handler stopped it
            raise SearchCancelledError from None
        raise
    finally:
        conn.set_progress_handler(None, 0)


def fts_query(text: str) -> str | None:
    """User text to an FTS5 query: each word a quoted phrase (no syntax errors), the last a prefix."""
    chunks = _chunks(text)
    if not chunks:
        return None
    phrases = ['"' + chunk.replace('"', '""') + '"' for chunk in chunks]
    if _is_prefix(chunks[-1]):
        phrases[-1] += "*"
    return " ".join(phrases)


def _chunks(text: str) -> list[str]:
    return [chunk for chunk in text.split() if re.search(r"\w", chunk)]


def _is_prefix(chunk: str) -> bool:
    # "C++" or "C#" as a prefix would be every word that starts with c
    return re.search(r"\w$", chunk) is not None


def _fts_words(query: str) -> re.Pattern[str]:
    """What the index matched for `query`: each word whole, the last one as a prefix."""
    chunks = _chunks(query)
    alternatives: list[str] = []
    for number, chunk in enumerate(chunks):
        tokens = re.findall(_WORD_CHAR + "+", _fold(chunk))  # "don't" is the phrase "don t"
        prefix_at = len(tokens) - 1 if number == len(chunks) - 1 and _is_prefix(chunk) else -1
        for index, token in enumerate(tokens):
            # A prefix marks the whole word it starts, as the index's own snippet did.
            end = f"{_WORD_CHAR}*" if index == prefix_at else f"(?!{_WORD_CHAR})"
            alternatives.append(f"(?<!{_WORD_CHAR}){re.escape(token)}{end}")
    return _words_pattern(alternatives)


def _words_pattern(alternatives: list[str]) -> re.Pattern[str]:
    if not alternatives:
        return re.compile("(?!)")  # matches nothing: the snippet is the start of the text
    # Longest first: where two words start at one place, the longer one is marked.
    return re.compile("|".join(sorted(alternatives, key=len, reverse=True)))


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """`char` as the index compares it: accents dropped (remove_diacritics), case folded."""
    decomposed = unicodedata.normalize("NFD", char)
    return "".join(part for part in decomposed if not unicodedata.combining(part)).casefold()


def _fold(text: str) -> str:
    return "".join(map(_fold_char, text))


def _folded(text: str) -> tuple[str, list[int] | None]:
    """`text` folded, and the index in `text` each folded character came from (None: its own;
    folding changes lengths: "ß" becomes "ss", a combining accent nothing)."""
    if text.isascii():
        return text.lower(), None
    pieces = [_fold_char(char) for char in text]
    return "".join(pieces), [at for at, piece in enumerate(pieces) for _ in piece]


def cut_snippet(text: str, words: re.Pattern[str], marks: tuple[str, str], width: int = SNIPPET_WIDTH) -> str:
    """About `width` characters of `text` around the first of `words` in its first `SNIPPET_SCAN`
    characters, each of `words` in them between `marks`; the start of `text` when none is there
    (a hit further in, or one the index found by a rule this does not copy)."""
    folded, origin = _folded(text[:SNIPPET_SCAN])
    first = words.search(folded)
    if first is None:
        return text[:width] + ("…" if len(text) > width else "")

    def place(at: int) -> int:
        return at if origin is None else origin[at]

    at = place(first.start())
    start = max(0, at - width // 2)
    stop = min(len(text), place(first.end() - 1) + 1 + width // 2)
    pieces = ["…" if start else ""]
    done = start
    for found in words.finditer(folded, first.start()):
        begin = place(found.start())
        if begin >= stop:
            break
        end = place(found.end() - 1) + 1
        stop = max(stop, end)
        pieces += [text[done:begin], marks[0], text[begin:end], marks[1]]
        done = end
    pieces += [text[done:stop], "…" if stop < len(text) else ""]
    return "".join(pieces)


def find_conversation_id(conn: sqlite3.Connection, id_or_prefix: str) -> str:
    """The full id of the conversation whose id is, or starts with, `id_or_prefix`."""
    text = id_or_prefix.strip()
    if conn.execute("SELECT 1 FROM conversations WHERE id = ?", (text,)).fetchone():
        return text
    text = text.lower()
    if not re.fullmatch(r"[0-9a-f]+", text):
        raise NotFoundError(f"no conversation {id_or_prefix!r}")
    # Hex only (checked above), so the prefix holds no LIKE wildcards; a range scan on the key.
    rows = conn.execute(
        "SELECT id FROM conversations WHERE id >= ? AND id < ? ORDER BY id LIMIT 6", (text, text + "g")
    ).fetchall()
    if not rows:
        raise NotFoundError(f"no conversation {id_or_prefix!r}")
    if len(rows) > 1:
        shown = ", ".join(str(row[0])[: len(text) + 4] for row in rows[:5])
        raise AmbiguousIdError(f"{id_or_prefix!r} matches several conversations: {shown}…")
    return str(rows[0][0])

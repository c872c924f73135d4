"""Search across every conversation: FTS5 where this sqlite has it, a LIKE scan where it does not;
and a conversation found by the start of its id.

This module builds the statement and turns its rows into hits; `ChatStore.search` runs it in the
store's read transaction, so locking and error mapping stay in one place. A query with no words
builds no statement, and so opens no transaction.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lollma_tui.core.backends.base import Role
from lollma_tui.core.chat.errors import AmbiguousIdError, NotFoundError

UNSPACED_SCRIPT = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]"
)
"""Thai, Lao, Myanmar, Khmer, Japanese kana, Chinese characters and Hangul: scripts written
without spaces between words (or, in Korean, with particles joined to them). The index takes a
whole run of them for one word, so a word inside one is looked for with LIKE."""


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
    like_term: str | None = None
    """Set for the LIKE scan: SQL gives it no snippet, so one is cut around this word."""

    def hits(self, rows: Sequence[Sequence[Any]]) -> list[SearchHit]:
        if self.like_term is None:
            return [SearchHit(*row) for row in rows]
        term = self.like_term
        return [
            SearchHit(row[0], row[1], row[2], row[3], like_snippet(row[4], term, self.marks), row[5])
            for row in rows
        ]


def search_statement(query: str, *, fts: bool, limit: int, marks: tuple[str, str]) -> SearchStatement | None:
    """The statement matching every word of `query` (the last as a prefix); None when it has none."""
    if fts and not UNSPACED_SCRIPT.search(query):
        match = fts_query(query)
        if match is None:
            return None
        return SearchStatement(
            "SELECT m.conversation_id, c.title, m.id, m.role,"
            " snippet(messages_fts, 0, ?, ?, '…', 12), m.created_at"
            " FROM messages_fts JOIN messages AS m ON m.n = messages_fts.rowid"
            " JOIN conversations AS c ON c.id = m.conversation_id"
            " WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?",
            (marks[0], marks[1], match, limit),
            marks,
        )
    # For a sqlite without FTS5, and for scripts written without spaces: slow on big histories,
    # but it finds a word anywhere in a message.
    terms = query.split()
    if not terms:
        return None
    escaped = [term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for term in terms]
    where = " AND ".join("m.content LIKE ? ESCAPE '\\'" for _ in escaped)
    return SearchStatement(
        "SELECT m.conversation_id, c.title, m.id, m.role, m.content, m.created_at FROM messages AS m"
        f" JOIN conversations AS c ON c.id = m.conversation_id WHERE {where}"
        " ORDER BY m.created_at DESC LIMIT ?",
        (*[f"%{term}%" for term in escaped], limit),
        marks,
        like_term=terms[0],
    )


def fts_query(text: str) -> str | None:
    """User text to an FTS5 query: each word a quoted phrase (no syntax errors), the last a prefix."""
    chunks = [chunk for chunk in text.split() if re.search(r"\w", chunk)]
    if not chunks:
        return None
    phrases = ['"' + chunk.replace('"', '""') + '"' for chunk in chunks]
    if re.search(r"\w$", chunks[-1]):
        phrases[-1] += "*"  # "C++" or "C#" as a prefix would be every word that starts with c
    return " ".join(phrases)


def like_snippet(text: str, term: str, marks: tuple[str, str], width: int = 60) -> str:
    at = text.casefold().find(term.casefold())
    if at < 0:
        return text[:width]
    start = max(0, at - width // 2)
    end = min(len(text), at + len(term) + width // 2)
    before = ("…" if start else "") + text[start:at]
    after = text[at + len(term) : end] + ("…" if end < len(text) else "")
    return f"{before}{marks[0]}{text[at : at + len(term)]}{marks[1]}{after}"


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

"""The ``messages`` table as the store reads and writes it: the columns, the thread walks, a row.

Shared by `store` (threads) and `store_tree` (export and import), so a message is decoded and
inserted the same way everywhere. `message_from_row` and `sampling_from_row` take rows selected
with `MESSAGE_COLUMNS` first; `WINDOW_SQL` adds the sibling count and index after them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final, cast

from lollma_tui.core.backends.base import Role
from lollma_tui.core.chat import codec
from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.errors import StoreError
from lollma_tui.core.settings import SamplingSettings

_ROLES: Final = frozenset({"system", "user", "assistant"})

MESSAGE_COLUMNS = (
    "m.n, m.id, m.parent_id, m.role, m.content, m.state, m.error, m.created_at, m.stats, m.sampling, m.depth,"
    " m.thinking"
)

WINDOW_SQL = f"""
WITH RECURSIVE path(n, parent_id, depth) AS (
    SELECT n, parent_id, depth FROM messages WHERE id = :leaf
    UNION ALL
    SELECT m.n, m.parent_id, m.depth FROM messages AS m JOIN path AS p ON m.id = p.parent_id
    WHERE p.depth > :start
)
SELECT {MESSAGE_COLUMNS},
    (SELECT count(*) FROM messages AS s
        WHERE s.parent_id IS m.parent_id AND s.conversation_id = m.conversation_id),
    (SELECT count(*) FROM messages AS s
        WHERE s.parent_id IS m.parent_id AND s.conversation_id = m.conversation_id AND s.n < m.n)
FROM path JOIN messages AS m ON m.n = path.n
WHERE path.depth < :stop
ORDER BY path.depth
"""

ON_THREAD_SQL = """
WITH RECURSIVE path(id, parent_id, depth) AS (
    SELECT id, parent_id, depth FROM messages WHERE id = :leaf
    UNION ALL
    SELECT m.id, m.parent_id, m.depth FROM messages AS m JOIN path AS p ON m.id = p.parent_id
    WHERE p.depth > :depth
)
SELECT id FROM path WHERE depth = :depth
"""


def message_from_row(row: Sequence[object]) -> Message:
    (_n, message_id, _parent, role, content, state, error, created_at, stats, _sampling, _depth, thinking) = (
        row[:12]
    )
    if role not in _ROLES:
        raise StoreError(f"message {message_id}: unknown role {role!r} in the history file")
    try:
        return Message(
            role=cast(Role, role),
            content=cast(str, content),
            id=cast(str, message_id),
            created_at=cast(float, created_at),
            state=ReplyState(cast(str, state)),
            stats=codec.stats_from_json(cast("str | None", stats), f"message {message_id} stats"),
            error=cast("str | None", error),
            thinking=cast(str, thinking),
        )
    except ValueError as exc:
        raise StoreError(f"unreadable message in the history file: {exc}") from exc


def sampling_from_row(row: Sequence[object]) -> SamplingSettings | None:
    """The sampling a reply was asked with; None where it is unknown or no longer passes the
    settings' checks (a seed an older version took): the reply itself still opens."""
    try:
        return codec.sampling_from_json(cast("str | None", row[9]), f"message {row[1]} sampling")
    except ValueError:
        return None


def insert_message(
    conn: sqlite3.Connection,
    conversation_id: str,
    message: Message,
    parent_id: str | None,
    depth: int,
    state: ReplyState,
    sampling: SamplingSettings | None,
) -> int:
    """Insert one message row as given (no leaf or title bookkeeping); returns its rowid."""
    cursor = conn.execute(
        "INSERT INTO messages(id, conversation_id, parent_id, depth, role, content, state, error,"
        " created_at, stats, sampling, thinking) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            message.id,
            conversation_id,
            parent_id,
            depth,
            message.role,
            message.content,
            state.value,
            message.error,
            message.created_at,
            None if message.stats is None else codec.dumps(message.stats),
            None if sampling is None else codec.dumps(sampling),
            message.thinking,
        ),
    )
    return cast(int, cursor.lastrowid)

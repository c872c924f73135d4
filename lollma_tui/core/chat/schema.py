"""The history database schema and its ordered upgrade steps, tracked in ``PRAGMA user_version``.

Each step runs in its own ``BEGIN IMMEDIATE`` transaction together with the version bump, so a
crash mid-upgrade leaves the file at the previous version, and two processes opening an old file
at the same time upgrade it once (the second re-reads the version after taking the write lock).

History of the schema:

- v1: conversations, and messages as a flat list ordered by ``n``.
- v2: messages form a tree (``parent_id``, ``depth``) and each conversation points at the leaf of
  its visible thread (``leaf_id``), for edit-and-resend and regenerate; replies keep the sampling
  settings that produced them; a partial index finds replies left streaming.
- v3: full-text search over message text (FTS5, external content kept in sync by triggers;
  replies are indexed when they stop streaming).
- v4: a reply's thinking (what a reasoning model wrote before its answer), saved as it streams.

Steps are never edited once released: a change is a new step. The v1 DDL stays here verbatim
because the migration tests build real v1 files from it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

V1_STATEMENTS: tuple[str, ...] = (
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        system_prompt TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )
    """,
    "CREATE INDEX conversations_by_updated ON conversations(updated_at)",
    """
    CREATE TABLE messages (
        n INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'complete',
        error TEXT,
        created_at REAL NOT NULL,
        stats TEXT
    )
    """,
    "CREATE INDEX messages_by_conversation ON messages(conversation_id, n)",
)
"""``n`` is an explicit INTEGER PRIMARY KEY so that VACUUM never renumbers it (FTS5 keys on it)."""


def _v1(conn: sqlite3.Connection) -> None:
    for statement in V1_STATEMENTS:
        conn.execute(statement)


def _v2(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE messages ADD COLUMN parent_id TEXT REFERENCES messages(id) ON DELETE CASCADE")
    conn.execute("ALTER TABLE messages ADD COLUMN depth INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE messages ADD COLUMN sampling TEXT")
    conn.execute("ALTER TABLE conversations ADD COLUMN leaf_id TEXT")
    # Children lookups and the parent FK's cascade both need parent_id leading an index.
    conn.execute("CREATE INDEX messages_by_parent ON messages(parent_id, conversation_id)")
    # recover() runs at every start: a partial index keeps it from reading every message.
    conn.execute("CREATE INDEX messages_streaming ON messages(state) WHERE state = 'streaming'")
    # A v1 conversation is one linear thread: chain each message to the one before it.
    rows = conn.execute("SELECT n, id, conversation_id FROM messages ORDER BY conversation_id, n").fetchall()
    links: list[tuple[str | None, int, int]] = []
    leaves: dict[str, str] = {}
    previous: str | None = None
    depth = 0
    current: str | None = None
    for n, message_id, conversation_id in rows:
        if conversation_id != current:
            current, previous, depth = conversation_id, None, 0
        links.append((previous, depth, n))
        previous, depth = message_id, depth + 1
        leaves[conversation_id] = message_id
    conn.executemany("UPDATE messages SET parent_id = ?, depth = ? WHERE n = ?", links)
    conn.executemany("UPDATE conversations SET leaf_id = ? WHERE id = ?", [(v, k) for k, v in leaves.items()])


FTS_STATEMENTS: tuple[str, ...] = (
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content = 'messages', content_rowid = 'n', tokenize = 'unicode61 remove_diacritics 2'
    )
    """,
    # A row is in the index, with its current text, exactly when it is not streaming. Re-indexing
    # a growing reply at every once-a-second flush would cost time proportional to its length each
    # time; this way a reply is indexed once, when it finishes (or when recover() closes it).
    """
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.state != 'streaming' BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.n, new.content);
    END
    """,
    """
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.state != 'streaming' BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.n, old.content);
    END
    """,
    """
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, state ON messages
    WHEN old.state != 'streaming' OR new.state != 'streaming' BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content)
            SELECT 'delete', old.n, old.content WHERE old.state != 'streaming';
        INSERT INTO messages_fts(rowid, content)
            SELECT new.n, new.content WHERE new.state != 'streaming';
    END
    """,
    # 'rebuild' would index streaming rows too; insert the others by hand instead.
    "INSERT INTO messages_fts(rowid, content) SELECT n, content FROM messages WHERE state != 'streaming'",
)


def fts5_available(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp.fts5_probe")
    return True


def has_fts(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'"
    ).fetchone()
    return row is not None


def _v3(conn: sqlite3.Connection) -> None:
    # Without FTS5 in this sqlite the step still counts as done; search falls back to LIKE, and
    # ensure_fts() adds the index on a later start under a sqlite that has it.
    if fts5_available(conn):
        for statement in FTS_STATEMENTS:
            conn.execute(statement)


def ensure_fts(conn: sqlite3.Connection) -> bool:
    """Create the search index if it is missing and FTS5 is available; True when search can use it."""
    if has_fts(conn):
        return True
    if not fts5_available(conn):
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not has_fts(conn):
            for statement in FTS_STATEMENTS:
                conn.execute(statement)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return True


def _v4(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE messages ADD COLUMN thinking TEXT NOT NULL DEFAULT ''")


Step = Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[tuple[int, Step], ...] = ((1, _v1), (2, _v2), (3, _v3), (4, _v4))
LATEST_VERSION = MIGRATIONS[-1][0]


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


class SchemaTooNewError(Exception):
    def __init__(self, found: int) -> None:
        super().__init__(f"schema version {found} is newer than this lollma-tui knows ({LATEST_VERSION})")
        self.found = found


def migrate(conn: sqlite3.Connection, target: int = LATEST_VERSION) -> int:
    """Bring the database up to `target`; returns the version found before. Needs autocommit mode."""
    found = user_version(conn)
    if found > LATEST_VERSION:
        raise SchemaTooNewError(found)
    for version, step in MIGRATIONS:
        if version > target:
            break
        if user_version(conn) >= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if user_version(conn) < version:
                step(conn)
                # PRAGMA takes no parameters; version is an int from the table above.
                conn.execute(f"PRAGMA user_version = {version:d}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found

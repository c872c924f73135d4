"""The conversation store: every turn saved as it happens, conversations read a window at a time.

Model: a conversation's messages form a tree (each has a parent), and the conversation points at
one leaf. The visible thread is the path from the root to that leaf; a message's index in the
thread is its ``depth``. Editing a past message adds a sibling and moves the leaf to it, so the
old branch stays in the file but leaves the visible thread; regenerating a reply does the same
one level down. Paging walks parent links up from the leaf (a recursive CTE over the primary key),
so opening a 2,000-message conversation at its tail reads only the tail.

One connection per store, guarded by a lock so a worker thread may use it too. Writes are short
``BEGIN IMMEDIATE`` transactions; reads run in a read transaction for a consistent snapshot when
another lollma-tui writes to the same file. Open with `open_store` (falls back on damage or lock)
or `ChatStore.open` (raises).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Final, Literal, Unpack, cast

from lollma_tui.core.backends.base import ReplyStats, Role
from lollma_tui.core.chat import codec
from lollma_tui.core.chat.connection import connect, store_error
from lollma_tui.core.chat.conversation import Conversation, Message, ReplyState, title_from
from lollma_tui.core.chat.errors import ConversationInUseError, NotFoundError
from lollma_tui.core.chat.history_users import HistoryUsers
from lollma_tui.core.chat.store_results import (
    ConversationSummary,
    MessageLocation,
    MessageMeta,
    ThreadWindow,
)
from lollma_tui.core.chat.store_rows import (
    MESSAGE_COLUMNS,
    ON_THREAD_SQL,
    WINDOW_SQL,
    insert_message,
    message_from_row,
    sampling_from_row,
)
from lollma_tui.core.chat.store_search import SearchHit, SearchOptions, find_conversation_id, run_search
from lollma_tui.core.chat.store_tree import (
    ConversationTree,
    StoredMessage,
    check_tree,
    insert_tree,
    read_tree_rows,
    tree_from_rows,
)
from lollma_tui.core.chat.writer import Clock, ReplyWriter
from lollma_tui.core.settings import SamplingSettings

__all__ = [
    "AT_LEAF",
    "ChatStore",
    "ConversationSummary",
    "ConversationTree",
    "MessageLocation",
    "MessageMeta",
    "ParentRef",
    "SearchHit",
    "StoredMessage",
    "ThreadWindow",
]


class _Leaf(Enum):
    LEAF = "leaf"


AT_LEAF: Final = _Leaf.LEAF
"""Default parent for a new message: the end of the visible thread."""

ParentRef = str | None | Literal[_Leaf.LEAF]


class ChatStore:
    """Conversations on disk (or in memory when `path` is None). Not an async API: every call is a
    short SQLite statement; the streaming path buffers in memory (see `ReplyWriter`)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        path: Path | None,
        fts: bool,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        flush_interval_s: float = 1.0,
    ) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self._fts = fts
        self._clock = clock
        self._wall = wall_clock
        self._flush_interval = flush_interval_s
        self._closed = False
        self.path = path
        self.users: HistoryUsers | None = None
        """This process's place among those using the file (`opening.open_store` joins them)."""

    @classmethod
    def open(
        cls,
        path: Path | None,
        *,
        busy_timeout_s: float = 3.0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        flush_interval_s: float = 1.0,
    ) -> ChatStore:
        """Open or create the store at `path` (None: in memory). Raises `StoreError` subclasses."""
        conn, fts = connect(path, busy_timeout_s)
        return cls(
            conn, path=path, fts=fts, clock=clock, wall_clock=wall_clock, flush_interval_s=flush_interval_s
        )

    @property
    def persistent(self) -> bool:
        return self.path is not None

    @property
    def has_full_text_search(self) -> bool:
        return self._fts

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.users is not None:
                self.users.close()
            # No PRAGMA optimize: every query here has one obvious index, and the ANALYZE it runs
            # (plus the checkpoint of its writes) made closing 50x slower in the benchmark.
            self._conn.close()

    def __enter__(self) -> ChatStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise store_error(exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise store_error(exc) from exc
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise store_error(exc) from exc

    # -- conversations ------------------------------------------------------------------------

    def create_conversation(self, conversation: Conversation | None = None) -> Conversation:
        """Save a new conversation (and any messages it already holds, as one thread)."""
        conversation = conversation if conversation is not None else Conversation()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO conversations(id, title, system_prompt, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    conversation.id,
                    conversation.title,
                    conversation.system_prompt,
                    conversation.created_at,
                    self._wall(),
                ),
            )
            for message in conversation.messages:
                self._add(conn, conversation.id, message, AT_LEAF, message.state, None)
        return conversation

    def new_conversation(self, system_prompt: str = "") -> Conversation:
        return self.create_conversation(Conversation(system_prompt=system_prompt, created_at=self._wall()))

    def rename(self, conversation_id: str, title: str) -> None:
        # Not an update: a chat renamed from the list keeps its place there and as the one resumed.
        self._update_conversation(conversation_id, "title", title, touch=False)

    def set_system_prompt(self, conversation_id: str, system_prompt: str) -> None:
        self._update_conversation(conversation_id, "system_prompt", system_prompt)

    def _update_conversation(
        self, conversation_id: str, column: Literal["title", "system_prompt"], value: str, touch: bool = True
    ) -> None:
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE conversations SET {column} = ?, updated_at = max(updated_at, ?) WHERE id = ?",
                (value, self._wall() if touch else 0, conversation_id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"no conversation {conversation_id}")

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation with all its messages and branches, unless another lollma-tui
        has it open (`ConversationInUseError`)."""
        if self.held_elsewhere(conversation_id):
            raise ConversationInUseError("it is open in another lollma-tui; close it there first")
        with self._write() as conn:
            # Messages go by the conversation key's cascade (the FTS triggers fire for each).
            # Unchained first: each message's own cascade to its replies would go one trigger
            # level deeper per message, and SQLite stops at 1,000 ("too many levels of trigger
            # recursion"), so a chat of 500 exchanges could never be deleted.
            conn.execute("UPDATE messages SET parent_id = NULL WHERE conversation_id = ?", (conversation_id,))
            cursor = conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            if cursor.rowcount == 0:
                raise NotFoundError(f"no conversation {conversation_id}")
        if self.users is not None:
            self.users.forget(conversation_id)

    def held_elsewhere(self, conversation_id: str) -> bool:
        """Whether another lollma-tui shows that conversation now (`HistoryUsers.hold`)."""
        return self.users is not None and self.users.held_elsewhere(conversation_id)

    def resolve_id(self, id_or_prefix: str) -> str:
        """The full id of the conversation whose id is, or starts with, `id_or_prefix`."""
        with self._read() as conn:
            return find_conversation_id(conn, id_or_prefix)

    _SUMMARY_SQL = (
        "SELECT c.id, c.title, c.created_at, c.updated_at, coalesce(m.depth + 1, 0)"
        " FROM conversations AS c LEFT JOIN messages AS m ON m.id = c.leaf_id"
    )

    def list_conversations(self, *, limit: int = 50, offset: int = 0) -> list[ConversationSummary]:
        """Most recently updated first; reads no message text."""
        with self._read() as conn:
            rows = conn.execute(
                f"{self._SUMMARY_SQL} ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [ConversationSummary(*row) for row in rows]

    def count_conversations(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM conversations").fetchone()[0])

    def get_summary(self, conversation_id: str) -> ConversationSummary:
        with self._read() as conn:
            row = conn.execute(f"{self._SUMMARY_SQL} WHERE c.id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no conversation {conversation_id}")
        return ConversationSummary(*row)

    def latest_conversation_id(self) -> str | None:
        """The conversation to resume: the most recently updated one."""
        page = self.list_conversations(limit=1)
        return page[0].id if page else None

    # -- reading a thread ---------------------------------------------------------------------

    def thread_length(self, conversation_id: str) -> int:
        return self.get_summary(conversation_id).message_count

    def load(self, conversation_id: str, *, last: int | None = None) -> ThreadWindow:
        """The visible thread, or only its last `last` messages."""
        return self._window(conversation_id, 0, None, last)

    def load_range(self, conversation_id: str, start: int, stop: int) -> ThreadWindow:
        """Messages `start` ≤ index < `stop` of the visible thread (clamped to what exists)."""
        return self._window(conversation_id, start, stop, None)

    def _window(self, conversation_id: str, start: int, stop: int | None, last: int | None) -> ThreadWindow:
        with self._read() as conn:
            head = conn.execute(
                "SELECT c.title, c.system_prompt, c.created_at, c.updated_at, c.leaf_id, m.depth"
                " FROM conversations AS c LEFT JOIN messages AS m ON m.id = c.leaf_id WHERE c.id = ?",
                (conversation_id,),
            ).fetchone()
            if head is None:
                raise NotFoundError(f"no conversation {conversation_id}")
            title, system_prompt, created_at, updated_at, leaf, leaf_depth = head
            total = 0 if leaf_depth is None else int(leaf_depth) + 1
            if last is not None:
                start, stop = max(0, total - max(0, last)), total
            start = min(max(0, start), total)
            stop = total if stop is None else min(max(start, stop), total)
            rows = (
                conn.execute(WINDOW_SQL, {"leaf": leaf, "start": start, "stop": stop}).fetchall()
                if stop > start
                else []
            )
        messages = [message_from_row(row) for row in rows]
        meta = {
            str(row[1]): MessageMeta(
                parent_id=row[2],
                index=int(row[10]),
                sampling=sampling_from_row(row),
                sibling_index=row[13],
                sibling_count=row[12],
            )
            for row in rows
        }
        conversation = Conversation(
            id=conversation_id,
            title=title,
            system_prompt=system_prompt,
            messages=messages,
            created_at=created_at,
        )
        return ThreadWindow(conversation, updated_at, start, total, meta)

    def get_message(self, message_id: str) -> Message:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages AS m WHERE m.id = ?", (message_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no message {message_id}")
        return message_from_row(row)

    def locate(self, message_id: str) -> MessageLocation:
        """Where a message is, for jumping to a search hit."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT m.conversation_id, m.depth, c.leaf_id FROM messages AS m"
                " JOIN conversations AS c ON c.id = m.conversation_id WHERE m.id = ?",
                (message_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no message {message_id}")
            conversation_id, depth, leaf = row
            found = conn.execute(ON_THREAD_SQL, {"leaf": leaf, "depth": depth}).fetchone()
        return MessageLocation(conversation_id, int(depth), found is not None and found[0] == message_id)

    def siblings(self, message_id: str) -> list[str]:
        """Ids of the alternatives at this message's place in the tree (itself included), oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT s.id FROM messages AS m JOIN messages AS s"
                " ON s.conversation_id = m.conversation_id AND s.parent_id IS m.parent_id"
                " WHERE m.id = ? ORDER BY s.n",
                (message_id,),
            ).fetchall()
        if not rows:
            raise NotFoundError(f"no message {message_id}")
        return [str(row[0]) for row in rows]

    def message_tree(self, conversation_id: str) -> ConversationTree:
        """Every message of every branch, parents before children."""
        with self._read() as conn:
            fetched = read_tree_rows(conn, conversation_id)
        return tree_from_rows(conversation_id, fetched)

    # -- writing ------------------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: str,
        message: Message,
        *,
        parent_id: ParentRef = AT_LEAF,
        sampling: SamplingSettings | None = None,
    ) -> Message:
        """Save a finished message (the user's turn, before it is sent) at the end of the thread.

        The first user message also titles an untitled conversation.
        """
        with self._write() as conn:
            self._add(conn, conversation_id, message, parent_id, message.state, sampling)
        return message

    def start_reply(
        self, conversation_id: str, *, parent_id: ParentRef = AT_LEAF, message: Message | None = None
    ) -> ReplyWriter:
        """Save an empty reply in state STREAMING and return the writer that fills it in.

        Pass the app's own `Message` (from `Conversation.start_reply`) to keep ids in step.
        """
        reply = message if message is not None else Message("assistant", "", created_at=self._wall())
        if reply.role != "assistant":
            raise ValueError("a reply must have the assistant role")
        with self._write() as conn:
            row = self._add(conn, conversation_id, reply, parent_id, ReplyState.STREAMING, None)
        return self._writer(row, reply.id, conversation_id)

    def regenerate(self, reply_id: str, *, message: Message | None = None) -> ReplyWriter:
        """A new reply to the same turn as `reply_id`; the old one stays as a sibling branch."""
        conversation_id, parent_id, role = self._message_place(reply_id)
        if role != "assistant":
            raise ValueError("only an assistant reply can be regenerated")
        return self.start_reply(conversation_id, parent_id=parent_id, message=message)

    def continue_reply(self, reply_id: str) -> ReplyWriter:
        """Stream more text onto the end of an existing reply (one that stopped at the length limit).

        Stats and sampling given to `finish` replace the old ones; leave them None to keep them.
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT n, conversation_id, role FROM messages WHERE id = ?", (reply_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no message {reply_id}")
            n, conversation_id, role = row
            if role != "assistant":
                raise ValueError("only an assistant reply can be continued")
            conn.execute("UPDATE messages SET state = 'streaming', error = NULL WHERE n = ?", (n,))
            conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (self._wall(), conversation_id)
            )
        return self._writer(n, reply_id, conversation_id)

    def branch_from(self, message_id: str, new_text: str) -> Message:
        """Edit-and-resend: a new version of `message_id` beside it, which becomes the thread's end.

        Later turns of the old version stay in the store on their branch. Returns the new message;
        the app then streams the reply with `start_reply`.
        """
        conversation_id, parent_id, role = self._message_place(message_id)
        message = Message(role, new_text, created_at=self._wall())
        with self._write() as conn:
            self._add(conn, conversation_id, message, parent_id, ReplyState.COMPLETE, None)
        return message

    def switch_branch(self, message_id: str) -> str:
        """Make the branch through `message_id` visible, down to its newest leaf; returns that leaf."""
        with self._write() as conn:
            row = conn.execute("SELECT conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no message {message_id}")
            leaf = message_id
            while child := conn.execute(
                "SELECT id FROM messages WHERE parent_id = ? ORDER BY n DESC LIMIT 1", (leaf,)
            ).fetchone():
                leaf = child[0]
            conn.execute("UPDATE conversations SET leaf_id = ? WHERE id = ?", (leaf, row[0]))
        return leaf

    def recover(self, conversation_id: str | None = None) -> int:
        """Mark replies left STREAMING by a crashed run as INCOMPLETE; returns how many. Call at
        start when no other lollma-tui uses the file (`HistoryUsers.alone`), or for one
        conversation that this process holds and is not writing to."""
        where = "state = 'streaming'" + ("" if conversation_id is None else " AND conversation_id = ?")
        args = () if conversation_id is None else (conversation_id,)
        with self._read() as conn:
            # Nearly always nothing: no write lock to wait for behind another lollma-tui's reply.
            if conn.execute(f"SELECT 1 FROM messages WHERE {where} LIMIT 1", args).fetchone() is None:
                return 0
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE messages SET state = ? WHERE {where}", (ReplyState.INCOMPLETE.value, *args)
            )
            return cursor.rowcount

    def _message_place(self, message_id: str) -> tuple[str, str | None, Role]:
        with self._read() as conn:
            row = conn.execute(
                "SELECT conversation_id, parent_id, role FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no message {message_id}")
        return row[0], row[1], cast(Role, row[2])

    def _add(
        self,
        conn: sqlite3.Connection,
        conversation_id: str,
        message: Message,
        parent_ref: ParentRef,
        state: ReplyState,
        sampling: SamplingSettings | None,
    ) -> int:
        head = conn.execute("SELECT leaf_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if head is None:
            raise NotFoundError(f"no conversation {conversation_id}")
        parent_id = head[0] if parent_ref is AT_LEAF else parent_ref
        depth = 0
        if parent_id is not None:
            parent = conn.execute(
                "SELECT depth FROM messages WHERE id = ? AND conversation_id = ?",
                (parent_id, conversation_id),
            ).fetchone()
            if parent is None:
                raise NotFoundError(f"no message {parent_id} in conversation {conversation_id}")
            depth = parent[0] + 1
        row = insert_message(conn, conversation_id, message, parent_id, depth, state, sampling)
        conn.execute(
            "UPDATE conversations SET leaf_id = ?, updated_at = ?,"
            " title = CASE WHEN title = '' AND ? = 'user' THEN ? ELSE title END WHERE id = ?",
            (message.id, self._wall(), message.role, title_from(message.content), conversation_id),
        )
        return row

    def _writer(self, row: int, message_id: str, conversation_id: str) -> ReplyWriter:
        return ReplyWriter(
            self,
            row=row,
            message_id=message_id,
            conversation_id=conversation_id,
            clock=self._clock,
            interval_s=self._flush_interval,
        )

    # -- the writer's side (ReplySink) ---------------------------------------------------------

    def append_reply_text(self, row: int, text: str, thinking: str = "") -> None:
        with self._lock:
            try:
                # One autocommitted statement: a WAL append, no fsync (synchronous=NORMAL).
                self._conn.execute(
                    "UPDATE messages SET content = content || ?, thinking = thinking || ? WHERE n = ?",
                    (text, thinking, row),
                )
            except sqlite3.Error as exc:
                raise store_error(exc) from exc

    def finish_reply(
        self,
        row: int,
        text: str,
        state: ReplyState,
        stats: ReplyStats | None,
        sampling: SamplingSettings | None,
        error: str | None,
        thinking: str = "",
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE messages SET content = content || ?, state = ?, error = ?,"
                " stats = coalesce(?, stats), sampling = coalesce(?, sampling),"
                " thinking = thinking || ? WHERE n = ?",
                (
                    text,
                    state.value,
                    error,
                    None if stats is None else codec.dumps(stats),
                    None if sampling is None else codec.dumps(sampling),
                    thinking,
                    row,
                ),
            )
            conn.execute(
                "UPDATE conversations SET updated_at = ?"
                " WHERE id = (SELECT conversation_id FROM messages WHERE n = ?)",
                (self._wall(), row),
            )

    # -- search -------------------------------------------------------------------------------

    def search(self, query: str, **options: Unpack[SearchOptions]) -> list[SearchHit]:
        """Messages of all conversations matching every word of `query` (the last word as a prefix);
        `SearchOptions` tells the rest. Hits on branches that are not visible are included;
        `locate` tells the UI where they are."""
        return run_search(self._read, query, fts=self._fts, **options)

    # -- import and maintenance ---------------------------------------------------------------

    def import_tree(self, tree: ConversationTree) -> str:
        """Save a whole conversation in one transaction; returns its id.

        If its id or any message id is already in the store (re-importing a backup), every id is
        replaced by a fresh one so nothing existing is touched. Replies that were streaming when
        exported come in as INCOMPLETE.
        """
        check_tree(tree)
        with self._write() as conn:
            return insert_tree(conn, tree)

    def integrity_check(self) -> list[str]:
        """SQLite's quick_check (reads the whole file); an empty list means healthy."""
        with self._read() as conn:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        problems = [str(row[0]) for row in rows]
        return [] if problems == ["ok"] else problems

"""A whole conversation with every branch, as export writes it and import reads it back.

`ChatStore.message_tree` and `ChatStore.import_tree` open the transactions; the statements and
the checks live here. Import never touches what is already stored: a tree whose ids are taken
(a backup imported twice) comes in under fresh ids.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from lollma_tui.core.chat.conversation import Message, ReplyState, new_id
from lollma_tui.core.chat.errors import NotFoundError, StoreError
from lollma_tui.core.chat.store_rows import (
    MESSAGE_COLUMNS,
    insert_message,
    message_from_row,
    sampling_from_row,
)
from lollma_tui.core.settings import SamplingSettings


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message: Message
    parent_id: str | None
    sampling: SamplingSettings | None = None


@dataclass(frozen=True, slots=True)
class ConversationTree:
    """A whole conversation with every branch, parents before children (export and import)."""

    id: str
    title: str
    system_prompt: str
    created_at: float
    updated_at: float
    leaf_id: str | None
    messages: tuple[StoredMessage, ...]


TreeRows = tuple[Sequence[Any], list[Any]]
"""The conversation's row and its message rows, as `read_tree_rows` fetched them."""


def read_tree_rows(conn: sqlite3.Connection, conversation_id: str) -> TreeRows:
    head = conn.execute(
        "SELECT title, system_prompt, created_at, updated_at, leaf_id FROM conversations WHERE id = ?",
        (conversation_id,),
    ).fetchone()
    if head is None:
        raise NotFoundError(f"no conversation {conversation_id}")
    # Depth order puts parents first; n keeps siblings in the order they were made.
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages AS m WHERE m.conversation_id = ? ORDER BY m.depth, m.n",
        (conversation_id,),
    ).fetchall()
    return head, rows


def tree_from_rows(conversation_id: str, fetched: TreeRows) -> ConversationTree:
    # Decoded by the caller after its read transaction ends, so the store's lock is not held for it.
    head, rows = fetched
    stored = tuple(StoredMessage(message_from_row(row), row[2], sampling_from_row(row)) for row in rows)
    title, system_prompt, created_at, updated_at, leaf_id = head
    return ConversationTree(conversation_id, title, system_prompt, created_at, updated_at, leaf_id, stored)


def insert_tree(conn: sqlite3.Connection, tree: ConversationTree) -> str:
    """Insert a checked tree (see `check_tree`) inside the caller's write transaction; returns its id."""
    if ids_taken(conn, tree) or not OWN_ID.fullmatch(tree.id):
        # Taken (a backup imported again), or not ours: commands name a chat by its first hex
        # digits, so "my-chat" from another tool could be imported but never named again.
        tree = with_fresh_ids(tree)
    conn.execute(
        "INSERT INTO conversations(id, title, system_prompt, created_at, updated_at, leaf_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (tree.id, tree.title, tree.system_prompt, tree.created_at, tree.updated_at, tree.leaf_id),
    )
    depths: dict[str, int] = {}
    for stored in tree.messages:
        message = stored.message
        depth = 0 if stored.parent_id is None else depths[stored.parent_id] + 1
        depths[message.id] = depth
        state = ReplyState.INCOMPLETE if message.state is ReplyState.STREAMING else message.state
        insert_message(conn, tree.id, message, stored.parent_id, depth, state, stored.sampling)
    return tree.id


OWN_ID = re.compile(r"[0-9a-f]{32}")
"""The ids lollma-tui gives (uuid4 hex)."""


def ids_taken(conn: sqlite3.Connection, tree: ConversationTree) -> bool:
    if conn.execute("SELECT 1 FROM conversations WHERE id = ?", (tree.id,)).fetchone():
        return True
    ids = [stored.message.id for stored in tree.messages]
    for at in range(0, len(ids), 500):
        chunk = ids[at : at + 500]
        marks = ", ".join("?" * len(chunk))
        if conn.execute(f"SELECT 1 FROM messages WHERE id IN ({marks}) LIMIT 1", chunk).fetchone():
            return True
    return False


def check_tree(tree: ConversationTree) -> None:
    seen: set[str] = set()
    for stored in tree.messages:
        message_id = stored.message.id
        if message_id in seen:
            raise StoreError(f"message id {message_id} appears twice")
        if stored.parent_id is not None and stored.parent_id not in seen:
            raise StoreError(f"message {message_id}: parent {stored.parent_id} must come before it")
        seen.add(message_id)
    if tree.leaf_id is not None and tree.leaf_id not in seen:
        raise StoreError(f"current message {tree.leaf_id} is not among the messages")
    if tree.leaf_id is None and tree.messages:
        raise StoreError("a conversation with messages must name its current message")


def with_fresh_ids(tree: ConversationTree) -> ConversationTree:
    mapping = {stored.message.id: new_id() for stored in tree.messages}
    messages = tuple(
        StoredMessage(
            replace(stored.message, id=mapping[stored.message.id]),
            None if stored.parent_id is None else mapping[stored.parent_id],
            stored.sampling,
        )
        for stored in tree.messages
    )
    leaf = None if tree.leaf_id is None else mapping[tree.leaf_id]
    return replace(tree, id=new_id(), leaf_id=leaf, messages=messages)

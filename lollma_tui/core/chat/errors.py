"""Errors raised by the conversation store; `str(error)` is one line the app can show."""

from __future__ import annotations


class StoreError(Exception):
    """Any failure of the conversation store."""


class NotFoundError(StoreError):
    """No conversation or message with that id (or id prefix)."""


class AmbiguousIdError(StoreError):
    """An id prefix matches more than one conversation."""


class StoreCorruptError(StoreError):
    """The database file is damaged or is not a SQLite database."""


class StoreLockedError(StoreError):
    """Another program held the write lock for longer than the busy timeout."""


class StoreTooOldError(StoreError):
    """The file has an older schema, which only a writer may upgrade."""


class StoreTooNewError(StoreError):
    """The file was written by a newer lollma-tui whose schema this version does not know."""


class ImportFormatError(StoreError):
    """An import file is not valid JSON or does not follow the export format."""


class ConversationInUseError(StoreError):
    """Another lollma-tui has the conversation open."""

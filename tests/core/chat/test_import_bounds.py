"""An import file is untrusted: it fails with one clear line, never with a crash or a hang."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lollma_tui.core.chat.conversation import Conversation, Message
from lollma_tui.core.chat.errors import ImportFormatError
from lollma_tui.core.chat.export import MAX_IMPORT_BYTES, export_json, import_json, parse_json
from lollma_tui.core.chat.store import ChatStore

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    opened = ChatStore.open(tmp_path / "history.db")
    yield opened
    opened.close()


@pytest.fixture
def exported(store: ChatStore) -> dict[str, Any]:
    chat = Conversation(title="Lighthouses", created_at=1_764_000_000.0)
    chat.messages += [
        Message("user", "how do lighthouses work", created_at=1_764_000_001.0),
        Message("assistant", "a lamp and a lens", created_at=1_764_000_002.0),
    ]
    store.create_conversation(chat)
    document: dict[str, Any] = json.loads(export_json(store, chat.id))
    return document


def refused(document: Any, store: ChatStore) -> str:
    before = store.count_conversations()
    text = document if isinstance(document, str | bytes) else json.dumps(document)
    with pytest.raises(ImportFormatError) as caught:
        import_json(store, text)
    assert store.count_conversations() == before, "nothing is written"
    return str(caught.value)


def _set(*path: Any, value: Any) -> Edit:
    def apply(document: dict[str, Any]) -> None:
        target = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return apply


@pytest.mark.parametrize(
    ("edit", "place"),
    [
        (_set("conversation", "updated_at", value=1e300), "conversation.updated_at"),
        (_set("conversation", "created_at", value=-1.0), "conversation.created_at"),
        (_set("messages", 1, "created_at", value=1e300), "messages[1].created_at"),
        (_set("exported_at", value=253_402_300_800), "top level.exported_at"),
        # Found by the fuzzer: an integer with no float made the range check itself raise.
        (_set("exported_at", value=10**400), "top level.exported_at"),
        (_set("conversation", "created_at", value=float("nan")), "conversation.created_at"),
    ],
    ids=["updated 1e300", "created before 1970", "message 1e300", "exported after 9999", "10**400", "NaN"],
)
def test_timestamps_outside_the_calendar_are_refused(
    exported: dict[str, Any], store: ChatStore, edit: Edit, place: str
) -> None:
    edit(exported)
    message = refused(exported, store)
    assert place in message and "between 1970 and 9999" in message


def test_the_last_second_of_year_9999_is_a_date(exported: dict[str, Any], store: ChatStore) -> None:
    exported["conversation"]["updated_at"] = 253_402_300_799
    imported = import_json(store, json.dumps(exported))
    assert store.list_conversations()[0].id == imported


def test_deeply_nested_json_is_an_import_error(store: ChatStore) -> None:
    assert "nested too deeply" in refused("[" * 100_000 + "]" * 100_000, store)
    assert "nested too deeply" in refused('{"a":' * 50_000 + "1" + "}" * 50_000, store)


def test_an_integer_of_thousands_of_digits_is_an_import_error(store: ChatStore) -> None:
    assert "invalid JSON" in refused('{"version": ' + "9" * 5000 + "}", store)


def test_integers_beyond_64_bits_are_refused(exported: dict[str, Any], store: ChatStore) -> None:
    exported["messages"][1]["sampling"] = {"seed": 1 << 70}
    assert "messages[1].sampling.seed: integer out of range" in refused(exported, store)


def test_lone_surrogates_are_refused(exported: dict[str, Any], store: ChatStore) -> None:
    text = json.dumps(exported).replace("a lamp and a lens", "a lamp \\ud800 and a lens")
    assert "messages[1].content: text with an unpaired surrogate" in refused(text, store)
    text = json.dumps(exported).replace('"Lighthouses"', '"\\udfff"')
    assert "conversation.title" in refused(text, store)


def test_huge_values_are_described_briefly(exported: dict[str, Any], store: ChatStore) -> None:
    exported["format"] = "x" * 1_000_000
    exported["messages"][0]["role"] = [[[[["deep"]]]]]
    message = refused(exported, store)
    assert len(message) < 300


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path: Path, store: ChatStore) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as file:
        file.truncate(MAX_IMPORT_BYTES + 1)
    with pytest.raises(ImportFormatError, match="larger than 64 MiB"):
        import_json(store, big)
    with pytest.raises(ImportFormatError, match="larger than 64 MiB"):
        parse_json(b" " * (MAX_IMPORT_BYTES + 1))


def _import_in_thread(store: ChatStore, path: Path) -> BaseException | None:
    """Import on another thread (as the app does); a wait on the file fails the test."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            import_json(store, path)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():
        if path.is_fifo():
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # release the blocked open
        pytest.fail(f"importing {path} was still busy after 30 s")
    return outcome[0]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path, store: ChatStore) -> None:
    fifo = tmp_path / "chat.json"
    os.mkfifo(fifo)
    error = _import_in_thread(store, fifo)
    assert isinstance(error, ImportFormatError) and "FIFO" in str(error)


def test_dev_zero_is_refused_without_reading_it(tmp_path: Path, store: ChatStore) -> None:
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    error = _import_in_thread(store, zero)
    assert isinstance(error, ImportFormatError) and "character device" in str(error)
    error = _import_in_thread(store, Path("/dev/zero"))
    assert isinstance(error, ImportFormatError) and "not a regular file" in str(error)

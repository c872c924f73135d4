"""Fuzzing conversation import: any file is refused with one line, or imported and then listed,
shown and exported again without an error.

Cases are a real export (a conversation with stats and sampling settings) with places replaced
by arbitrary JSON values or removed, plus arbitrary documents and bytes.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzzing import fuzz, json_values, mutated_json, same_shape_json
from hypothesis import event, given, strategies as st

from lollma_tui.core.backends.base import ReplyStats, RunSetup
from lollma_tui.core.chat import codec
from lollma_tui.core.chat.conversation import Conversation, Message
from lollma_tui.core.chat.errors import ImportFormatError
from lollma_tui.core.chat.export import export_json, export_markdown, parse_json
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.safe_text import clean_text
from lollma_tui.core.settings import BackendKind, SamplingSettings


def _exported() -> dict[str, Any]:
    setup = RunSetup(
        backend=BackendKind.LLAMA_CPP,
        model="tiny",
        quant="Q4_K_M",
        n_gpu_layers=2,
        n_layers=4,
        n_ctx=2048,
        n_threads=2,
        n_batch=256,
        flash_attn=False,
    )
    stats = ReplyStats(
        setup=setup,
        ttft_s=0.2,
        prompt_tokens=12,
        prompt_tokens_evaluated=10,
        prompt_tps=300.0,
        gen_tokens=5,
        gen_tps=50.0,
        total_s=0.4,
        load_s=1.0,
    )
    chat = Conversation(title="Seed", system_prompt="Be brief.", created_at=1_764_000_000.0)
    chat.messages += [
        Message("user", "hello", created_at=1_764_000_001.0),
        Message("assistant", "hi there", created_at=1_764_000_002.0, stats=stats),
    ]
    with tempfile.TemporaryDirectory() as folder, ChatStore.open(Path(folder) / "h.db") as store:
        store.create_conversation(chat)
        document: dict[str, Any] = json.loads(export_json(store, chat.id))
    document["messages"][1]["sampling"] = codec.to_jsonable(SamplingSettings(stop=("###",)))
    return document


SEED = _exported()


@pytest.fixture(scope="module")
def store() -> Iterator[ChatStore]:
    with tempfile.TemporaryDirectory() as folder, ChatStore.open(Path(folder) / "h.db") as opened:
        yield opened


def check(store: ChatStore, content: str | bytes) -> None:
    try:
        tree = parse_json(content)
    except ImportFormatError as error:
        message = str(error)
        tree = None
    if tree is None:
        assert 0 < len(message) < 1000, "one short line"
        event("refused")
        return
    event("imported")
    conversation_id = store.import_tree(tree)
    for summary in store.list_conversations(limit=5):
        time.strftime("%Y-%m-%d %H:%M", time.localtime(summary.updated_at))
        clean_text(summary.title, keep_lines=False).encode("utf-8")
    window = store.load(conversation_id)
    for message in window.conversation.messages:
        time.strftime("%d %b %Y", time.localtime(message.created_at))
        clean_text(message.content).encode("utf-8")
    export_markdown(store, conversation_id).encode("utf-8")
    assert parse_json(export_json(store, conversation_id)).title == tree.title


@given(document=mutated_json(SEED, changes=3))
@fuzz
def test_a_damaged_export_is_refused_or_imported_whole(store: ChatStore, document: Any) -> None:
    check(store, json.dumps(document))


@given(document=same_shape_json(SEED))
@fuzz
def test_hostile_values_in_a_well_formed_export(store: ChatStore, document: Any) -> None:
    check(store, json.dumps(document))


@given(content=st.one_of(json_values(max_leaves=30).map(json.dumps), st.binary(), st.text()))
@fuzz
def test_any_document_or_bytes_are_refused_or_imported(store: ChatStore, content: str | bytes) -> None:
    check(store, content)

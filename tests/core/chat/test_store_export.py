"""Markdown and JSON export, JSON import: round trips, and refusals that leave the store unchanged."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from store_helpers import dump, sample_sampling, sample_stats

from lollma_tui.core.backends.base import ReplyStats, RunSetup
from lollma_tui.core.chat import codec
from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.errors import ImportFormatError, StoreError
from lollma_tui.core.chat.export import (
    FORMAT,
    export_file_name,
    export_json,
    export_markdown,
    import_json,
    parse_json,
    path_argument,
)
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.settings import SamplingSettings

Reopen = Callable[[], ChatStore]


@pytest.fixture
def chat_id(store: ChatStore) -> str:
    chat = store.new_conversation("You are a physicist.")
    q1 = store.add_message(chat.id, Message("user", "What is a photon?"))
    writer = store.start_reply(chat.id)
    writer.append_delta("A quantum of light.\n\n```python\nprint('hi')")
    writer.finish(ReplyState.STOPPED, stats=sample_stats(), sampling=sample_sampling())
    retry = store.regenerate(writer.message_id)
    retry.append_delta("A particle of light.")
    retry.finish(
        ReplyState.COMPLETE,
        stats=sample_stats(gen_tps=12.5, prompt_tokens_evaluated=None),
        thinking="Photons are quanta.\nSay it simply.",
    )
    store.add_message(chat.id, Message("user", "Thanks"))
    failed = store.start_reply(chat.id)
    failed.finish(ReplyState.ERROR, error="the model worker crashed")
    store.branch_from(q1.id, "What is a gluon?")
    store.switch_branch(q1.id)
    return chat.id


def _without_exported_at(text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(text)
    document.pop("exported_at")
    return document


def test_json_round_trip_is_exact(store: ChatStore, chat_id: str, reopen: Reopen) -> None:
    exported = export_json(store, chat_id)
    store.delete_conversation(chat_id)

    assert import_json(store, exported) == chat_id
    again = reopen()
    assert again.message_tree(chat_id) == parse_json(exported)
    assert _without_exported_at(export_json(again, chat_id)) == _without_exported_at(exported)
    thread = [m.content for m in again.load(chat_id).conversation.messages]
    assert thread == ["What is a photon?", "A particle of light.", "Thanks", ""]


def test_json_holds_every_branch_stat_and_setting(store: ChatStore, chat_id: str) -> None:
    document = json.loads(export_json(store, chat_id))
    assert (document["format"], document["version"]) == (FORMAT, 1)
    messages = document["messages"]
    assert len(messages) == 6
    stopped = next(m for m in messages if m["state"] == "stopped")
    assert stopped["stats"]["setup"]["gpu_share"] == 0.625
    assert stopped["stats"]["setup"]["backend"] == "ollama"
    assert stopped["sampling"]["stop"] == ["</s>", "\nUser:"]
    assert next(m for m in messages if m["state"] == "error")["error"] == "the model worker crashed"
    assert document["conversation"]["system_prompt"] == "You are a physicist."


def test_reimporting_a_backup_gets_fresh_ids(store: ChatStore, chat_id: str, db_path: Path) -> None:
    exported = export_json(store, chat_id)
    path = db_path.parent / "backup.json"
    path.write_text(exported)

    new_id = import_json(store, path)

    assert new_id != chat_id
    assert store.count_conversations() == 2
    old = [m.content for m in store.load(chat_id).conversation.messages]
    new = [m.content for m in store.load(new_id).conversation.messages]
    assert old == new
    assert not set(store.siblings(store.load(new_id).conversation.messages[0].id)) & set(
        store.siblings(store.load(chat_id).conversation.messages[0].id)
    )


def _first_reply(document: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = next(m for m in document["messages"] if m["sampling"] is not None)
    return reply


def _mutations() -> list[tuple[str, Callable[[dict[str, Any]], object]]]:
    return [
        ("wrong format", lambda d: d.update(format="something-else")),
        ("newer version", lambda d: d.update(version=99)),
        ("version as text", lambda d: d.update(version="1")),
        ("unknown top key", lambda d: d.update(extra=1)),
        ("no messages key", lambda d: d.pop("messages")),
        ("bad role", lambda d: d["messages"][1].update(role="bot")),
        ("bad state", lambda d: d["messages"][1].update(state="done")),
        ("content not text", lambda d: d["messages"][2].update(content=5)),
        ("created_at text", lambda d: d["messages"][2].update(created_at="yesterday")),
        ("dangling parent", lambda d: d["messages"][3].update(parent_id="nowhere")),
        ("duplicate id", lambda d: d["messages"][3].update(id=d["messages"][2]["id"])),
        ("child before parent", lambda d: d["messages"].reverse()),
        ("leaf missing", lambda d: d["conversation"].update(current_message_id="gone")),
        ("bad stats type", lambda d: _first_reply(d)["stats"].update(gen_tokens="many")),
        ("unknown stats key", lambda d: _first_reply(d)["stats"]["setup"].update(vram=1)),
        ("bad backend", lambda d: _first_reply(d)["stats"]["setup"].update(backend="vllm")),
        ("sampling out of range", lambda d: _first_reply(d)["sampling"].update(temperature=9.0)),
        ("bool as int", lambda d: _first_reply(d)["sampling"].update(top_k=True)),
        ("last message bad", lambda d: d["messages"][-1].update(role=None)),
    ]


def test_a_file_whose_ids_are_not_ours_gets_ids_the_history_commands_can_name(
    store: ChatStore, chat_id: str
) -> None:
    # Ids are looked up by their first hex digits (`history show 3f2a`); "my-chat" could be
    # imported but never named again.
    document = json.loads(export_json(store, chat_id))
    store.delete_conversation(chat_id)
    document["conversation"]["id"] = "My-Chat-Export-1"
    imported = import_json(store, json.dumps(document))
    assert imported != "My-Chat-Export-1"
    assert store.resolve_id(imported[:8]) == imported
    assert store.message_tree(imported).title == document["conversation"]["title"]


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[name for name, _ in _mutations()])
def test_invalid_import_writes_nothing(
    store: ChatStore, chat_id: str, db_path: Path, name: str, mutate: Callable[[dict[str, Any]], object]
) -> None:
    document = json.loads(export_json(store, chat_id))
    store.delete_conversation(chat_id)  # so a valid file would import under its own ids
    mutate(document)
    before = dump(db_path)

    with pytest.raises(ImportFormatError) as caught:
        import_json(store, json.dumps(document))

    assert "\n" not in str(caught.value)
    assert dump(db_path) == before


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b"\xff\xfe\x00", "null", '{"format": 1}'])
def test_malformed_files_are_refused(store: ChatStore, db_path: Path, data: str | bytes) -> None:
    before = dump(db_path)
    with pytest.raises(ImportFormatError, match="not a"):
        import_json(store, data)
    assert dump(db_path) == before


def test_a_typed_path_that_cannot_be_looked_at_is_a_reason_not_a_crash(store: ChatStore) -> None:
    # `/import ~models/chat.json` (a typo of ~/: no user "models") raised out of pathlib and
    # ended the app.
    # Typed after /import or /export it is refused by name: an export made a folder `~nosuchuser`.
    with pytest.raises(FileNotFoundError, match=r"no user named 'nosuchuser' for ~nosuchuser"):
        path_argument("~nosuchuser/chat.json")
    with pytest.raises(ImportFormatError, match=r"^cannot read ~nosuchuser/chat\.json: No such file"):
        import_json(store, Path("~nosuchuser/chat.json"))


def test_a_dropped_file_escaped_for_a_shell_is_the_file_it_names(tmp_path: Path) -> None:
    # macOS Terminal, iTerm and kitty drop `my\ notes.json`: "cannot read …/my\ notes.json".
    (tmp_path / "my notes.json").write_text("{}")
    assert path_argument(f"{tmp_path}/my\\ notes.json") == (tmp_path / "my notes.json", False)
    assert path_argument(f"{tmp_path}/new\\ folder/") == (tmp_path / "new folder", True)
    # A name that really holds a backslash is taken as it is.
    (tmp_path / "odd\\name.json").write_text("{}")
    assert path_argument(f"{tmp_path}/odd\\name.json") == (tmp_path / "odd\\name.json", False)


def test_a_markdown_export_offered_for_import_says_which_file_to_use(
    store: ChatStore, chat_id: str, db_path: Path
) -> None:
    before = dump(db_path)
    with pytest.raises(ImportFormatError) as caught:
        import_json(store, export_markdown(store, chat_id))
    assert str(caught.value).startswith("this is a Markdown export, which is for reading")
    assert "/export json" in str(caught.value)
    assert dump(db_path) == before
    # Any other Markdown is just not an export.
    with pytest.raises(ImportFormatError, match="not a conversation export: invalid JSON"):
        import_json(store, "---\ntitle: notes\n---\n# Notes\n")


def test_a_failure_while_writing_rolls_back(store: ChatStore, chat_id: str, db_path: Path) -> None:
    tree = parse_json(export_json(store, chat_id))
    store.delete_conversation(chat_id)
    before = dump(db_path)
    # Past validation, the database's own CHECK refuses the last row: the rows before it must go too.
    last = tree.messages[-1]
    broken = dataclasses.replace(last, message=dataclasses.replace(last.message, role="bot"))  # type: ignore[arg-type]
    tree = dataclasses.replace(tree, messages=(*tree.messages[:-1], broken))

    with pytest.raises(StoreError):
        store.import_tree(tree)

    assert dump(db_path) == before
    assert store.count_conversations() == 0


def test_codec_round_trips_every_field() -> None:
    stats = sample_stats()
    for field in dataclasses.fields(ReplyStats):
        assert getattr(stats, field.name) != field.default, field.name
    for field in dataclasses.fields(RunSetup):
        assert getattr(stats.setup, field.name) != field.default, field.name
    sampling = sample_sampling()
    for field in dataclasses.fields(SamplingSettings):
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default  # type: ignore[misc]
        assert getattr(sampling, field.name) != default, field.name

    assert codec.stats_from_json(codec.dumps(stats), "stats") == stats
    assert codec.sampling_from_json(codec.dumps(sampling), "sampling") == sampling
    unset = sample_stats(ttft_s=None, prompt_tps=None, gen_tps=None, load_s=None)
    assert codec.stats_from_json(codec.dumps(unset), "stats") == unset


def test_markdown_is_readable_and_complete(store: ChatStore, chat_id: str) -> None:
    text = export_markdown(store, chat_id, exported_at=1_764_000_000.0)
    front, body = text.split("---\n", 2)[1:]
    assert 'title: "What is a photon?"' in front
    assert f"conversation_id: {chat_id}" in front
    assert "messages: 4" in front
    # The Ollama host is named: two machines serve the same tag (a local one is not named).
    assert '  - "gemma-3-270m · Q4_K_M · ollama on gpu-box:11434"' in front
    assert "exported: 2025-11-24T16:00:00Z" in front
    assert "## System prompt\n\n> You are a physicist." in body
    assert "## You · " in body
    assert "## Assistant (gemma-3-270m Q4_K_M) · " in body
    assert "A particle of light." in body
    assert "A quantum of light." not in body
    setup = "gemma-3-270m · Q4_K_M · ollama on gpu-box:11434 · ngl 12/19 · 62% in GPU memory · ctx 8192"
    assert f"> - setup: {setup}" in body
    assert "12.5 tok/s · 128 tokens · 0.19 s to first token · prompt 42 tokens at 812 tok/s" in body
    assert "> - state: failed: the model worker crashed" in body


def test_markdown_names_the_ollama_host_only_when_it_is_not_the_local_one(store: ChatStore) -> None:
    conversation = store.create_conversation()
    for server in ("http://127.0.0.1:11434", "http://beta:11434"):
        stats = sample_stats()
        stats = dataclasses.replace(stats, setup=dataclasses.replace(stats.setup, server=server))
        store.add_message(conversation.id, Message("user", "hello"))
        store.add_message(conversation.id, Message("assistant", "hi", stats=stats))
    front = export_markdown(store, conversation.id).split("---\n", 2)[1]
    local, beta = "gemma-3-270m · Q4_K_M · ollama", "gemma-3-270m · Q4_K_M · ollama on beta:11434"
    assert f'models:\n  - "{local}"\n  - "{beta}"\n' in front


def test_markdown_shows_sampling_state_and_closes_open_fences(store: ChatStore, chat_id: str) -> None:
    store.switch_branch(store.siblings(store.load(chat_id).conversation.messages[1].id)[0])
    body = export_markdown(store, chat_id)
    assert "print('hi')\n```\n" in body
    assert "> - state: stopped" in body
    assert "(12 from cache)" in body
    assert "> - sampling: temperature 0.3 · top_p 0.5 · top_k 7 · min_p 0.01 · repeat penalty 1.25" in body
    assert 'seed 1234 · max 99 tokens · stop at "</s>", "\\nUser:"' in body


def test_a_replys_thinking_travels_in_json_and_is_folded_in_markdown(store: ChatStore, chat_id: str) -> None:
    document = json.loads(export_json(store, chat_id))
    thinking = {m["content"]: m.get("thinking") for m in document["messages"]}
    # Written only for a reply that has some, so files from before it was kept import as they were.
    assert thinking["A particle of light."] == "Photons are quanta.\nSay it simply."
    assert thinking["What is a photon?"] is None
    markdown = export_markdown(store, chat_id)
    folded = markdown.index("<details><summary>thinking</summary>")
    assert folded < markdown.index("> Photons are quanta.") < markdown.index("</details>")
    assert markdown.index("</details>") < markdown.index("A particle of light.")


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("नमस्ते दुनिया", "नमस्ते-दुनिया.md"),  # vowel signs were cut out as separators
        (unicodedata.normalize("NFD", "été notes"), "été-notes.md"),  # a decomposed accent too
        ("a" * 47 + " bcd", "a" * 47 + ".md"),  # cut at 48, it ended in "-"
        ("Hello, World_x!", "hello-world-x.md"),
        ("!!!", "conversation.md"),
    ],
)
def test_an_export_is_named_after_its_title_in_any_script(title: str, name: str) -> None:
    assert export_file_name(title, "md") == name

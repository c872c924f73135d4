"""`lollma-tui history` end to end: the real command in a subprocess against a real history file."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import pty
import random
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from history_support import FakeClock, Saved, add_turn
from other_instance import another_instance
from store_helpers import sample_stats

from lollma_tui.cli_history import history_main
from lollma_tui.core.chat.conversation import Conversation, Message
from lollma_tui.core.chat.errors import NotFoundError
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.settings import BackendKind

ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    *args: str,
    stdin: int | None = subprocess.DEVNULL,
    input_text: str | None = None,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TZ": "UTC"}
    return subprocess.run(
        [sys.executable, "-m", "lollma_tui.cli_history", *args],
        cwd=cwd,
        env=environment,
        stdin=None if input_text is not None else stdin,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=60,
    )


def lines(text: str) -> list[str]:
    return text.splitlines()


def dump(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def opened(path: Path) -> ChatStore:
    return ChatStore.open(path)


# -- list ------------------------------------------------------------------------------------


def test_list_shows_newest_first_with_counts(saved: Saved, history_path: Path) -> None:
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    rows = lines(result.stdout)
    with opened(history_path) as store:
        expected = store.list_conversations(limit=10)
    assert [row.split()[0] for row in rows] == [summary.id[:8] for summary in expected]
    assert [summary.id for summary in expected] == list(reversed(saved.oldest_first))
    assert rows[0].endswith("list three primes")
    assert "2 msgs" in rows[1] and rows[1].endswith("Pasta")  # the visible thread only: 2 of 4
    assert rows[2].endswith("Quantum chat")
    assert result.stderr == ""


def test_list_limit_and_offset(saved: Saved) -> None:
    result = run_cli("list", "--limit", "1", "--offset", "1")
    assert result.returncode == 0
    assert [row.split()[0] for row in lines(result.stdout)] == [saved.pasta[:8]]
    assert "--offset 2" in result.stderr
    # --limit 0 listed nothing and said "nothing after 0 of 3", as if the history were empty.
    refused = run_cli("list", "--limit", "0")
    assert refused.returncode == 2 and "--limit: expected 1 or more" in refused.stderr


def test_list_reads_no_message_text(
    saved: Saved, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("list must not read messages")

    for method in ("load", "load_range", "message_tree", "get_message", "search"):
        monkeypatch.setattr(ChatStore, method, refuse)
    assert history_main(["list"]) == 0
    assert len(lines(capsys.readouterr().out)) == 3


def test_list_without_a_history_file_creates_nothing(history_path: Path) -> None:
    result = run_cli("list")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no conversations" in result.stderr
    assert not history_path.parent.exists()


# -- show ------------------------------------------------------------------------------------


def test_show_prints_the_visible_thread(saved: Saved) -> None:
    result = run_cli("show", saved.pasta[:6])
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("Pasta\n")
    assert "how long to boil penne" in text
    assert "Eleven minutes, then taste" in text
    assert "spaghetti" not in text and "nine minutes" not in text  # the old branch
    assert "version 2 of 2" in text
    assert "⤷ stopped" in text
    assert "qwen3-0.6b Q4_K_M" in text


def test_show_includes_stats_and_system_prompt(saved: Saved) -> None:
    quantum = run_cli("show", saved.quantum).stdout
    assert "77.1 tok/s" in quantum and "0.19 s to first token" in quantum
    assert "ngl 12/19" in quantum
    notes = run_cli("show", saved.notes).stdout
    assert "System prompt:\n  Answer briefly." in notes


def test_show_neutralises_terminal_escapes(history_path: Path) -> None:
    with opened(history_path) as store:
        chat = store.new_conversation()
        store.add_message(chat.id, Message("user", "clear\x1b[2J the screen\x07"))
    result = run_cli("show", chat.id)
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "the screen" in result.stdout


def test_show_sets_a_replys_thinking_off_before_its_answer(history_path: Path) -> None:
    with opened(history_path) as store:
        chat = store.new_conversation()
        store.add_message(chat.id, Message("user", "2+2?"))
        store.add_message(chat.id, Message("assistant", "Four.", thinking="Two plus two\n\x1b[2Jis four."))
    text = run_cli("show", chat.id).stdout
    assert "  ┆ Two plus two\n  ┆ is four.\nFour." in text.replace("[2J", "")
    assert "\x1b" not in text


def test_show_names_a_model_served_by_its_gguf_path_by_its_file_name(history_path: Path) -> None:
    # llama-cpp-python's server, started without --model_alias, names its model by the path.
    path = "/home/me/models/qwen2.5-0.5b-instruct-q8_0.gguf"
    setup = dataclasses.replace(sample_stats().setup, backend=BackendKind.OPENAI, model=path, quant="Q8_0")
    with opened(history_path) as store:
        chat = store.new_conversation()
        store.add_message(chat.id, Message("user", "hi"))
        store.add_message(chat.id, Message("assistant", "hello", stats=sample_stats(setup=setup)))
    text = run_cli("show", chat.id).stdout
    assert "── Assistant · qwen2.5-0.5b-instruct-q8_0.gguf Q8_0 · " in text
    assert "/home/me/models" not in text


@pytest.mark.parametrize("command", ["show", "export", "delete"])
def test_unknown_id_is_one_line_and_exit_2(saved: Saved, command: str) -> None:
    result = run_cli(command, "0123abcd", "--yes") if command == "delete" else run_cli(command, "0123abcd")
    assert result.returncode == 2
    assert result.stdout == ""
    assert lines(result.stderr) == ["lollma-tui history: no conversation '0123abcd'"]


def test_ambiguous_prefix_is_one_line_and_exit_2(history_path: Path) -> None:
    with opened(history_path) as store:
        store.create_conversation(Conversation(id="abcd" + "0" * 28, title="one"))
        store.create_conversation(Conversation(id="abcd" + "1" * 28, title="two"))
    result = run_cli("show", "abcd")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(lines(result.stderr)) == 1
    assert "matches several conversations" in result.stderr


# -- export and import -----------------------------------------------------------------------


def test_export_markdown_to_stdout(saved: Saved) -> None:
    result = run_cli("export", saved.quantum[:8], "--format", "md")
    assert result.returncode == 0
    assert result.stdout.startswith('---\ntitle: "Quantum chat"\n')
    assert "# Quantum chat" in result.stdout
    assert "Entanglement links two particles" in result.stdout
    assert result.stderr == ""


def test_a_reply_a_crash_left_being_written_reads_as_incomplete(history_path: Path, tmp_path: Path) -> None:
    # `history show` and both exports said "still being written" (JSON "streaming") of a reply
    # whose app had been killed, with no lollma-tui running.
    store = ChatStore.open(history_path)
    try:
        chat = store.create_conversation(Conversation(title="Crashed"))
        store.add_message(chat.id, Message("user", "tell me a story"))
        writer = store.start_reply(chat.id)
        writer.append_delta("Once upon a")
        writer.flush()  # and then the app was killed: no finish
    finally:
        store.close()
    shown = run_cli("show", chat.id, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "incomplete (the app closed while writing)" in shown.stdout
    assert "still being written" not in shown.stdout
    markdown = run_cli("export", chat.id, cwd=tmp_path).stdout
    assert "incomplete (the app closed while writing)" in markdown and "still being written" not in markdown
    document = json.loads(run_cli("export", chat.id, "--format", "json", cwd=tmp_path).stdout)
    assert [m["state"] for m in document["messages"]][-1] == "incomplete"


def test_export_to_a_private_file(saved: Saved, tmp_path: Path) -> None:
    target = tmp_path / "out" / "quantum.md"
    target.parent.mkdir()
    result = run_cli("export", saved.quantum, "-o", str(target))
    assert result.returncode == 0
    assert result.stdout == ""
    assert target.read_text(encoding="utf-8").startswith("---\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["quantum.md"]  # no temporary file left


def test_export_to_a_folder_writes_a_file_named_after_the_chat_in_it(saved: Saved, tmp_path: Path) -> None:
    # It said "already exists (--force replaces it)", and with --force "Is a directory".
    folder = tmp_path / "exports"
    folder.mkdir()
    result = run_cli("export", saved.quantum, "-o", str(folder), "--format", "json")
    assert result.returncode == 0, result.stderr
    (written,) = folder.iterdir()
    assert written.name == "quantum-chat.json"
    assert str(written) in result.stderr
    assert json.loads(written.read_text(encoding="utf-8"))["conversation"]["id"] == saved.quantum


def test_export_to_a_path_ending_in_a_slash_makes_that_folder(saved: Saved, tmp_path: Path) -> None:
    # As /export in the app. It wrote a file named `exports`, and `-o exports/a.md` then failed
    # with "File exists".
    folder = tmp_path / "exports"
    result = run_cli("export", saved.quantum, "-o", f"{folder}/")
    assert result.returncode == 0, result.stderr
    assert folder.is_dir(), result.stderr
    assert [p.name for p in folder.iterdir()] == ["quantum-chat.md"]
    assert run_cli("export", saved.pasta, "-o", str(folder / "pasta.md")).returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == ["pasta.md", "quantum-chat.md"]


def test_export_to_the_home_of_no_user_is_refused_without_making_a_folder(
    saved: Saved, tmp_path: Path
) -> None:
    # `~typo/x.md` (meant `~/x.md`) made a folder named `~typo` in the working folder.
    here = tmp_path / "here"
    here.mkdir()
    result = run_cli("export", saved.quantum, "-o", "~no-such-user-here/x.md", cwd=here)
    assert result.returncode == 1
    assert "no user named 'no-such-user-here'" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(here.iterdir()) == []


def test_export_json_infers_the_format_from_the_file_name(saved: Saved, tmp_path: Path) -> None:
    target = tmp_path / "pasta.json"
    assert run_cli("export", saved.pasta, "-o", str(target)).returncode == 0
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["format"] == "lollma-tui/conversation"
    assert len(document["messages"]) == 4  # every branch


def test_export_json_round_trips_through_import(saved: Saved, history_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "pasta.json"
    assert run_cli("export", saved.pasta, "--format", "json", "-o", str(target)).returncode == 0
    with opened(history_path) as store:
        before = store.count_conversations()
    result = run_cli("import", str(target))
    assert result.returncode == 0, result.stderr
    new_id = result.stdout.strip()
    assert "under new ids (its ids were already in the history)" in result.stderr
    with opened(history_path) as store:
        assert store.count_conversations() == before + 1
        original, copy = store.load(saved.pasta), store.load(new_id)
        assert new_id != saved.pasta
        assert copy.conversation.title == original.conversation.title

        def thread(window_messages: list[Message]) -> list[tuple[object, ...]]:
            return [(m.role, m.content, m.state, m.stats, m.created_at) for m in window_messages]

        assert thread(copy.conversation.messages) == thread(original.conversation.messages)
        assert len(store.message_tree(new_id).messages) == len(store.message_tree(saved.pasta).messages)
    # And what it prints is the same conversation.
    assert (
        run_cli("show", new_id).stdout.split("\n", 2)[2]
        == run_cli("show", saved.pasta).stdout.split("\n", 2)[2]
    )
    # A file from elsewhere, whose ids are not ours, was said to be "a copy" of one already here.
    document = json.loads(target.read_text(encoding="utf-8"))
    document["conversation"]["id"] = "x"
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps(document), encoding="utf-8")
    from_elsewhere = run_cli("import", str(foreign), cwd=tmp_path)
    assert "under new ids (its ids were not lollma-tui's)" in from_elsewhere.stderr, from_elsewhere.stderr


def test_import_counts_the_messages_as_list_does(saved: Saved, tmp_path: Path) -> None:
    # It said "4 messages" for a chat that list and show give as 2: the 4 counted the edited-away
    # branch too.
    counts: dict[str, str] = {}
    for chat in (saved.pasta, saved.quantum):
        target = tmp_path / f"{chat}.json"
        assert run_cli("export", chat, "-o", str(target)).returncode == 0
        result = run_cli("import", str(target))
        assert result.returncode == 0, result.stderr
        [listed] = [row for row in lines(run_cli("list").stdout) if row.startswith(result.stdout[:8])]
        assert " 2 msgs " in listed
        counts[chat] = result.stderr.rstrip().rsplit(": ", 1)[1]
    assert counts == {saved.pasta: "2 messages (4 with earlier versions)", saved.quantum: "2 messages"}


def test_json_export_to_stdout_imports_from_stdin(saved: Saved, history_path: Path) -> None:
    exported = run_cli("export", saved.quantum, "--format", "json").stdout
    with opened(history_path) as store:
        store.delete_conversation(saved.quantum)
    result = run_cli("import", "-", input_text=exported)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == saved.quantum  # ids were free again: kept as they were
    with opened(history_path) as store:
        assert store.load(saved.quantum).conversation.messages[1].id == saved.quantum_reply


def _broken_exports(valid: str) -> dict[str, str]:
    document = json.loads(valid)
    dangling = json.loads(valid)
    dangling["messages"][-1]["parent_id"] = "not-a-message"
    newer = json.loads(valid)
    newer["version"] = 99
    bad_stats = json.loads(valid)
    bad_stats["messages"][-1]["stats"]["gen_tokens"] = "many"
    return {
        "not json": "this is not json {",
        "truncated": valid[: len(valid) // 2],
        "other json": json.dumps({"conversations": []}),
        "dangling parent in the last message": json.dumps(dangling),
        "newer version": json.dumps(newer),
        "bad stats in the last message": json.dumps(bad_stats),
        "empty": "",
        "no messages key": json.dumps({k: v for k, v in document.items() if k != "messages"}),
    }


def test_malformed_imports_leave_the_history_unchanged(
    saved: Saved, history_path: Path, tmp_path: Path
) -> None:
    valid = run_cli("export", saved.pasta, "--format", "json").stdout
    with opened(history_path) as store:
        store.delete_conversation(saved.pasta)  # so a valid import would add it with its own ids
        count = store.count_conversations()
    before = dump(history_path)
    for label, text in _broken_exports(valid).items():
        bad = tmp_path / "bad.json"
        bad.write_text(text, encoding="utf-8")
        result = run_cli("import", str(bad))
        assert result.returncode == 2, label
        assert result.stdout == "", label
        assert len(lines(result.stderr)) == 1, (label, result.stderr)
        assert "bad.json" in result.stderr, label
        with opened(history_path) as store:
            assert store.count_conversations() == count, label
        assert dump(history_path) == before, label
    # The same file, intact, does import: the failures above were the file's fault.
    good = tmp_path / "good.json"
    good.write_text(valid, encoding="utf-8")
    assert run_cli("import", str(good)).returncode == 0
    with opened(history_path) as store:
        assert store.count_conversations() == count + 1


def test_import_of_a_missing_file(saved: Saved, tmp_path: Path) -> None:
    result = run_cli("import", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert lines(result.stderr) == [
        f"lollma-tui history: cannot read {tmp_path / 'nope.json'}: No such file or directory"
    ]


# -- search ----------------------------------------------------------------------------------


def test_search_finds_a_word(saved: Saved) -> None:
    result = run_cli("search", "zebras")
    assert result.returncode == 0, result.stderr
    [hit] = lines(result.stdout)
    conversation_id, message_id, role = hit.split()[:3]
    assert (conversation_id, message_id, role) == (saved.quantum[:8], saved.quantum_reply[:8], "assistant")
    assert "Quantum chat: " in hit
    assert "[zebras]" in hit


def test_search_by_prefix_and_several_words(saved: Saved) -> None:
    hits = lines(run_cli("search", "minutes", "ta").stdout)  # the last word is a prefix ("taste")
    assert [hit.split()[:2] for hit in hits] == [[saved.pasta[:8], saved.pasta_reply[:8]]]


def test_search_without_hits(saved: Saved) -> None:
    result = run_cli("search", "xylophone")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no messages match 'xylophone'" in result.stderr


def test_search_for_nothing_is_a_usage_error(saved: Saved) -> None:
    # `search ""` (an empty shell variable) used to answer "no messages match ''" with success.
    result = run_cli("search", "", " ")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "search needs some text to find" in result.stderr


# -- delete ----------------------------------------------------------------------------------


def test_delete_refuses_without_yes_when_input_is_not_a_terminal(saved: Saved, history_path: Path) -> None:
    result = run_cli("delete", saved.quantum)
    assert result.returncode == 2
    assert "--yes" in result.stderr and len(lines(result.stderr)) == 1
    with opened(history_path) as store:
        assert store.get_summary(saved.quantum).title == "Quantum chat"


def test_delete_with_yes(saved: Saved, history_path: Path) -> None:
    result = run_cli("delete", saved.quantum[:8], "--yes")
    assert result.returncode == 0, result.stderr
    assert "deleted “Quantum chat” (2 messages and their earlier versions)" in result.stderr
    with opened(history_path) as store:
        assert store.count_conversations() == 2
        with pytest.raises(NotFoundError):
            store.get_summary(saved.quantum)
        assert store.search("zebras") == []  # its messages went with it


def test_a_chat_open_in_lollma_tui_is_marked_in_the_list_and_not_deleted(
    saved: Saved, history_path: Path
) -> None:
    with another_instance(history_path, holding=saved.quantum):
        listed = run_cli("list")
        refused = run_cli("delete", saved.quantum[:8], "--yes")
    rows = {row.split()[0]: row for row in lines(listed.stdout)}
    assert rows[saved.quantum[:8]].endswith("Quantum chat  ◌ open in lollma-tui")
    assert rows[saved.pasta[:8]].endswith("Pasta")
    assert refused.returncode == 1
    assert "it is open in another lollma-tui; close it there first" in refused.stderr
    with opened(history_path) as store:
        assert store.get_summary(saved.quantum).title == "Quantum chat"
    # Closed there: free again.
    assert run_cli("delete", saved.quantum[:8], "--yes").returncode == 0
    assert "◌" not in run_cli("list").stdout


def _delete_on_a_terminal(conversation_id: str, answer: str) -> subprocess.CompletedProcess[str]:
    main, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "lollma_tui.cli_history", "delete", conversation_id],
            cwd=ROOT,
            env={**os.environ, "TZ": "UTC"},
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(main, answer.encode() + b"\n")
        out, err = process.communicate(timeout=60)
    finally:
        os.close(terminal)
        os.close(main)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_delete_asks_on_a_terminal(saved: Saved, history_path: Path) -> None:
    declined = _delete_on_a_terminal(saved.pasta, "n")
    assert declined.returncode == 1
    assert (
        "Delete “Pasta” (2 messages and their earlier versions)? This cannot be undone. [y/N]"
        in declined.stderr
    )
    with opened(history_path) as store:
        assert store.get_summary(saved.pasta).title == "Pasta"
    accepted = _delete_on_a_terminal(saved.pasta, "y")
    assert accepted.returncode == 0, accepted.stderr
    with opened(history_path) as store, pytest.raises(NotFoundError):
        store.get_summary(saved.pasta)


# -- damaged, locked, piped ------------------------------------------------------------------


def test_corrupt_history_is_kept_aside_with_a_notice(history_path: Path) -> None:
    history_path.parent.mkdir(parents=True)
    damaged = random.Random(3).randbytes(20_000)
    history_path.write_bytes(damaged)
    result = run_cli("list")
    assert result.returncode == 0
    assert result.stdout == ""
    [notice, *rest] = lines(result.stderr)
    assert "damaged" in notice and "moved to history.db.corrupt-" in notice
    assert rest == ["lollma-tui history: no conversations saved yet"]
    [aside] = [p for p in history_path.parent.iterdir() if ".corrupt-" in p.name]
    assert aside.read_bytes() == damaged
    assert aside.name in notice
    with opened(history_path) as store:  # a fresh, healthy history in its place
        assert store.count_conversations() == 0


def test_locked_history_is_left_alone(saved: Saved, history_path: Path) -> None:
    before = dump(history_path)
    holder = sqlite3.connect(history_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        result = run_cli("delete", saved.quantum, "--yes")
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert result.returncode == 1
    assert result.stdout == ""
    [notice] = lines(result.stderr)
    assert "locked" in notice
    assert dump(history_path) == before
    assert not [p for p in history_path.parent.iterdir() if ".corrupt-" in p.name]


def test_a_closed_pipe_ends_quietly(history_path: Path) -> None:
    with opened(history_path) as store:
        chat = store.new_conversation()
        add_turn(store, chat.id, "count", "\n".join(str(n) for n in range(200_000)))
    process = subprocess.Popen(
        [sys.executable, "-m", "lollma_tui.cli_history", "show", chat.id],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == b"count\n"
    process.stdout.close()
    errors = process.stderr.read()
    process.wait(timeout=60)
    assert b"Traceback" not in errors
    assert errors == b""


HUGE = str(2**63)  # one past SQLite's INTEGER


@pytest.mark.parametrize(
    "args", [("list", "--limit", HUGE), ("list", "--offset", HUGE), ("search", "pasta", "--limit", HUGE)]
)
def test_a_number_too_large_for_sqlite_is_a_usage_error(saved: Saved, args: tuple[str, ...]) -> None:
    # It ended in an OverflowError traceback.
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(f"expected at most {2**63 - 1}, not {HUGE}")
    assert "Traceback" not in result.stderr
    largest = run_cli("list", "--offset", str(2**63 - 1), "--limit", str(2**63 - 1))
    assert (largest.returncode, largest.stdout) == (0, "")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("command", ["list", "show", "export", "search"])
def test_a_full_standard_output_is_one_line_and_exit_1(saved: Saved, command: str) -> None:
    # It ended in an OSError traceback (ENOSPC) once stdout was full.
    args = {"list": [], "show": [saved.quantum], "export": [saved.quantum, "-f", "json"]}
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "lollma_tui.cli_history", command, *args.get(command, ["quantum"])],
            cwd=ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    full_text = os.strerror(errno.ENOSPC)
    assert result.stderr == f"lollma-tui history: cannot write to standard output: {full_text}\n"


def test_store_clock_orders_list(history_path: Path) -> None:
    # Updating an old conversation moves it to the top: "updated" is what the list sorts by.
    with ChatStore.open(history_path, wall_clock=FakeClock()) as store:
        first = store.create_conversation(Conversation(title="first"))
        store.create_conversation(Conversation(title="second"))
        store.add_message(first.id, Message("user", "again"))
    rows = lines(run_cli("list").stdout)
    assert [row.rsplit("  ", 1)[1] for row in rows] == ["first", "second"]

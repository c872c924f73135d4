"""The crash the product promises to survive: kill -9 while a reply streams, then start again.

The installed `lollma-tui` command runs the real demo model in tmux. Once text has reached the
store, the app process is killed with SIGKILL (no handler, no finally block, no flush on exit);
the file must then hold the question and the reply up to the last once-a-second flush, and the
next start must resume that conversation with the partial reply marked incomplete.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from pathlib import Path

import psutil
import pytest
from textual.pilot import Pilot
from tmux_support import Tmux, app_folders, command_line

from lollma_tui.core.chat.conversation import Conversation, Message, ReplyState
from lollma_tui.core.chat.opening import DB_FILENAME, default_store_path, open_store
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.settings import LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.widgets.chat_log import HistoryTurn, Notice

pytestmark = pytest.mark.slow

QUESTION = "Write a long story about a lighthouse keeper."
INCOMPLETE_NOTE = "incomplete (the app closed while writing)"
CUT_OFF_NOTICE = "cut off when lollma-tui last closed"
WORKER_MODULE = "lollma_tui.core.backends.llamacpp_worker"
STREAMED_AT_LEAST_S = 1.5
# The kill lands this long after a flush was seen: late enough for the screen to have drawn the
# flushed text, early enough that the next flush (1 s after the last) cannot have happened.
KILL_AFTER_FLUSH_S = (0.35, 0.65)


@pytest.fixture
def started_processes() -> Iterator[list[psutil.Process]]:
    """Processes this test found and must not leave behind if it fails half-way."""
    found: list[psutil.Process] = []
    yield found
    for process in found:
        with suppress(psutil.Error):
            process.kill()


def words(text: str) -> list[str]:
    """Letters and digits only: wrapping, indentation and Markdown marks differ on screen."""
    return re.findall(r"[^\W_]+", text)


def is_prefix(stored: list[str], shown: list[str]) -> bool:
    """Whether `stored` begins `shown`; its last word may be cut mid-way (a flush between tokens)."""
    if not stored or len(stored) > len(shown):
        return False
    *whole, last = stored
    return shown[: len(whole)] == whole and shown[len(whole)].startswith(last)


def reply_lines(screen: str, end_marker: str) -> str:
    """The reply's text: below the question and the reply's header line, above `end_marker`."""
    lines = screen.splitlines()
    # The whole line: the question also titles the conversation in the resume notice.
    asked = max(i for i, line in enumerate(lines) if line.strip() == QUESTION)
    header = next(i for i in range(asked + 1, len(lines)) if lines[i].strip())
    end = next(i for i in range(header + 1, len(lines)) if end_marker in lines[i])
    return "\n".join(lines[header + 1 : end])


def streaming_reply(db: Path) -> str | None:
    """The text saved so far of the reply being streamed (None before it is saved).

    A plain read-only connection: opening a `ChatStore` probes the write lock, and this look
    must not get in the way of the app's own writes while it streams.
    """
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)) as conn:
            row = conn.execute(
                "SELECT content FROM messages WHERE role = 'assistant' AND state = 'streaming'"
            ).fetchone()
    except sqlite3.Error:
        return None  # not created yet, or busy for a moment
    return None if row is None else str(row[0])


def app_process(pane_pid: int) -> psutil.Process:
    """The Python process running `lollma-tui` in the pane (the pane's shell may have exec'd it)."""
    pane = psutil.Process(pane_pid)
    for process in (pane, *pane.children(recursive=True)):
        with suppress(psutil.Error):
            cmdline = process.cmdline()
            if any(Path(arg).name == "lollma-tui" for arg in cmdline) and process.name() != "env":
                return process
    raise AssertionError(f"no lollma-tui process under pane pid {pane_pid}")


def worker_processes(app: psutil.Process, timeout: float = 20.0) -> list[psutil.Process]:
    """The model's worker and the idle spare the app starts after a load."""
    deadline = time.monotonic() + timeout
    while True:
        workers = [c for c in app.children() if WORKER_MODULE in " ".join(c.cmdline())]
        if len(workers) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(workers) == 2, f"expected the llama.cpp worker and its spare, found {workers}"
    return workers


def is_gone(process: psutil.Process) -> bool:
    # Orphans are reparented to whatever reaps them (or not, in some containers): a zombie is dead.
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(process: psutil.Process, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not is_gone(process):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (pid {process.pid}) still runs {timeout:.0f} s after the kill")
        time.sleep(0.05)


def test_kill_9_while_streaming_keeps_the_partial_reply_and_resumes_it(
    tmux: Tmux,
    tmp_path: Path,
    demo_gguf: Path,
    session_cache: Path,
    started_processes: list[psutil.Process],
) -> None:
    env = app_folders(tmp_path, session_cache)
    data = env["LOLLMA_DATA_DIR"]
    # Greedy, so the long story is the same every run; far more tokens than the test waits for.
    line = command_line(env, "--max-tokens", "4000", "--ctx", "4096", "--temp", "0", "--seed", "1")
    db = data / DB_FILENAME

    # Tall enough that the whole partial reply stays on screen at the kill and after resuming.
    tmux.run("new-session", "-d", "-s", "crash", "-x", "160", "-y", "60", line)
    # Keep the dead pane's last frame: it is what the user saw when the app died.
    tmux.run("set-option", "-t", "crash", "remain-on-exit", "on")
    tmux.wait_for("crash", lambda s: "loaded in" in s, timeout=90)
    app = app_process(int(tmux.run("display", "-p", "-t", "crash", "#{pane_pid}").strip()))
    workers = worker_processes(app)
    started_processes.extend((app, *workers))
    tmux.run("send-keys", "-t", "crash", "C-b")  # hide the side panel: the chat gets whole lines
    tmux.run("send-keys", "-t", "crash", QUESTION, "Enter")

    tmux.wait_for("crash", lambda s: "writing…" in s, timeout=60)
    streaming_since = time.monotonic()
    seen, seen_at = "", 0.0
    deadline = streaming_since + 30
    while True:
        now = time.monotonic()
        stored_now = streaming_reply(db)
        assert now < deadline, f"no flush was seen while the reply streamed (stored: {stored_now!r})"
        if stored_now is not None and stored_now != seen:
            seen, seen_at = stored_now, now
        since_flush = now - seen_at
        if (
            seen
            and now - streaming_since >= STREAMED_AT_LEAST_S
            and KILL_AFTER_FLUSH_S[0] <= since_flush <= KILL_AFTER_FLUSH_S[1]
        ):
            break
        time.sleep(0.03)
    os.kill(app.pid, signal.SIGKILL)  # at once: any delay eats into the window before the next flush
    wait_gone(app, "lollma-tui", timeout=5)
    # Workers are in their own sessions, so they get no hang-up: each must notice its stdin closed.
    for worker in workers:
        wait_gone(worker, "a llama.cpp worker", timeout=10)
    tmux.wait_for("crash", lambda _: tmux.pane_dead("crash"), timeout=5)
    last_frame = tmux.screen("crash")
    assert "writing…" in last_frame, (
        f"the reply ended before the kill; the test proves nothing:\n{last_frame}"
    )
    shown = words(reply_lines(last_frame, "writing…"))

    # (a) The file as the crash left it: the question, and the reply up to the last flush.
    with ChatStore.open(db) as store:
        conversation_id = store.latest_conversation_id()
        assert conversation_id is not None
        messages = store.load(conversation_id).conversation.messages
    assert [m.role for m in messages] == ["user", "assistant"]
    question, reply = messages
    assert question.content == QUESTION
    assert reply.state == ReplyState.STREAMING
    assert reply.content.strip(), "the store holds no text of the reply: nothing was flushed"
    assert reply.content.startswith(seen)
    stored = words(reply.content)
    assert is_prefix(stored, shown), f"saved reply is not what the screen showed:\n{stored}\n{shown}"

    # Recovery on a copy: the next start (below) must find the reply still streaming.
    copy = tmp_path / "copy" / DB_FILENAME
    copy.parent.mkdir()
    for side in ("", "-wal"):
        if db.with_name(DB_FILENAME + side).exists():
            shutil.copy2(db.with_name(DB_FILENAME + side), copy.with_name(DB_FILENAME + side))
    opened = open_store(copy)
    with opened.store as store:
        assert opened.notice is None
        assert opened.recovered == 1
        recovered = store.load(conversation_id).conversation.messages[1]
    assert recovered.id == reply.id
    assert recovered.state == ReplyState.INCOMPLETE
    assert recovered.content == reply.content

    # (b) The next start resumes it: partial text, the incomplete mark, and the notice.
    # In the same terminal: a second session of this server would start at tmux's default size.
    tmux.run("respawn-pane", "-t", "crash", line)
    tmux.wait_for("crash", lambda s: "Resumed" in s, timeout=60)
    tmux.run("send-keys", "-t", "crash", "C-b")

    def resumed_in_full(screen: str) -> bool:
        if INCOMPLETE_NOTE not in screen or f"   {QUESTION}\n" not in screen:
            return False
        # Equal once the side panel is gone; before, its lines are interleaved with the reply's.
        return words(reply_lines(screen, INCOMPLETE_NOTE)) == stored

    resumed = tmux.wait_for("crash", resumed_in_full, timeout=30)
    assert "1 reply was cut off when lollma-tui last closed; marked incomplete." in resumed
    resumed_app = app_process(int(tmux.run("display", "-p", "-t", "crash", "#{pane_pid}").strip()))
    started_processes.append(resumed_app)
    tmux.run("send-keys", "-t", "crash", "C-q")
    tmux.wait_for("crash", lambda _: tmux.pane_dead("crash"), timeout=15)
    ended = tmux.exit_status("crash", timeout=30, pid=resumed_app.pid)
    assert ended == "0", (
        f"lollma-tui ended with {ended!r} ({'gone' if is_gone(resumed_app) else 'still running'});"
        f" its last screen:\n{tmux.screen('crash')}"
    )

    with ChatStore.open(db) as store:
        after = store.load(conversation_id).conversation.messages
    assert [(m.id, m.state, m.content) for m in after] == [
        (question.id, ReplyState.COMPLETE, QUESTION),
        (reply.id, ReplyState.INCOMPLETE, reply.content),
    ]


async def test_the_cut_off_notice_survives_resuming(tiny_gguf: Path) -> None:
    """Opening the resumed conversation clears the chat log; the start-up notices come after it."""
    with ChatStore.open(default_store_path()) as store:
        conversation = store.create_conversation(Conversation(messages=[Message("user", "hello")]))
        writer = store.start_reply(conversation.id)
        writer.append_delta("a partial answer")
        writer.flush()  # and never finished, as after a kill -9

    options = StartupOptions(
        load=LoadSettings(model=str(tiny_gguf), n_ctx=512), sampling=SamplingSettings(max_tokens=4)
    )
    app = LollmaApp(options)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await _until(
            pilot,
            lambda: main.history.store is not None and len(main.chat_log.turns()) == 2,
        )
        await app.workers.wait_for_complete([w for w in app.workers if w.group == "history-open"])
        notices = [str(n.content) for n in main.chat_log.query(Notice)]
        assert any(CUT_OFF_NOTICE in text for text in notices), notices
        reply = main.chat_log.turns()[-1]
        assert isinstance(reply, HistoryTurn)
        assert reply.message.state == ReplyState.INCOMPLETE
        assert reply.message.content == "a partial answer"


async def _until(pilot: Pilot[None], condition: Callable[[], bool], within: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await pilot.pause(0.02)

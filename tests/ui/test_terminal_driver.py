"""In a real terminal (tmux), the installed command survives being stopped and continued: from
outside with SIGSTOP (a benchmark, a debugger, ``kill -STOP``) and through Textual's own suspend
(SIGTSTP). What is typed afterwards arrives whole and in order, and Ctrl+Q still quits. Ended
from outside (``kill``, a terminal that closes), it quits as Ctrl+Q does. Idle, it does not wake
to look for keys."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import psutil
import pytest
from ollama_server import OllamaTestServer
from ollama_server.engines import Script
from tmux_support import Tmux, app_folders, command_line

from lollma_tui.core.chat.conversation import Message, ReplyState
from lollma_tui.core.chat.store import ChatStore

pytestmark = pytest.mark.slow

QUESTIONS = ["what makes bread rise", "why is the sky blue", "how do bees find flowers", "what is a compiler"]


class RunningApp:
    """The installed command in a pane, chatting with the Ollama test server."""

    def __init__(
        self, tmux: Tmux, tmp_path: Path, session_cache: Path, server: OllamaTestServer, *, then: str = ""
    ) -> None:
        """`then`: a shell command the pane runs once the app has ended (it keeps the pane open)."""
        self.tmux = tmux
        folders = app_folders(tmp_path, session_cache)
        self.db = folders["LOLLMA_DATA_DIR"] / "history.db"
        model = ("--model", "tinyllama:1b-q4_K_M")
        line = command_line(folders, "--backend", "ollama", "--ollama-host", server.host, *model, "--new")
        if then:
            line = f"{line}; {then}"
        tmux.run("new-session", "-d", "-s", "chat", "-x", "120", "-y", "35", line)
        tmux.wait_for("chat", lambda s: "● ready" in s, timeout=60)
        self.process = tmux.app_process("chat")

    def thread(self) -> list[Message]:
        """The conversation as saved (the app opened with --new: there is one)."""
        if not self.db.exists():
            return []
        with ChatStore.open(self.db) as store:
            found = store.latest_conversation_id()
            return [] if found is None else store.load(found).conversation.messages

    def user_messages(self) -> list[str]:
        return [m.content for m in self.thread() if m.role == "user"]

    def ask(self, question: str) -> None:
        """Type `question` and Enter at once, as a script or a fast typist does; wait until its
        reply has ended and is saved."""
        asked = len(self.user_messages())
        self.tmux.run("send-keys", "-t", "chat", "-l", question)
        self.tmux.run("send-keys", "-t", "chat", "Enter")
        deadline = time.monotonic() + 30
        # The card still says "ready" from the last reply when the question is saved, before
        # its own reply starts: the saved thread says when that reply is over.
        while not self._answered(asked + 1):
            assert time.monotonic() < deadline, self.tmux.screen("chat")
            time.sleep(0.1)
        self.tmux.wait_for("chat", lambda s: "● ready" in s and "writing…" not in s, timeout=30)

    def _answered(self, questions: int) -> bool:
        thread = self.thread()
        users = [m for m in thread if m.role == "user"]
        last = thread[-1] if thread else None
        return (
            len(users) == questions
            and last is not None
            and last.role == "assistant"
            and last.state is not ReplyState.STREAMING
        )

    def quit(self) -> None:
        self.tmux.run("send-keys", "-t", "chat", "C-q")
        deadline = time.monotonic() + 15
        while self.tmux.has_session("chat"):
            assert time.monotonic() < deadline, "lollma-tui did not quit on Ctrl+Q"
            time.sleep(0.2)


def test_typing_after_a_stop_from_outside_arrives_whole_and_in_order(
    tmux: Tmux, tmp_path: Path, session_cache: Path, ollama_server: OllamaTestServer
) -> None:
    ollama_server.set_default_reply("Fine.")
    app = RunningApp(tmux, tmp_path, session_cache, ollama_server)
    app.ask("hello")  # every thread a reply needs is running from here on
    threads = app.process.num_threads()

    for _ in range(3):
        # tmux continues a stopped pane itself at once; the SIGCONT is for any other terminal.
        app.process.send_signal(signal.SIGSTOP)
        time.sleep(0.2)
        app.process.send_signal(signal.SIGCONT)
        time.sleep(0.3)
    for question in QUESTIONS:
        app.ask(question)

    # Textual restarted application mode on each SIGCONT: another input thread (and output
    # thread) every time, reading the same terminal, so keys were split between them and an
    # Enter could overtake the last letters of a message.
    assert app.process.num_threads() <= threads + 2
    assert app.user_messages() == ["hello", *QUESTIONS]
    app.quit()


def test_textual_own_suspend_still_resumes(
    tmux: Tmux, tmp_path: Path, session_cache: Path, ollama_server: OllamaTestServer
) -> None:
    ollama_server.set_default_reply("Fine.")
    app = RunningApp(tmux, tmp_path, session_cache, ollama_server)
    app.ask("hello")
    threads = app.process.num_threads()

    # SIGTSTP: Textual gives the terminal back and stops the process itself; tmux continues a
    # stopped pane at once, and Textual takes the terminal again (input included) on SIGCONT.
    before = {thread.id for thread in app.process.threads()}
    app.process.send_signal(signal.SIGTSTP)
    deadline = time.monotonic() + 10
    while True:
        # Suspended and resumed: its terminal threads are new ones.
        now = {thread.id for thread in app.process.threads()}
        if not before <= now and len(now) >= len(before):
            break
        assert time.monotonic() < deadline, "the app did not suspend and resume"
        time.sleep(0.05)
    # The screen it left was blank when it came back: what it shows now is repainted.
    tmux.wait_for("chat", lambda s: "● ready" in s, timeout=10)

    app.ask(QUESTIONS[0])
    assert app.user_messages() == ["hello", QUESTIONS[0]]
    assert app.process.num_threads() <= threads + 2
    app.quit()


def test_a_terminal_that_closes_while_the_app_is_suspended_lets_it_end(
    tmux: Tmux, tmp_path: Path, session_cache: Path, ollama_server: OllamaTestServer
) -> None:
    # Ctrl+Z in a shell, then the ssh session drops: on the SIGCONT that comes with the hang-up
    # Textual found no terminal to take back and started no writer, and the quit waited forever
    # on the old one's full queue: an orphan, sampling the hardware.
    folders = app_folders(tmp_path, session_cache)
    model = ("--model", "tinyllama:1b-q4_K_M")
    line = command_line(folders, "--backend", "ollama", "--ollama-host", ollama_server.host, *model, "--new")
    tmux.run("new-session", "-d", "-s", "chat", "-x", "120", "-y", "35", "bash --norc --noprofile -i")
    tmux.run("send-keys", "-t", "chat", "-l", line)
    tmux.run("send-keys", "-t", "chat", "Enter")
    tmux.wait_for("chat", lambda s: "● ready" in s, timeout=60)
    process = tmux.app_process("chat")
    process.send_signal(signal.SIGTSTP)
    deadline = time.monotonic() + 10
    while process.status() != psutil.STATUS_STOPPED:
        assert time.monotonic() < deadline, "the app did not suspend"
        time.sleep(0.05)
    tmux.run("kill-session", "-t", "chat")
    try:
        process.wait(timeout=30)
    finally:
        if process.is_running():
            process.kill()  # not left behind when this fails


SLOW_STORY = Script(text=" ".join(f"word{i}" for i in range(400)), thinking="", tokens_per_second=20)


def start_a_slow_reply(app: RunningApp) -> None:
    """Ask, and return once the reply is being written and some of it is saved."""
    app.tmux.run("send-keys", "-t", "chat", "-l", "tell me a story")
    app.tmux.run("send-keys", "-t", "chat", "Enter")
    app.tmux.wait_for("chat", lambda s: "writing…" in s, timeout=30)
    deadline = time.monotonic() + 30
    while not (app.thread() and app.thread()[-1].role == "assistant" and app.thread()[-1].content):
        assert time.monotonic() < deadline, app.tmux.screen("chat")
        time.sleep(0.1)


def saved_reply(app: RunningApp) -> Message:
    reply = app.thread()[-1]
    assert reply.role == "assistant" and reply.content
    assert SLOW_STORY.text.startswith(reply.content)  # what came, in order, nothing made up
    return reply


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_kill_quits_as_ctrl_q_does_and_gives_the_terminal_back(
    tmux: Tmux, tmp_path: Path, session_cache: Path, ollama_server: OllamaTestServer, stop: signal.Signals
) -> None:
    # SIGTERM used to end the process on the spot: the terminal stayed in the app's screen with
    # mouse reporting on (moving the mouse typed escape codes), and the reply was left as the
    # last once-a-second save had it, to be marked incomplete on the next start. A SIGINT from
    # another program cancelled the app instead: the reply was saved without its figures.
    ollama_server.set_default_reply(SLOW_STORY)
    app = RunningApp(tmux, tmp_path, session_cache, ollama_server, then="echo ENDED $?; sleep 60")
    start_a_slow_reply(app)
    app.process.send_signal(stop)
    tmux.wait_for("chat", lambda s: "ENDED" in s, timeout=20)
    modes = tmux.run("display", "-p", "-t", "chat", "#{alternate_on} #{mouse_any_flag} #{cursor_flag}")
    assert modes.split() == ["0", "0", "1"]  # its own screen left, mouse off, cursor shown
    # As a shell reports a process a signal ended (143, 130): a script tells it from a quit.
    assert f"ENDED {128 + stop}" in tmux.screen("chat")
    reply = saved_reply(app)
    assert reply.state is ReplyState.STOPPED and reply.stats is not None


def test_a_terminal_that_closes_mid_reply_leaves_the_reply_saved_as_stopped(
    tmux: Tmux, tmp_path: Path, session_cache: Path, ollama_server: OllamaTestServer
) -> None:
    # An ssh session that drops: the terminal closes under the app (SIGHUP).
    ollama_server.set_default_reply(SLOW_STORY)
    app = RunningApp(tmux, tmp_path, session_cache, ollama_server)
    start_a_slow_reply(app)
    tmux.run("kill-session", "-t", "chat")
    app.process.wait(timeout=20)
    assert saved_reply(app).state is ReplyState.STOPPED


def wakeups_per_second(process: psutil.Process, seconds: float) -> dict[int, float]:
    """How often each of `process`'s threads went to sleep and was woken, over `seconds`."""

    def counts() -> dict[int, int]:
        found = {}
        for task in Path(f"/proc/{process.pid}/task").iterdir():
            try:
                status = task.joinpath("status").read_text()
            except OSError:
                continue  # ended meanwhile
            matched = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.MULTILINE)
            assert matched is not None, status
            found[int(task.name)] = int(matched.group(1))
        return found

    before = counts()
    time.sleep(seconds)
    after = counts()
    return {tid: (after[tid] - before.get(tid, 0)) / seconds for tid in after}


def test_an_idle_app_sleeps_until_a_key_comes(tmux: Tmux, tmp_path: Path, session_cache: Path) -> None:
    # Textual's input thread wakes ten times a second whether a key came or not: as much CPU as
    # the rest of an idle monitor. Sampling every 5 s, no thread has a reason to wake that often.
    folders = app_folders(tmp_path, session_cache)
    line = command_line(folders, "monitor", "--interval", "5")
    tmux.run("new-session", "-d", "-s", "mon", "-x", "100", "-y", "30", line)
    tmux.wait_for("mon", lambda s: "every 5 s" in s, timeout=30)
    process = tmux.app_process("mon")
    time.sleep(1.0)
    rates = wakeups_per_second(process, 4.0)
    assert max(rates.values()) < 4, f"wake-ups per second by thread id: {rates}"

    # A key typed into the sleeping app is answered at once, and so is a lone Esc followed by
    # one: held back in case it starts a key sequence, then let go as Esc.
    tmux.run("send-keys", "-t", "mon", "-")
    tmux.wait_for("mon", lambda s: "every 3 s" in s, timeout=5)
    tmux.run("send-keys", "-t", "mon", "Escape")
    time.sleep(0.5)
    tmux.run("send-keys", "-t", "mon", "-")
    tmux.wait_for("mon", lambda s: "every 2 s" in s, timeout=5)
    tmux.run("send-keys", "-t", "mon", "q")
    deadline = time.monotonic() + 10
    while tmux.has_session("mon"):
        assert time.monotonic() < deadline, "the monitor did not quit on q"
        time.sleep(0.1)


def test_a_byte_that_is_not_utf8_is_typed_as_a_replacement_character(
    tmux: Tmux, tmp_path: Path, session_cache: Path, ollama_server: OllamaTestServer
) -> None:
    # "é" from a latin-1 terminal (PuTTY, a legacy console) ended the app with a
    # UnicodeDecodeError traceback, and exit status 0.
    ollama_server.set_default_reply("Fine.")
    app = RunningApp(tmux, tmp_path, session_cache, ollama_server)
    tmux.run("send-keys", "-t", "chat", "-H", "63", "61", "66", "e9")  # "caf" then latin-1 "é"
    tmux.run("send-keys", "-t", "chat", "-l", " au lait")
    tmux.wait_for("chat", lambda s: "caf\ufffd au lait" in s, timeout=10)
    assert app.process.is_running()
    tmux.run("send-keys", "-t", "chat", "Enter")
    tmux.wait_for("chat", lambda s: "Fine." in s, timeout=20)
    assert app.user_messages() == ["caf\ufffd au lait"]
    app.quit()

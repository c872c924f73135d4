"""A kill -9 mid-reply loses at most the text since the last flush; the reply comes back INCOMPLETE."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import store_crash_child
from store_crash_child import token

from lollma_tui.core.chat.conversation import ReplyState
from lollma_tui.core.chat.opening import open_store

CHILD = Path(store_crash_child.__file__)
REPO = Path(__file__).resolve().parents[3]


def test_sigkill_mid_stream_keeps_flushed_text(db_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(db_path), "0.05"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        ready = child.stdout.readline().split()
        assert ready[0] == "READY", ready
        conversation_id, reply_id = ready[1], ready[2]
        flushed = []
        while len(flushed) < 3:
            line = child.stdout.readline()
            assert line.startswith("FLUSHED"), line
            flushed.append(int(line.split()[1]))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    opened = open_store(db_path)
    try:
        assert (opened.notice, opened.recovered) == (None, 1)
        window = opened.store.load(conversation_id)
        user, reply = window.conversation.messages
        assert user.content == "count for me"
        assert (reply.id, reply.state) == (reply_id, ReplyState.INCOMPLETE)
    finally:
        opened.store.close()
    # Everything reported flushed is there, and what is there is exactly the stream's beginning,
    # ending on a whole delta (a flush never writes half a token).
    assert len(reply.content) >= flushed[-1] > 0
    stream = "".join(token(i) for i in range(reply.content.count(" ") + 1))
    assert stream.startswith(reply.content)
    assert reply.content.endswith(" ")

"""Run by test_store_crash.py: streams a reply into the store until it is killed.

After each flush it prints ``FLUSHED <chars>`` so the test knows what must have reached the disk.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lollma_tui.core.chat.conversation import Message
from lollma_tui.core.chat.store import ChatStore


def token(i: int) -> str:
    return f"t{i} "


def main() -> None:
    path, interval = Path(sys.argv[1]), float(sys.argv[2])
    store = ChatStore.open(path, flush_interval_s=interval)
    chat = store.new_conversation()
    store.add_message(chat.id, Message("user", "count for me"))
    writer = store.start_reply(chat.id)
    print(f"READY {chat.id} {writer.message_id}", flush=True)
    flushes = 0
    deadline = time.monotonic() + 30  # the test kills it long before this
    i = 0
    while time.monotonic() < deadline:
        writer.append_delta(token(i))
        i += 1
        if writer.flushes != flushes:
            flushes = writer.flushes
            print(f"FLUSHED {writer.flushed_chars}", flush=True)
        time.sleep(0.001)


if __name__ == "__main__":
    main()

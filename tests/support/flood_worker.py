"""A worker that breaks the protocol on purpose: hello, then one line over the limit.

Run by tests as ``python -P -m flood_worker`` through `WorkerProcess`, with this folder on
PYTHONPATH: the parent must kill it and say what went wrong instead of waiting for a newline.
"""

from __future__ import annotations

import os
import sys
import time

from lollma_tui.core.workers.channel import open_channel
from lollma_tui.core.workers.wire import EV_HELLO, MAX_LINE_BYTES

channel = open_channel()
channel.send({"ev": EV_HELLO, "pid": os.getpid()})
size = int(sys.argv[1]) if len(sys.argv) > 1 else MAX_LINE_BYTES + 1
channel.send({"ev": "loaded", "name": "x" * size})
time.sleep(60)

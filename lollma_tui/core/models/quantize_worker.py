"""The quantize worker: one `llama_model_quantize` call in a process of its own.

Started by `quantize.quantize_async` as a `WorkerProcess`. The call blocks, cannot be
interrupted and reports progress only to the log, so the app watches the output grow and the
log's ``[ i/ n]`` tensor lines, and kills this process to cancel. It answers one ``quantize``
request with one ``done`` event carrying llama.cpp's return code.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

from lollma_tui.core.workers.channel import finish, open_channel
from lollma_tui.core.workers.wire import EV_HELLO

OP_QUANTIZE = "quantize"
EV_DONE = "done"


def main() -> int:
    channel = open_channel()
    import llama_cpp

    channel.send({"ev": EV_HELLO, "pid": os.getpid()})
    channel.listen(sys.stdin.buffer)
    request = channel.requests.get()
    if request.get("op") != OP_QUANTIZE:
        finish(0)
    params = llama_cpp.llama_model_quantize_default_params()
    # Always set: the default ftype differs between llama.cpp versions.
    params.ftype = int(request["ftype"])
    params.nthread = int(request.get("threads") or 0)
    params.allow_requantize = bool(request.get("allow_requantize"))
    started = time.perf_counter()
    rc = int(
        llama_cpp.llama_model_quantize(
            os.fsencode(str(request["source"])), os.fsencode(str(request["output"])), ctypes.byref(params)
        )
    )
    channel.send({"ev": EV_DONE, "rc": rc, "seconds": time.perf_counter() - started})
    finish(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

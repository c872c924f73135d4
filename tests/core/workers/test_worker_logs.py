"""What a worker's log says about its failure, read from llama.cpp's and faulthandler's own lines."""

from __future__ import annotations

import os
from pathlib import Path

from lollma_tui.core.workers.logs import ROTATE_BYTES, failure_detail, log_size, open_log, read_since

_LLAMA_TAIL = """\
sched_reserve:        CPU compute buffer size =    12.28 MiB
Using chat eos_token: <|im_end|>
Using chat bos_token: <|im_start|>
"""


def test_a_crash_in_python_code_names_the_frame_of_the_thread_that_crashed() -> None:
    log = (
        _LLAMA_TAIL
        + """\
Fatal Python error: Segmentation fault

Thread 0x00007f5c358fe6c0 (most recent call first):
  File "/x/lollma_tui/core/workers/channel.py", line 67 in _read_requests
  File "/usr/lib/python3.11/threading.py", line 982 in run

Current thread 0x00007f5c3a1b2740 (most recent call first):
  File "/x/llama_cpp/_internals.py", line 329 in decode
  File "/x/llama_cpp/llama.py", line 640 in eval
"""
    )
    assert failure_detail(log) == (
        "Fatal Python error: Segmentation fault · in decode (_internals.py:329)"
        " · after: Using chat bos_token: <|im_start|>"
    )


def test_a_crash_outside_python_blames_no_python_frame() -> None:
    # Seen on an AMX Xeon: one of llama.cpp's compute threads crashed, so faulthandler marked no
    # thread as current and listed only the request reader, which was just waiting. The message
    # said the crash was "in _read_requests (channel.py:67)".
    log = (
        _LLAMA_TAIL
        + """\
Fatal Python error: Segmentation fault

Thread 0x00007f5c358fe6c0 (most recent call first):
  File "/x/lollma_tui/core/workers/channel.py", line 67 in _read_requests
  File "/usr/lib/python3.11/threading.py", line 982 in run
"""
    )
    detail = failure_detail(log)
    assert "_read_requests" not in detail
    assert detail == (
        "Fatal Python error: Segmentation fault · in a native thread"
        " · after: Using chat bos_token: <|im_start|>"
    )


def test_the_line_llama_cpp_prints_on_every_load_is_no_cause() -> None:
    # "set_abort_callback: call" holds "abort": a template's error ended in " — llama.cpp:
    # set_abort_callback: call", and a bench run said its template failed, then the metadata.
    log = "llama_context: n_ctx = 512\nset_abort_callback: call\nModel metadata: {'general.name': 'x'}\n"
    assert failure_detail(log, errors_only=True) == ""
    assert failure_detail(log + "llama_model_load: error loading model: bad magic\n", errors_only=True) == (
        "llama_model_load: error loading model: bad magic"
    )


def test_a_worker_still_writing_when_the_log_rotates_is_read_where_it_writes(tmp_path: Path) -> None:
    # The log was renamed to ".1" when the next worker (the spare after each load) started:
    # the loaded worker went on writing there, and its crash was reported without a cause.
    log = tmp_path / "llama.cpp.log"
    log.write_bytes(b"x" * (ROTATE_BYTES - 10))
    loaded, _ = open_log(log, "llama.cpp worker started")
    offset = log_size(log)
    os.write(loaded, b"model loaded\n")
    spare, _ = open_log(log, "llama.cpp worker started")  # past the limit now: rotates
    try:
        assert (tmp_path / "llama.cpp.log.1").stat().st_size > ROTATE_BYTES
        os.write(loaded, b"Fatal Python error: Segmentation fault\n")
        assert "Fatal Python error: Segmentation fault" in read_since(log, offset)
    finally:
        os.close(loaded)
        os.close(spare)

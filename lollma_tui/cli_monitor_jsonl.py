"""`lollma-tui monitor --jsonl`: hardware snapshots as JSON lines on stdout, no terminal UI.

This is what a remote machine runs over ssh for the panel of another one (see
`core/hardware/remote.py`); it is also handy for logging. It ends quietly when its reader goes
away (a closed pipe) or on Ctrl-C.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable

from lollma_tui.cli_output import drop_stream
from lollma_tui.core.hardware.sampler import HardwareSampler
from lollma_tui.core.hardware.snapshot_lines import encode
from lollma_tui.core.hardware.snapshots import SystemSnapshot


def run_jsonl(interval_s: float, pids: Iterable[int] = (), port: int | None = None) -> int:
    """Print one snapshot per line until stdout closes; `pids` and the process listening on
    `port` (the LLM server) are followed like the app follows its own workers."""
    if sys.stdout is None:
        return 0  # started with stdout closed (`>&-`): there is no reader to write for
    out = sys.stdout.buffer
    done = threading.Event()
    roots = tuple(pids)
    finder = None
    if port is not None:
        from lollma_tui.core.backends.ollama_host import ServerProcessFinder

        finder = ServerProcessFinder(port, process_names=())

    def followed() -> list[int]:
        found = finder.pid() if finder is not None else None
        return [*roots, found] if found is not None else list(roots)

    def write(snapshot: SystemSnapshot) -> None:
        try:
            out.write(encode(snapshot).encode() + b"\n")
            out.flush()
        except (BrokenPipeError, ValueError, OSError):
            done.set()

    sampler = HardwareSampler(
        write, interval_s=interval_s, process_ids=followed if (roots or finder) else None
    )
    sampler.start()
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sampler.stop()
        # stdout may be a closed pipe: keep the interpreter's final flush from complaining.
        drop_stream(sys.stdout)
    return 0

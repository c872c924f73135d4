"""Whatever bytes macmon writes, its reader thread keeps reading: junk is skipped, not fatal."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lollma_tui.core.hardware.macmon import MAX_LINE_CHARS, MacmonSource
from lollma_tui.core.hardware.snapshots import SourceState
from lollma_tui.core.hardware.source import SampleContext

GOOD_LINE = json.dumps(
    {
        "temp": {"cpu_temp_avg": 48.5, "gpu_temp_avg": 41.0},
        "memory": {"ram_total": 17179869184, "ram_usage": 9663676416, "swap_total": 0, "swap_usage": 0},
        "gpu_usage": [1398, 0.61],
        "gpu_power": 7.5,
    }
)

# Stands in for `macmon pipe`: writes the junk bytes, then one good reading, then waits.
SCRIPT = textwrap.dedent(
    """
    import sys, time
    junk = open(sys.argv[1], "rb").read()
    sys.stdout.buffer.write(junk)
    sys.stdout.buffer.write(open(sys.argv[2], "rb").read() + b"\\n")
    sys.stdout.flush()
    time.sleep(60)
    """
)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[Path, list[MacmonSource]]]:
    made: list[MacmonSource] = []
    yield tmp_path, made
    for source in made:
        source.close()


def source_writing(junk: bytes, folder: Path, made: list[MacmonSource]) -> MacmonSource:
    script = folder / "macmon.py"
    script.write_text(SCRIPT)
    (folder / "junk").write_bytes(junk)
    (folder / "good").write_text(GOOD_LINE)
    arguments = [str(script), str(folder / "junk"), str(folder / "good")]
    source = MacmonSource(sys.executable, extra_args=arguments)
    made.append(source)
    return source


def gpu_reading_arrives(source: MacmonSource, within_s: float = 20.0) -> bool:
    context = SampleContext(now=0.0, interval_s=0.5, pids=frozenset())
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        reading = source.sample(context)
        if reading.gpus and reading.status.state is SourceState.OK:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(
    "junk",
    [
        b"\xff\xfe\x80 not utf-8 \xc3\x28\n",
        b"\xff" * 10 + b"\n" + b"\x00\x01\x02\n",
        b"x" * (MAX_LINE_CHARS * 2 + 17) + b"\n",
        b"[" * 100_000 + b"\n",
    ],
    ids=["invalid utf-8", "binary lines", "a line of 2 MiB", "nested 100000 deep"],
)
def test_junk_output_is_skipped_and_the_next_reading_is_read(
    started: tuple[Path, list[MacmonSource]], junk: bytes
) -> None:
    folder, made = started
    source = source_writing(junk, folder, made)
    assert gpu_reading_arrives(source), "the reader thread stopped at the junk"

"""A disk that fills up while llama.cpp writes: said as such, and no partial file is left.

Runs on a small tmpfs, which only root may mount; elsewhere the test is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lollma_tui.core.models.quantize import QuantizeFailed, plan_quantization, quantize


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted afterwards."""
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_disk_that_fills_up_while_writing_is_named_and_nothing_is_left(
    source_copy: Path, small_disk: Path, tmp_path: Path
) -> None:
    plan = plan_quantization(source_copy, "Q8_0", output_dir=small_disk)  # fits when planned
    # Something else takes the room after the check: half the file still fits.
    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * (free - plan.estimated_bytes // 2))
    log = tmp_path / "q.log"
    with pytest.raises(QuantizeFailed) as failed:
        quantize(plan, threads=1, log_path=log)
    message = str(failed.value)
    # It read "llama.cpp could not quantize the model: llama_model_quantize: failed to
    # quantize: basic_ios::clear: iostream error (log: …)".
    assert message.startswith(f"the disk holding {small_disk} filled up while writing (")
    assert message.endswith(f"log: {log})")
    assert "llama.cpp: " in message  # its own words stay, for the log reader
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]

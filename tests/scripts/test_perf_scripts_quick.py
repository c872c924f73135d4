"""Every performance script in scripts/perf still runs: each one's `--quick` mode, to the end.

The quick runs use tiny inputs (a generated model, a few files, a second or two of CPU), so
their figures mean little; what is checked is that the script works against today's code and
still prints its side-by-side comparison.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[2] / "scripts" / "perf"
SCRIPTS = sorted(path for path in PERF.glob("*.py") if not path.name.startswith("_"))


def test_the_scripts_are_found() -> None:
    assert len(SCRIPTS) >= 11, [path.name for path in SCRIPTS]


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_quick_run(script: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=tmp_path,
        env={**os.environ, "TERM": "xterm-256color"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    # Every script compares two things measured in the same run and says by how much.
    assert any(word in result.stdout for word in ("ratio", "×", "%")), result.stdout[-2000:]


def test_app_speed_refuses_more_replies_than_the_context_holds(tmp_path: Path) -> None:
    # Past the context the app asks what to do with the next question and the run went on
    # pressing Enter until it was killed; it is refused up front instead, saying how many fit.
    result = subprocess.run(
        [sys.executable, str(PERF / "app_speed.py"), "--replies", "30", "--tokens", "128"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "do not fit the 4096-token context (about 20 do)" in result.stderr

"""`lollma_tui.core` must stay importable without Textual or rich."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import lollma_tui.core


def core_modules() -> list[str]:
    found = [info.name for info in pkgutil.walk_packages(lollma_tui.core.__path__, prefix="lollma_tui.core.")]
    assert len(found) > 5
    return found


def test_no_core_module_pulls_in_textual_or_rich() -> None:
    modules = core_modules()
    code = (
        "import importlib, sys\n"
        # httpx imports its command-line tool, and with it rich, whenever click is installed.
        # lollma-tui does not depend on click: only the test servers' uvicorn brings it here.
        "sys.modules['click'] = None\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core imported: {result.stdout.strip()}"


def test_the_check_itself_notices_textual() -> None:
    # Guard against a check that can never fail: importing the UI must show up.
    code = "import lollma_tui.ui.app, sys; print(any(m.startswith('textual') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "True"

"""What the performance scripts share besides their prompts: the test helpers they borrow (the
GGUF writer, the Ollama-compatible test server) and the tiny model their `--quick` runs use.

The scripts import `lollma_tui` from the environment that runs them, never from a path of their
own: run with another checkout's interpreter, they measure that checkout's code.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

QUICK_HELP = "a run of seconds on tiny inputs, to check that the script works (its figures mean little)"


def borrow_test_helpers() -> None:
    """Put the test tree's shared helpers on sys.path, wherever the tree keeps them."""
    for folder in (ROOT / "tests" / "support", ROOT / "tests"):
        if str(folder) not in sys.path:
            sys.path.append(str(folder))


def tiny_model(folder: Path) -> Path:
    """A 2-layer random-weight llama (about 3 MB), written into `folder`."""
    borrow_test_helpers()
    from gguf_factory import write_tiny_gguf

    return Path(write_tiny_gguf(folder / "tiny-llama-f16.gguf"))

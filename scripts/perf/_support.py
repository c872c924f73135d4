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


def in_process_repack(model: Path) -> bool:
    """Whether a model loaded in the script's own process uses llama.cpp's repacked weights.

    The app's worker survives a crash on that path (llama.cpp#20824, on Intel CPUs with AMX) by
    loading again without them (`lollma_tui.core.backends.repack`); a script's own process
    cannot, so it takes them only where the app would (no crash remembered for this model and
    CPU) and the CPU has no AMX. Give the worker side of a comparison the same choice
    (`repack_setting`), so both sides run the same kernels.
    """
    import llama_cpp

    from lollma_tui.core.backends import repack

    if repack.cpu_has_amx():
        return False
    key = repack.key_for(str(model), str(getattr(llama_cpp, "__version__", "?")))
    return key is None or not repack.RepackMemory().crashes_with_repack(key)


def repack_setting(enabled: bool) -> str:
    """`LoadSettings.repack` (and `SweepSpec.repack`) for an in-process choice."""
    return "on" if enabled else "off"

"""A Python for llama.cpp workers whose loads of some files take long, as a file of tens of GB on a
slow disk does: everything else (the worker, its protocol, llama.cpp) is the real one."""

from __future__ import annotations

import sys
from pathlib import Path


def slow_loading_python(folder: Path, seconds: float, *, marker: str) -> str:
    """An interpreter for `LlamaCppBackend(python=…)`: a model whose path holds `marker` waits
    `seconds` before llama.cpp starts loading it."""
    site = folder / "slow-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import time, llama_cpp\n"
        "_init = llama_cpp.Llama.__init__\n"
        "def _slow(self, model_path, *args, **kwargs):\n"
        f"    if {marker!r} in str(model_path):\n"
        f"        time.sleep({seconds})\n"
        "    _init(self, model_path, *args, **kwargs)\n"
        "llama_cpp.Llama.__init__ = _slow\n"
    )
    wrapper = folder / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{site}:$PYTHONPATH" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)

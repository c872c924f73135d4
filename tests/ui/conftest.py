"""Fixtures for the app tests; `tmux` drives the installed command in a private tmux server, and
`real_openai_server` is llama-cpp-python's own server on the tiny model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gguf import LlamaFileType
from gguf_factory import quantize_gguf
from openai_server.fixtures import real_openai_server
from tmux_support import tmux

__all__ = ["real_openai_server", "tmux"]


@pytest.fixture(scope="session")
def quant_folder(tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path) -> Path:
    """The tiny model in F16 and Q8_0 (made by llama.cpp), alone in their folder."""
    folder = tmp_path_factory.mktemp("quants")
    shutil.copy(tiny_gguf, folder / "tiny-llama-F16.gguf")
    quantize_gguf(folder / "tiny-llama-F16.gguf", folder / "tiny-llama-Q8_0.gguf", LlamaFileType.MOSTLY_Q8_0)
    return folder

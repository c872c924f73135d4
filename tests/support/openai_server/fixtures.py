"""Pytest fixtures for the OpenAI-compatible test servers; import them into a conftest.py."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from lollma_tui.core.backends.openai import OpenAIBackend

from .server import OpenAITestServer
from .shapes import Flavour


@pytest.fixture(params=[Flavour.LLAMA_SERVER, Flavour.VLLM, Flavour.LM_STUDIO, Flavour.PLAIN], ids=str)
def any_flavour_server(request: pytest.FixtureRequest) -> Iterator[OpenAITestServer]:
    with OpenAITestServer(request.param) as server:
        yield server


@pytest.fixture
def llama_server() -> Iterator[OpenAITestServer]:
    """The test server speaking llama-server's dialect."""
    with OpenAITestServer(Flavour.LLAMA_SERVER) as server:
        yield server


@pytest.fixture
async def make_openai_backend() -> AsyncIterator[Callable[..., OpenAIBackend]]:
    """Builds OpenAIBackends with short timeouts (so a hang fails fast) and closes them."""
    made: list[OpenAIBackend] = []

    def build(url: str, **kwargs: object) -> OpenAIBackend:
        kwargs.setdefault("timeout_s", 10.0)
        kwargs.setdefault("connect_timeout_s", 2.0)
        backend = OpenAIBackend(url, **kwargs)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"llama_cpp.server did not listen within {within_s} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def llama_cpp_server(model: Path, alias: str, log: Path, *, n_ctx: int = 512) -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server on a free port; yields its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "1",
    ]  # fmt: skip
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, proc, log, within_s=60)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


REAL_SERVER_ALIAS = "tiny-chat"
"""The model id llama-cpp-python's server gives the tiny GGUF in `real_openai_server`."""


@pytest.fixture(scope="module")
def real_openai_server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's own server running the tiny GGUF as `REAL_SERVER_ALIAS`; its base URL."""
    log = tmp_path_factory.mktemp("llama-cpp-server") / "server.log"
    with llama_cpp_server(tiny_gguf, REAL_SERVER_ALIAS, log) as url:
        yield url

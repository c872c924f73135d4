"""Proxy variables set for the web never carry traffic to a server on this machine."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from ollama_server import OllamaTestServer
from ollama_server.fixtures import ollama_server

from lollma_tui.core.backends.base import BackendError
from lollma_tui.core.backends.ollama import OllamaBackend
from lollma_tui.core.net import is_loopback_host, trust_env_for

__all__ = ["ollama_server"]

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class RecordingProxy:
    """A TCP listener that counts the connections it gets and answers each with a 502."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, name="recording-proxy", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(BAD_GATEWAY)
                except OSError:
                    pass

    def close(self) -> None:
        # shutdown() wakes the blocked accept(); close() alone does not on Linux.
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(timeout=5)


@pytest.fixture
def proxy_everywhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy()
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield proxy
    proxy.close()


@pytest.mark.parametrize(
    "host",
    [
        *("localhost", "LOCALHOST.", "api.localhost"),
        *("127.0.0.1", "127.8.9.10", "0.0.0.0"),
        *("::1", "[::1]", "::", "::ffff:127.0.0.1"),
    ],
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host", ["", "example.com", "localhost.example.com", "192.168.1.20", "10.0.0.1", "::2", "128.0.0.1"]
)
def test_remote_hosts(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    ("url", "trusted"),
    [
        ("http://127.0.0.1:11434", False),
        ("http://localhost:8080/v1", False),
        ("http://[::1]:11434", False),
        ("127.0.0.1:11434", False),
        ("localhost", False),
        ("https://ollama.example.com:443", True),
        ("http://192.168.1.20:11434", True),
        ("gpu-box:11434", True),
        ("http://[not-an-address", True),
    ],
)
def test_trust_env_for(url: str, trusted: bool) -> None:
    assert trust_env_for(url) is trusted
    assert trust_env_for(url, proxy_loopback=True) is True


async def test_local_ollama_bypasses_env_proxies(
    ollama_server: OllamaTestServer, proxy_everywhere: RecordingProxy
) -> None:
    backend = OllamaBackend(ollama_server.host, timeout_s=5.0, connect_timeout_s=2.0)
    try:
        assert await backend.version() == ollama_server.version
        assert await backend.list_models()
    finally:
        await backend.close()
    assert proxy_everywhere.connections == 0


async def test_proxy_for_loopback_when_asked(
    ollama_server: OllamaTestServer, proxy_everywhere: RecordingProxy
) -> None:
    backend = OllamaBackend(ollama_server.host, timeout_s=5.0, connect_timeout_s=2.0, proxy_loopback=True)
    try:
        with pytest.raises(BackendError):
            await backend.list_models()
        with pytest.raises(BackendError):
            await backend.version()
    finally:
        await backend.close()
    assert proxy_everywhere.connections >= 2

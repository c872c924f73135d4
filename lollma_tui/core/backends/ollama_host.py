"""Where the Ollama server is: its base URL, whether it runs on this machine, and its process."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
import time
import urllib.parse

import psutil

from lollma_tui.core.net import is_loopback_host, split_address

DEFAULT_HOST = "127.0.0.1:11434"
DEFAULT_PORT = 11434

_RESCAN_S = 10.0


class OllamaHostError(ValueError):
    """An address that cannot be an Ollama server's; the message names it and says why."""


def base_url(host: str | None = None) -> str:
    """``http://host:port`` from an argument, else OLLAMA_HOST, else the default.

    Accepts what the ollama client and CLI accept: ``host``, ``host:port``, ``:port``,
    ``http(s)://host[:port][/path]`` and bracketed IPv6. Raises `OllamaHostError` for anything
    else, naming OLLAMA_HOST when the address came from there.
    """
    from_env = not host and bool(os.environ.get("OLLAMA_HOST", "").strip())
    raw = (host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST).strip()
    named = f"OLLAMA_HOST={raw}" if from_env else raw
    scheme, sep, rest = raw.partition("://")
    port = DEFAULT_PORT
    if not sep:
        scheme, rest = "http", raw
    elif scheme == "https":
        port = 443
    elif scheme == "http":
        port = 80
    else:
        raise OllamaHostError(f"{named}: the server address must start with http:// or https://")
    try:
        split, given_port = split_address(f"{scheme}://{rest}", named)
    except ValueError as error:
        raise OllamaHostError(str(error)) from None
    port = given_port or port
    hostname = split.hostname or "127.0.0.1"
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(hostname).version == 6:
            hostname = f"[{hostname}]"
    path = split.path.strip("/")
    return f"{scheme}://{hostname}:{port}" + (f"/{path}" if path else "")


def import_ollama_package() -> None:
    """Import the ollama package now if OLLAMA_HOST is malformed, with the variable hidden.

    The package builds a default client from OLLAMA_HOST as it is imported, so a malformed value
    (``http://[::1``) makes ``import ollama`` itself raise, wherever it first happens. We never
    use that default client; `base_url` still sees the variable and says what is wrong with it.
    """
    value = os.environ.get("OLLAMA_HOST")
    if value is None or "ollama" in sys.modules:
        return
    try:
        base_url()
    except OllamaHostError:
        del os.environ["OLLAMA_HOST"]
        try:
            import ollama  # noqa: F401
        finally:
            os.environ["OLLAMA_HOST"] = value


def host_and_port(url: str) -> tuple[str, int]:
    split = urllib.parse.urlsplit(url)
    return split.hostname or "127.0.0.1", split.port or DEFAULT_PORT


def is_local(url: str) -> bool:
    hostname, _ = host_and_port(url)
    return is_loopback_host(hostname)


class ServerProcessFinder:
    """Finds the local ``ollama serve`` process, cheaply enough to ask every second.

    The pid is cached and checked by creation time; a failed search is retried at most every
    few seconds, since it walks the process table.
    """

    def __init__(self, port: int, *, process_names: tuple[str, ...] = ("ollama", "ollama.exe")) -> None:
        self.port = port
        self._names = process_names
        """Server processes recognised by name (``NAME serve``) when the port lookup fails."""
        self._found: tuple[int, float] | None = None
        self._last_scan = float("-inf")

    def pid(self) -> int | None:
        if self._found is not None:
            pid, created = self._found
            try:
                process = psutil.Process(pid)
                # A server that died unreaped keeps its pid and start time: look for the next one.
                if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                    return pid
            except psutil.Error:
                pass
            self._found = None
            self._last_scan = float("-inf")
        now = time.monotonic()
        if now - self._last_scan < _RESCAN_S:
            return None
        self._last_scan = now
        found = self._listening_pid() or (self._serve_pid(self._names) if self._names else None)
        if found is not None:
            with contextlib.suppress(psutil.Error):
                self._found = (found, psutil.Process(found).create_time())
        return found

    def _listening_pid(self) -> int | None:
        # The exact answer; needs privileges on macOS, so it may come back empty there.
        try:
            connections = psutil.net_connections(kind="tcp")
        except (psutil.Error, OSError):
            return None
        for conn in connections:
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == self.port and conn.pid:
                return conn.pid
        return None

    @staticmethod
    def _serve_pid(names: tuple[str, ...]) -> int | None:
        for process in psutil.process_iter(["name", "cmdline"]):
            name = (process.info.get("name") or "").lower()
            if name not in names:
                continue
            cmdline = process.info.get("cmdline") or []
            if "serve" in cmdline[1:]:
                return int(process.pid)
        return None

"""Where an OpenAI-compatible server is: its base URL, its root, its API key, and whether it is local.

The OpenAI client wants the base URL with its API prefix (``http://host:8080/v1``); the servers'
own extras (llama-server's /props, vLLM's /version, LM Studio's /api/v0) hang off the root.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass

from lollma_tui.core.net import is_loopback_host, split_address

DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"
"""llama-server's default address; OPENAI_BASE_URL overrides it."""
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
NO_KEY = "no-key"
"""Sent when no key is set: local servers ignore it, and the client refuses to run without one."""


class BaseUrlError(ValueError):
    """A base URL that cannot be a server address; the message says what is wrong."""


def base_url(url: str | None = None) -> str:
    """The server's API base from an argument, else OPENAI_BASE_URL, else llama-server's default.

    Accepts ``host:port`` and ``http(s)://host[:port][/path]``; a URL without a path gets ``/v1``
    (every server here serves the API there). The result has no trailing slash.
    """
    from_env = not url and bool(os.environ.get("OPENAI_BASE_URL", "").strip())
    raw = (url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).strip()
    named = f"OPENAI_BASE_URL={raw}" if from_env else (url or raw)
    if "://" not in raw:
        raw = f"http://{raw}"
    try:
        split, port = split_address(raw, named)
    except ValueError as error:
        raise BaseUrlError(str(error)) from None
    if split.scheme not in ("http", "https"):
        raise BaseUrlError(f"{named}: the server address must start with http:// or https://")
    if not split.hostname:
        raise BaseUrlError(f"{named}: no host name in the server address")
    path = split.path.rstrip("/") or "/v1"
    host = split.hostname
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urllib.parse.urlunsplit((split.scheme, netloc, path, "", ""))


def server_root(url: str) -> str:
    """The base URL without its API prefix: where /props, /health, /metrics and /api/v0 live."""
    split = urllib.parse.urlsplit(url)
    path = split.path.rstrip("/")
    for suffix in ("/v1", "/api/v0"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urllib.parse.urlunsplit((split.scheme, split.netloc, path, "", ""))


def host_and_port(url: str) -> tuple[str, int]:
    split = urllib.parse.urlsplit(url)
    default = 443 if split.scheme == "https" else 80
    return split.hostname or "127.0.0.1", split.port or default


def is_loopback(url: str) -> bool:
    """True when the URL names this machine by a loopback address or name (`core.net`'s rule)."""
    return is_loopback_host(host_and_port(url)[0])


@dataclass(frozen=True, slots=True)
class ApiKey:
    """The key to send, and where it was looked for (error messages name the variable)."""

    env_name: str
    value: str | None

    @property
    def sent(self) -> str:
        return self.value or NO_KEY


def api_key(env_name: str | None = None) -> ApiKey:
    name = (env_name or DEFAULT_KEY_ENV).strip() or DEFAULT_KEY_ENV
    value = os.environ.get(name, "").strip()
    return ApiKey(name, value or None)

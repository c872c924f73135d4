"""Network rules shared by every HTTP client the app opens (Ollama, OpenAI-compatible servers).

The one rule here: a server on this machine is reached directly, never through a proxy taken
from ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``. httpx honours those variables for every
host, loopback included, while Go's HTTP client (and so the ollama CLI) exempts loopback; a
proxy set for the web would otherwise see every local conversation.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback_host(hostname: str) -> bool:
    """True for localhost (and ``*.localhost``), 127.0.0.0/8, ::1 and the unspecified addresses.

    0.0.0.0 and :: are included: people copy them from OLLAMA_HOST (where they mean "listen
    everywhere"), and a client connecting to them reaches this machine.
    """
    name = hostname.strip().strip("[]").rstrip(".").lower()
    if not name:
        return False
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


_NOT_IN_HOST_NAMES = frozenset('<>"{}|\\^`')


def split_address(url: str, named: str) -> tuple[urllib.parse.SplitResult, int | None]:
    """`url` split, with its port; raises ValueError worded for the user, who wrote `named`."""
    try:
        split = urllib.parse.urlsplit(url)
        port = split.port
    except ValueError as error:
        if "port" in str(error).lower():
            raise ValueError(f"{named}: the port is not a number from 1 to 65535") from None
        raise ValueError(f"{named}: not a server address ({error})") from None
    if any(char.isspace() or char in _NOT_IN_HOST_NAMES for char in split.hostname or ""):
        # urlsplit takes "a b" for a host name: it was asked for, and "not reachable" blamed the
        # server, again at every retry.
        raise ValueError(f"{named}: {split.hostname!r} is not a host name")
    return split, port


def url_hostname(url: str) -> str:
    """The host part of ``url``; a bare ``host[:port]`` (as OLLAMA_HOST allows) works too."""
    if "://" not in url:
        url = f"http://{url}"
    try:
        return urllib.parse.urlsplit(url).hostname or ""
    except ValueError:
        return ""


def trust_env_for(url: str, *, proxy_loopback: bool = False) -> bool:
    """The ``trust_env`` to give an httpx client for ``url``.

    False for a loopback host unless ``proxy_loopback`` (the user asked for a proxy even
    there); remote hosts keep honouring the environment (proxies, NO_PROXY, SSL_CERT_FILE).
    """
    if proxy_loopback:
        return True
    return not is_loopback_host(url_hostname(url))

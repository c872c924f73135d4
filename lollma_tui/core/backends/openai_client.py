"""Building the HTTP clients that talk to an OpenAI-compatible server.

`openai.AsyncOpenAI` runs on `httpx2`; the probes of the server's extras share one `httpx2`
client with it, so one decision covers both: whether proxy environment variables apply.
"""

from __future__ import annotations

import httpx2
from openai import AsyncOpenAI

from lollma_tui.core.net import trust_env_for

DEFAULT_TIMEOUT_S = 300.0
"""Longest silence tolerated: a model loading on demand (JIT, router mode) sends nothing."""
CONNECT_TIMEOUT_S = 3.0


def http_client(url: str, *, timeout_s: float, connect_timeout_s: float) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(timeout_s, connect=connect_timeout_s),
        # Proxy variables are for the web, never for this machine's own servers (core.net).
        trust_env=trust_env_for(url),
        follow_redirects=True,
    )


def openai_client(base_url: str, api_key: str, http: httpx2.AsyncClient) -> AsyncOpenAI:
    # No retries: a retried chat after a refused connection or a 5xx only delays the message
    # the user needs, and a retried stream would repeat text already shown.
    return AsyncOpenAI(base_url=base_url, api_key=api_key, http_client=http, max_retries=0)

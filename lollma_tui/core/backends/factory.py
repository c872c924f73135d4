"""One place that builds a backend of a kind, for the start-up options or for a named host.

Each backend's module is imported only when that backend is built: the OpenAI and Ollama
clients cost hundreds of milliseconds to import, which a llama.cpp session never pays.
"""

from __future__ import annotations

from lollma_tui.core.backends.base import Backend, BackendUnavailableError
from lollma_tui.core.settings import BackendKind, StartupOptions


def make_backend(kind: BackendKind, options: StartupOptions) -> Backend:
    """The backend of `kind` at the server the command line (or the environment) names."""
    if kind is BackendKind.OLLAMA:
        return make_server_backend(kind, options.ollama_host)
    if kind is BackendKind.OPENAI:
        return make_server_backend(kind, options.openai_base_url, api_key_env=options.openai_api_key_env)
    return make_server_backend(kind, None)


def make_server_backend(
    kind: BackendKind, url: str | None, *, api_key_env: str | None = None, timeout_s: float | None = None
) -> Backend:
    """The backend of `kind` at `url` (None: the environment's or the default server);
    `timeout_s`: how long a call may wait for the server (None: the backend's default, long
    enough for a reply or a load).

    Raises `BackendUnavailableError` when the address cannot be a server's (the message says
    why); nothing is contacted here.
    """
    try:
        if kind is BackendKind.OLLAMA:
            from lollma_tui.core.backends.ollama import DEFAULT_TIMEOUT_S, OllamaBackend

            return OllamaBackend(url, timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s)
        if kind is BackendKind.OPENAI:
            from lollma_tui.core.backends.openai import OpenAIBackend
            from lollma_tui.core.backends.openai_client import DEFAULT_TIMEOUT_S as OPENAI_TIMEOUT_S

            wait_s = OPENAI_TIMEOUT_S if timeout_s is None else timeout_s
            return OpenAIBackend(url, api_key_env=api_key_env, timeout_s=wait_s)
    except ValueError as error:  # OllamaHostError, BaseUrlError
        raise BackendUnavailableError(str(error)) from None
    from lollma_tui.core.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend()

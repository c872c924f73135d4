"""One place that builds a backend of a kind from the start-up options.

Each backend's module is imported only when that backend is built: the OpenAI and Ollama
clients cost hundreds of milliseconds to import, which a llama.cpp session never pays.
"""

from __future__ import annotations

from lollma_tui.core.backends.base import Backend
from lollma_tui.core.settings import BackendKind, StartupOptions


def make_backend(kind: BackendKind, options: StartupOptions) -> Backend:
    if kind is BackendKind.OLLAMA:
        from lollma_tui.core.backends.ollama import OllamaBackend

        return OllamaBackend(options.ollama_host)
    if kind is BackendKind.OPENAI:
        from lollma_tui.core.backends.openai import OpenAIBackend

        return OpenAIBackend(options.openai_base_url, api_key_env=options.openai_api_key_env)
    from lollma_tui.core.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend()

"""The OpenAI protocol test server and backend factory, for the chat-record tests."""

from __future__ import annotations

from openai_server.fixtures import llama_server, make_openai_backend

make_backend = make_openai_backend

__all__ = ["llama_server", "make_backend"]

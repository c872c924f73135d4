"""Fixtures for the OpenAI-compatible backend: the protocol test server and backends on it."""

from __future__ import annotations

from openai_server.fixtures import any_flavour_server, llama_server, make_openai_backend

make_backend = make_openai_backend

__all__ = ["any_flavour_server", "llama_server", "make_backend"]

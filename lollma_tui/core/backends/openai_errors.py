"""Failures of the openai client, as our `BackendError`s with one line a person can act on.

The client raises `APIStatusError` subclasses for 4xx/5xx answers, `APIConnectionError` when it
cannot connect (and, during a stream, when the connection drops: the transport error is its
cause), `APITimeoutError` on silence, and a bare `APIError` for an ``{"error": …}`` event inside
a stream. The words follow the Ollama backend's, so both read alike in the chat.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

import httpx2
import openai
import pydantic

from lollma_tui.core.backends.base import (
    BackendCrashedError,
    BackendError,
    BackendUnavailableError,
    ContextOverflowError,
    ModelLoadError,
    ModelNotFoundError,
)
from lollma_tui.core.checked import one_line

Operation = Literal["models", "load", "chat"]

CLIENT_ERRORS: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    httpx2.HTTPError,
    pydantic.ValidationError,
    json.JSONDecodeError,
)
"""What a call through the openai client can raise besides our own errors."""

_CONTEXT_WORDS = re.compile(r"context (size|length|window)|too many tokens|exceeds the available", re.I)


@dataclass(frozen=True, slots=True)
class Where:
    """What an error message names: the server, the model, the key's variable."""

    base_url: str
    server: str = "the server"
    """"llama-server", "vLLM", "LM Studio"… once detected."""
    model: str = ""
    key_env: str = "OPENAI_API_KEY"
    key_set: bool = False
    timeout_s: float | None = None

    @property
    def at(self) -> str:
        return f"{self.server} at {self.base_url}"

    @property
    def subject(self) -> str:
        """`at`, to start a sentence: "The server at …"; a product keeps its own spelling
        ("llama-server", "vLLM")."""
        return "The" + self.at[3:] if self.at.startswith("the ") else self.at


def translate(
    error: BaseException, where: Where, operation: Operation, *, streaming: bool = False
) -> BackendError:
    """The `BackendError` for `error`; `streaming` is True once reply text has started to arrive."""
    if isinstance(error, BackendError):
        return error
    if isinstance(error, openai.APITimeoutError):
        waited = f" within {where.timeout_s:g} s" if where.timeout_s else ""
        if operation == "load":
            return ModelLoadError(
                f"{where.subject} did not answer{waited}; it may still be loading {where.model}."
            )
        return BackendUnavailableError(f"{where.subject} stopped answering (nothing received{waited}).")
    if isinstance(error, openai.APIConnectionError):
        if operation == "load" and _dropped(error):
            # Its one-token try of the model: no reply to try again, a model to load again.
            return BackendCrashedError(
                f"{where.subject} closed the connection while trying {where.model} (did it crash"
                f" loading it?); once it is back, /model {where.model} loads it again."
            )
        if streaming or _dropped(error):
            return BackendCrashedError(
                f"{where.subject} closed the connection mid-reply; the conversation is kept, "
                "and Ctrl+R or your next message tries again."
            )
        return BackendUnavailableError(
            f"No OpenAI-compatible server answers at {where.base_url} — is it running?"
        )
    if isinstance(error, openai.APIStatusError):
        return _from_status(error.status_code, _message(error), where, operation)
    if isinstance(error, openai.APIResponseValidationError | pydantic.ValidationError | json.JSONDecodeError):
        return BackendError(f"{where.subject} sent a reply this app cannot read ({type(error).__name__}).")
    if isinstance(error, openai.APIError):
        # An error event inside a 200 stream: the server failed after it started answering.
        return BackendCrashedError(f"{where.subject} failed mid-reply: {one_line(error.message)}")
    if isinstance(error, httpx2.HTTPError):
        return BackendUnavailableError(f"Talking to {where.at} failed: {one_line(str(error))}")
    return BackendError(f"Request to {where.at} failed: {one_line(repr(error))}")


_TAG = re.compile(r"<[^>]*>")
MAX_BODY_CHARS = 4096
"""Of a body that is not JSON, what is read for the message."""


def _dropped(error: openai.APIConnectionError) -> bool:
    """A connection that was open and then lost, as opposed to one that never opened."""
    cause = error.__cause__
    return isinstance(cause, httpx2.ReadError | httpx2.RemoteProtocolError)


def _message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return one_line(value)
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return one_line(value["message"])
    if isinstance(body, str):
        # Not JSON: a plain-text error, or a proxy's HTML page (openai keeps only the status).
        text = one_line(_TAG.sub(" ", body[:MAX_BODY_CHARS]))
        if text:
            return text
    return one_line(error.message)


def _from_status(status: int, message: str, where: Where, operation: Operation) -> BackendError:
    if status in (401, 403):
        if not where.key_set:
            return BackendUnavailableError(
                f"{where.subject} needs an API key ({status}): put it in ${where.key_env} "
                "(or name another variable with --api-key-env)."
            )
        return BackendUnavailableError(
            f"{where.subject} rejected the API key in ${where.key_env} ({status}): {message}"
        )
    if status == 404:
        if operation == "models":
            return BackendUnavailableError(
                f"{where.base_url} has no /models endpoint (404) — is it the API's base URL, e.g. …/v1?"
            )
        if where.model:
            return ModelNotFoundError(f"{where.subject} has no model '{where.model}' (404): {message}")
        return BackendError(f"{where.subject} answered 404: {message}")
    if status == 429:
        return BackendError(f"{where.subject} is limiting requests (429): {message} — try again shortly.")
    if status in (400, 413, 422):
        if _CONTEXT_WORDS.search(message):
            return ContextOverflowError(
                f"{where.subject}: the conversation does not fit the context: {message}"
            )
        return BackendError(f"{where.subject} rejected the request ({status}): {message}")
    if status in (502, 504):
        return BackendUnavailableError(
            f"{where.subject} did not answer the proxy in front of it ({status}): {message}"
        )
    if status == 503:
        return BackendUnavailableError(f"{where.subject} is busy or still loading (503): {message}")
    if status >= 500 and operation in ("load", "chat"):
        return ModelLoadError(
            f"{where.subject} could not run {where.model or 'the model'} ({status}): {message}"
        )
    return BackendError(f"{where.subject} error {status}: {message}")

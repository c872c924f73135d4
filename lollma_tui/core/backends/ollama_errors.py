"""Failures of the ollama client, as our `BackendError`s with one line a person can act on.

The client surfaces failures in several shapes (reference/backends.md §A.9): `ResponseError`
with the HTTP status (or -1 for an error line inside a 200 stream), the builtin
`ConnectionError` from non-streaming calls, a raw `httpx.ConnectError` from streaming ones,
httpx timeouts, and on malformed replies whatever parsing them raises: pydantic errors, bad
JSON, NaN where an integer belongs, a list where an object belongs (``cls(**reply)``, a
TypeError), JSON nested past the parser's recursion limit. All of those are one error.
"""

from __future__ import annotations

import json
from typing import Literal

import httpx
import ollama
import pydantic

from lollma_tui.core.backends.base import (
    BackendCrashedError,
    BackendError,
    BackendUnavailableError,
    ModelLoadError,
    ModelNotFoundError,
)
from lollma_tui.core.checked import one_line

__all__ = ["CLIENT_ERRORS", "Operation", "one_line", "translate", "unreachable_message"]

Operation = Literal["load", "chat", "unload", "list", "show", "ps", "pull", "delete", "version"]

MALFORMED_REPLY_ERRORS: tuple[type[BaseException], ...] = (
    pydantic.ValidationError,
    json.JSONDecodeError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    OverflowError,
    RecursionError,
)
"""What reading a reply of an unexpected shape raises, in the client or in our decoding."""

CLIENT_ERRORS: tuple[type[BaseException], ...] = (
    ollama.ResponseError,
    ollama.RequestError,
    httpx.HTTPError,
    ConnectionError,
    *MALFORMED_REPLY_ERRORS,
)
"""What a call through the ollama client can raise besides our own errors."""

UNREADABLE_REPLY = "Ollama sent a reply this app cannot read"


def unreachable_message(base_url: str) -> str:
    return f"Ollama is not reachable at {base_url} — is `ollama serve` running?"


def translate(
    error: BaseException,
    *,
    base_url: str,
    operation: Operation,
    model: str = "",
    timeout_s: float | None = None,
) -> BackendError:
    """The `BackendError` to raise for `error`, raised by the client during `operation`."""
    if isinstance(error, BackendError):
        return error
    if isinstance(error, ollama.ResponseError):
        return _from_response(error, operation=operation, model=model)
    if isinstance(error, httpx.ConnectTimeout):
        return BackendUnavailableError(
            f"Ollama at {base_url} did not accept the connection in time — is it running?"
        )
    # The client wraps httpx.ConnectError in the builtin ConnectionError, but only on
    # non-streaming calls; a dropped connection (reset, broken pipe) is a different story.
    if isinstance(error, httpx.ConnectError) or (
        isinstance(error, ConnectionError) and not isinstance(error, ConnectionResetError | BrokenPipeError)
    ):
        return BackendUnavailableError(unreachable_message(base_url))
    if isinstance(error, httpx.TimeoutException):
        waited = f" within {timeout_s:g} s" if timeout_s else ""
        if operation == "load":
            return ModelLoadError(f"Ollama did not finish loading {model}{waited}; it may still be loading.")
        return BackendUnavailableError(f"Ollama stopped answering (nothing received{waited}).")
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError | ConnectionResetError):
        if operation == "chat":
            return BackendCrashedError(
                "Ollama closed the connection mid-reply; the conversation is kept, "
                "and Ctrl+R or your next message tries again."
            )
        return BackendUnavailableError(f"Lost the connection to Ollama at {base_url}.")
    if isinstance(error, ollama.RequestError):
        return BackendError(f"Invalid request to Ollama: {one_line(error.error)}")
    if isinstance(error, httpx.HTTPError):
        return BackendUnavailableError(f"Talking to Ollama at {base_url} failed: {one_line(str(error))}")
    if isinstance(error, MALFORMED_REPLY_ERRORS):
        return BackendError(f"{UNREADABLE_REPLY} ({type(error).__name__}).")
    return BackendError(f"Ollama request failed: {one_line(repr(error))}")


def _from_response(error: ollama.ResponseError, *, operation: Operation, model: str) -> BackendError:
    message = one_line(error.error)
    status = error.status_code
    if status == 404:
        if model and operation == "delete":
            return ModelNotFoundError(f"Ollama has no model '{model}' to delete.")
        if model:
            return ModelNotFoundError(
                f"Ollama has no model '{model}' — /pull {model} downloads it (or `ollama pull {model}`)."
            )
        return BackendError(f"Ollama answered 404: {message}")
    if status == -1:
        # An {"error": ...} line inside a 200 stream: the server failed after it started.
        if operation == "pull":
            if "file does not exist" in message:
                return ModelNotFoundError(f"The Ollama library has no model '{model}' ({message}).")
            return BackendError(message)  # said as "pull MODEL failed: …"
        return BackendCrashedError(f"Ollama failed mid-reply: {message}")
    if status == 500 and operation in ("load", "chat"):
        return ModelLoadError(f"Ollama could not load {model}: {message}")
    if status == 400:
        return BackendError(f"Ollama rejected the request: {message}")
    if status == 503:
        return BackendUnavailableError(f"Ollama is busy: {message}")
    return BackendError(f"Ollama error {status}: {message}")

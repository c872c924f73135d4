"""What a backend talking to an HTTP server keeps about itself: status, listener, server process,
and the task reading a reply (cancelling it closes the response, and the server stops)."""

from __future__ import annotations

import asyncio

from lollma_tui.core.backends.base import BackendState, BackendStatus, LoadedModel, StatusListener
from lollma_tui.core.backends.ollama_host import ServerProcessFinder


class ServerBackendState:
    """Mixin for the Ollama and OpenAI backends; they set these attributes in `__init__`."""

    _status: BackendStatus
    _loaded: LoadedModel | None
    _on_status: StatusListener | None
    _finder: ServerProcessFinder | None
    """Finds the server's process when it runs on this machine; None for a remote server."""
    _pump: asyncio.Task[None] | None
    """The task reading the reply's HTTP stream."""
    _cancel_requested: bool

    @property
    def status(self) -> BackendStatus:
        return self._status

    @property
    def loaded(self) -> LoadedModel | None:
        return self._loaded

    def set_status_listener(self, listener: StatusListener | None) -> None:
        self._on_status = listener

    def _set_status(self, state: BackendState, message: str = "") -> None:
        self._status = BackendStatus(state, message, self._loaded)
        if self._on_status is not None:
            self._on_status(self._status)

    def process_ids(self) -> tuple[int, ...]:
        """The local server process (an Ollama server's runners are its children); () when remote."""
        if self._finder is None:
            return ()
        pid = self._finder.pid()
        return (pid,) if pid is not None else ()

    async def cancel(self) -> None:
        """Stop the reply in flight: the HTTP stream is closed, which stops the server generating."""
        pump = self._pump
        if pump is None or pump.done():
            return
        self._cancel_requested = True
        pump.cancel()
        await asyncio.wait({pump})

"""An aiohttp application served on 127.0.0.1 from a thread of its own, for the protocol test
servers: the tests' event loops (and Pilot's) stay free while the server answers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future

from aiohttp import web


class SiteThread:
    def __init__(
        self,
        build: Callable[[], web.Application],
        *,
        name: str,
        port: int = 0,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._build = build
        self._name = name
        self.port = port
        """0 until started on a free port; the port asked for otherwise."""
        self._on_stop = on_stop
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> int:
        """Serve, and return the port once the server listens."""
        ready: Future[int] = Future()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name=self._name, daemon=True)
        self._thread.start()
        self.port = ready.result(timeout=10)
        return self.port

    def stop(self) -> None:
        loop, thread = self.loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self.loop = self._thread = None

    def _serve(self, ready: Future[int]) -> None:
        loop = self.loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_site())
        except BaseException as error:
            ready.set_exception(error)
            return
        ready.set_result(self.port)
        loop.run_forever()
        loop.run_until_complete(self._shutdown())
        loop.close()

    async def _start_site(self) -> None:
        # handler_cancellation: a client that goes away cancels its handler (as a server cancels
        # the request's context), which is how the servers see and record a disconnect.
        self._runner = web.AppRunner(
            self._build(), handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._on_stop is not None:
            await self._on_stop()

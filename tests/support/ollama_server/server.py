"""`OllamaTestServer`: the fake Ollama on 127.0.0.1, in a background thread with its own loop.

Tests talk to it over real HTTP (any Ollama client works) and steer it from the test thread:
queue scripted replies, inject faults and delays, read what it received and did.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from site_thread import SiteThread

from .app import OllamaApp
from .catalog import GIB, ModelRegistry, ModelSpec, default_installed, default_library
from .engines import Engine, Script, ScriptedEngine
from .records import Faults, GenerationRecord, LoadRecord, Records, RequestRecord, UnloadRecord
from .scheduler import Runner, Scheduler

T = TypeVar("T")

VERSION = "0.33.0"


def free_port() -> int:
    """A port nothing listens on (bound and released; good enough on a test machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OllamaTestServer:
    def __init__(
        self,
        *,
        engine: Engine | None = None,
        installed: Iterable[ModelSpec] | None = None,
        library: Iterable[ModelSpec] | None = None,
        port: int = 0,
        vram_bytes: int = 24 * GIB,
        default_num_ctx: int = 4096,
        max_loaded: int = 3,
        version: str = VERSION,
    ) -> None:
        self.engine: Engine = engine if engine is not None else ScriptedEngine()
        installed_list = list(installed) if installed is not None else default_installed()
        library_list = list(library) if library is not None else default_library()
        self.registry = ModelRegistry(installed_list, library_list)
        self.records = Records()
        self.faults = Faults()
        self.scheduler = Scheduler(
            self.engine,
            self.records,
            self.faults,
            vram_bytes=vram_bytes,
            default_num_ctx=default_num_ctx,
            max_loaded=max_loaded,
        )
        self.version = version
        self.port = port
        self._site: SiteThread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the form `ollama.Client(host=...)` and OLLAMA_HOST take."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OllamaTestServer:
        build = OllamaApp(self.registry, self.scheduler, self.records, self.faults, self.version).build
        self._site = SiteThread(build, name="ollama-test-server", port=self.port, on_stop=self._shutdown)
        self.port = self._site.start()
        return self

    async def _shutdown(self) -> None:
        await self.scheduler.unload_all()
        await self.engine.close()

    def stop(self) -> None:
        if self._site is not None:
            self._site.stop()
            self._site = None

    @property
    def _loop(self) -> asyncio.AbstractEventLoop | None:
        return self._site.loop if self._site is not None else None

    def __enter__(self) -> OllamaTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, coro_fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop from the test thread and return its result."""
        assert self._loop is not None, "server not started"
        return asyncio.run_coroutine_threadsafe(coro_fn(), self._loop).result(timeout)

    # -- scripting ----------------------------------------------------------------------------

    @property
    def scripted(self) -> ScriptedEngine:
        assert isinstance(self.engine, ScriptedEngine), "this server runs a real engine"
        return self.engine

    def queue_reply(self, *replies: Script | str) -> None:
        """The next replies, in order; after them the engine's default script answers."""
        self.scripted.queue(*replies)

    def set_default_reply(self, reply: Script | str) -> None:
        self.scripted.default = Script(text=reply) if isinstance(reply, str) else reply

    # -- faults -------------------------------------------------------------------------------

    def fail_next_load(self, message: str = "llama runner process has terminated: exit status 2") -> None:
        """The next real (re)load answers 500 with this message (no effect on a warm model)."""
        self.faults.load_errors.append(message)

    def fail_stream(
        self, message: str = "an error was encountered while running the model", after: int = 1
    ) -> None:
        """The next generation fails after `after` pieces (0: a 500 before any byte)."""
        self.faults.stream_errors.append((after, message))

    def reply_raw(
        self,
        path: str,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = "application/json",
        times: int = 1,
    ) -> None:
        """The next `times` requests to `path` get `body` as is (a stream: NDJSON lines)."""
        queue = self.faults.raw_replies.setdefault(path, deque())
        queue.extend([(status, body, content_type)] * times)

    def delay_load(self, seconds: float) -> None:
        self.faults.load_delay_s = seconds

    def delay_first_token(self, seconds: float) -> None:
        self.faults.first_token_delay_s = seconds

    def delay_pieces(self, seconds: float) -> None:
        self.faults.piece_delay_s = seconds

    def delay_pull_steps(self, seconds: float) -> None:
        self.faults.pull_step_delay_s = seconds

    def clear_faults(self) -> None:
        self.faults.load_errors.clear()
        self.faults.stream_errors.clear()
        self.faults.raw_replies.clear()
        self.faults.load_delay_s = self.faults.first_token_delay_s = 0.0
        self.faults.piece_delay_s = self.faults.pull_step_delay_s = 0.0

    # -- models -------------------------------------------------------------------------------

    def install(self, spec: ModelSpec) -> None:
        self.registry.install(spec)

    def installed_names(self) -> list[str]:
        return [spec.name for spec in self.registry.installed()]

    def loaded(self) -> list[Runner]:
        """What /api/ps would list (expired models purged), longest-lived first."""
        result: list[Runner] = self.call(self.scheduler.loaded)
        return result

    # -- records ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        return list(self.records.requests)

    def requests_to(self, path: str) -> list[RequestRecord]:
        return [r for r in self.records.requests if r.path == path]

    @property
    def generations(self) -> list[GenerationRecord]:
        return list(self.records.generations)

    @property
    def disconnects(self) -> list[GenerationRecord]:
        """Generations the client abandoned midway: cancellation that reached the server."""
        return [g for g in self.records.generations if g.disconnected]

    @property
    def loads(self) -> list[LoadRecord]:
        return list(self.records.loads)

    @property
    def reload_count(self) -> int:
        return sum(1 for load in self.records.loads if load.reason == "reload")

    @property
    def unloads(self) -> list[UnloadRecord]:
        return list(self.records.unloads)

    def clear_records(self) -> None:
        self.records.clear()

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Block the calling thread until `predicate()` is truthy (it is re-checked on changes)."""
        result: T = self.records.wait_for(predicate, timeout)
        return result

    async def until(self, predicate: Callable[[], T], within_s: float = 5.0) -> T:
        """`wait_for` for async tests: polls without blocking the test's event loop."""
        deadline = time.monotonic() + within_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {within_s} s")
            await asyncio.sleep(0.01)

"""The model behind the chat: one `ModelSession`, its first load, swaps, hosts, and Ollama's models.

A plain object the chat screen owns. Loads and swaps (moves to another host included) run as the
screen's workers and end in a `SwapFinished` message; the backend's status changes arrive as
`BackendStatusChanged`; what the user should read arrives as `NoticePosted`. It never touches a
widget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from textual.dom import DOMNode

from lollma_tui.core.backends.base import Backend, BackendError, BackendState, BackendStatus, LoadedModel
from lollma_tui.core.backends.describe import format_loaded
from lollma_tui.core.hosts import HostEntry, host_for_server, options_url, session_hosts
from lollma_tui.core.models.demo import DemoModelError, demo_for, ensure_demo_model, sampling_after_demo
from lollma_tui.core.settings import (
    BackendKind,
    LoadSettings,
    SamplingSettings,
    StartupOptions,
    sampling_field_names,
)
from lollma_tui.core.settings_table import find_setting
from lollma_tui.ui.literal import plain
from lollma_tui.ui.messages import BackendStatusChanged, NoticePosted, SwapFinished, SwapProgressed

if TYPE_CHECKING:
    from lollma_tui.core.backends.ollama import OllamaBackend
    from lollma_tui.core.backends.ollama_models import PullProgress
    from lollma_tui.core.models.catalog import Catalog
    from lollma_tui.core.session import MemoryBudget, SwapProgress, SwapResult
    from lollma_tui.core.session.session import ModelSession

BASE_DEMO_NOTICE = (
    "Demo model: Gemma 3 270M is a base model, not an instruction-tuned one, so its replies "
    "ramble. This session uses a repeat penalty of {penalty} and at most {limit} tokens per reply to "
    "keep them readable. For real chats start lollma-tui with --model PATH/TO/your-instruct.gguf."
)
DEMO_NOTICE = (
    "Demo model: SmolLM2 135M Instruct, small enough to answer at once on any CPU, and often "
    "wrong. For real chats start lollma-tui with --model PATH/TO/your-instruct.gguf."
)

Budget = Callable[[], "MemoryBudget | None"]
FirstBudget = Callable[[], Awaitable["MemoryBudget | None"]]
FIRST_RETRY_S = 1.0
"""How long the first load waits before asking a server that did not answer again (then longer)."""

ChatModel = Callable[[BackendKind, "str | None"], Awaitable["str | None"]]


LISTED_MODELS = 8
"""How many of a server's models the chat names when none was chosen."""


class ModelController:
    """Owns the active backend through a `ModelSession`; every load and swap goes through it."""

    list_timeout_s = 10.0
    """How long another server may take to say what it offers (`catalog_of`): the drawer says
    "asking…" meanwhile, so not a reply's or a load's five minutes."""

    def __init__(
        self,
        owner: DOMNode,
        options: StartupOptions,
        *,
        backend: Backend | None = None,
        hosts: Sequence[HostEntry] = (),
        budget: Budget,
        first_budget: FirstBudget,
    ) -> None:
        self._owner = owner
        self._options = options
        self._first_backend = backend
        self._budget = budget
        self._first_budget = first_budget
        self._session: ModelSession | None = None
        self._demo_notice_shown = False
        self._demo_sampling_left = False
        self._demo_name: str | None = None
        """The demo model's name, once loaded: its other quantizations keep its sampling."""
        self._sampling_note: str | None = None
        self.hosts, self._start_host = session_hosts(options, hosts)
        """Every host the chat can move to (`/host NAME`), the one it starts on among them."""
        self._host_models: dict[str, str] = {}
        """The model last loaded on each host, by name, for moving back to it."""
        self._refused: tuple[LoadSettings, HostEntry | None] | None = None
        """The last swap the fit check refused, and where it was to load, for /force."""
        self._swap_asked = False
        """A swap worker is started and has not finished (`session.swapping` says only once it
        holds the session's lock)."""
        self.status: BackendStatus | None = None
        """The status last reported to the screen: the backend's own, or this controller's while
        it waits for a server to answer (the backend then still says only "no model")."""

    # -- the session -----------------------------------------------------------------------------

    @property
    def session(self) -> ModelSession:
        """Built on the UI thread, once the first frame is up (it pulls in the estimator and the
        catalog); `ChatScreen.start` builds it before anything runs on another thread."""
        if self._session is None:
            from lollma_tui.core.session.session import ModelSession

            self._session = ModelSession(
                self._backend_for,
                self._options.load,
                self._options.sampling,
                host_factory=self._backend_for_host,
                host=self._start_host,
            )
        return self._session

    def _backend_for(self, kind: BackendKind) -> Backend:
        """The session's backend factory: the injected backend first, then fresh ones."""
        from lollma_tui.core.backends.factory import make_backend

        return self._listened(self._injected(kind) or make_backend(kind, self._options))

    def _backend_for_host(self, host: HostEntry) -> Backend:
        from lollma_tui.core.backends.factory import make_server_backend

        if host == self._start_host and (injected := self._injected(host.kind)) is not None:
            return self._listened(injected)
        return self._listened(make_server_backend(host.kind, host.url, api_key_env=host.api_key_env))

    def _injected(self, kind: BackendKind) -> Backend | None:
        backend = self._first_backend
        if backend is None or backend.kind != kind:
            return None
        self._first_backend = None
        return backend

    def _listened(self, backend: Backend) -> Backend:
        backend.set_status_listener(self._status)
        return backend

    @property
    def host(self) -> HostEntry:
        """The host the chat runs on now."""
        session = self._session
        host = session.host if session is not None else None
        return host or self._start_host

    def _default_host(self, kind: BackendKind) -> HostEntry:
        """The host a plain swap to `kind` goes to: the start host, else the command line's (or
        the environment's) server of that kind, listed from now on."""
        if self._start_host.kind is kind:
            return self._start_host
        host = host_for_server(kind, options_url(self._options, kind), self.hosts)
        if host not in self.hosts:
            self.hosts = (*self.hosts, host)
        return host

    async def catalog_of(self, kind: BackendKind) -> Catalog:
        """What the server a switch to `kind` would use offers, asked without switching: a client
        made for the question and closed. Raises `BackendError` when the server cannot be asked."""
        from lollma_tui.core.backends.factory import make_server_backend
        from lollma_tui.core.session.backend_catalog import server_catalog

        session = self.session
        if kind is session.kind:
            return await session.catalog()
        host = self._start_host
        if host.kind is not kind:
            host = host_for_server(kind, options_url(self._options, kind), self.hosts)
        backend = make_server_backend(
            host.kind, host.url, api_key_env=host.api_key_env, timeout_s=self.list_timeout_s
        )
        try:
            return await server_catalog(backend)
        finally:
            await backend.close()

    def find_host(self, name: str) -> HostEntry | None:
        """The host named `name`, as written or as shown (Tab completes the shown name)."""
        exact = next((h for h in self.hosts if h.name == name), None)
        return exact or next((h for h in self.hosts if plain(h.name, one_line=True) == name), None)

    def split_host_argument(self, argument: str) -> tuple[str, str]:
        """/host's argument as (host name, model): a name may hold spaces, so the longest
        known name the argument starts with wins; otherwise the first word is the name."""
        argument = argument.strip()
        names = sorted(
            {n for h in self.hosts for n in (h.name, plain(h.name, one_line=True))}, key=len, reverse=True
        )
        for name in names:
            if argument == name or argument.startswith(name + " "):
                return name, argument[len(name) :].strip()
        name, _, model = argument.partition(" ")
        return name, model.strip()

    def process_ids(self) -> tuple[int, ...]:
        """Our model processes, for the hardware sampler's thread: it never builds the session."""
        session = self._session
        return session.process_ids() if session is not None else ()

    @property
    def backend(self) -> Backend:
        return self.session.backend

    @property
    def settings(self) -> LoadSettings:
        """The load settings as asked for (the loaded model's own carry "auto" resolved)."""
        return self.session.settings

    @property
    def sampling(self) -> SamplingSettings:
        return self.session.sampling

    @sampling.setter
    def sampling(self, value: SamplingSettings) -> None:
        self.session.set_sampling(value)

    @property
    def loaded(self) -> LoadedModel | None:
        return self.backend.status.loaded

    @property
    def ready(self) -> bool:
        """A model is loaded and no swap is under way."""
        return self.loaded is not None and not self.session.swapping

    def nothing_loaded(self) -> bool:
        """No model, none on its way, and the last load failed: asking for it again retries."""
        return self.loaded is None and not self.loading and self.backend.status.state is BackendState.FAILED

    async def close(self) -> None:
        """End the worker process (and its spare); safe to call again."""
        if self._session is not None:
            await self._session.close()

    # -- loading and swapping ----------------------------------------------------------------------

    def load_first(self, chat_model: ChatModel | None = None) -> None:
        """The first load, after waiting for Ollama or assembling the demo when needed.

        `chat_model` tells which model the resumed chat last used on a server: with none named
        and several on offer, that one is loaded again (as a chat keeps its model in oterm).
        """
        work = self._load_first(chat_model)
        self._owner.run_worker(work, group="model-load", exclusive=True, exit_on_error=False)

    def force_refused(self) -> bool:
        """/force: load the set-up the fit check last refused, as asked; False when none was."""
        if self._refused is None:
            return False
        target, host = self._refused
        self._start_swap(target, True, host)
        return True

    def swap_to(self, target: LoadSettings, *, force: bool = False) -> bool:
        """Hot-swap: stop the reply, unload, load `target`, and go back to the old model on failure."""
        session = self.session
        host = session.host if session.kind is target.backend else self._default_host(target.backend)
        return self._start_swap(target, force, host)

    def move_to_host(self, host: HostEntry, model: str) -> bool:
        """Move the chat to `host`, loading `model` there; a failure goes back to where it was."""
        return self._start_swap(self.settings.with_changes(backend=host.kind, model=model), False, host)

    def _start_swap(self, target: LoadSettings, force: bool, host: HostEntry | None) -> bool:
        """False (and the user is told) while another load runs: a change asked for meanwhile
        was worked out from the settings before it, so it would undo that load's change."""
        if self._refused_while_loading():
            return False
        self._swap_asked = True
        self._owner.run_worker(self._swap(target, force, host), group="swap", exit_on_error=False)
        return True

    @property
    def loading(self) -> bool:
        """A load or swap is asked for or running."""
        return self._swap_asked or self.session.swapping

    def _refused_while_loading(self) -> bool:
        if not self.loading:
            return False
        self._notice("A model is loading: change the set-up again once it is ready.", "warning")
        return True

    def reply_heading(self) -> str:
        """The heading of a reply about to be written: the model, its quant and where it runs."""
        from lollma_tui.core.backends.describe import format_reply_heading

        loaded = self.loaded
        if loaded is None:
            return plain(Path(self.settings.model).name, one_line=True) or "assistant"
        return plain(format_reply_heading(loaded, self.host.name), one_line=True)

    def remembered_model(self, host: HostEntry) -> str | None:
        """The model last loaded on `host` in this session, if any."""
        return self._host_models.get(host.name)

    async def _load_first(self, chat_model: ChatModel | None) -> None:
        settings: LoadSettings | None = self.settings
        asked = settings.model if settings is not None else ""
        if settings is not None and settings.backend in (BackendKind.OLLAMA, BackendKind.OPENAI):
            if settings.backend is BackendKind.OLLAMA:
                settings = await self._wait_for_ollama(settings, chat_model)
            else:
                settings = await self._wait_for_openai(settings, chat_model)
            if settings is None or self.loading or self.loaded is not None:
                return  # a change asked for while the server was down loads its own model
            # What was set meanwhile (/set, the drawer) counts, not the copy taken before the wait;
            # the model is the one the wait settled on, unless another was named meanwhile.
            current = self.settings
            if current.model in ("", asked):
                current = current.with_changes(model=settings.model)
            settings = current
        if settings is None:
            return
        demo = demo_for(settings.model) if self._options.demo else None
        if demo is not None:
            try:
                await asyncio.to_thread(ensure_demo_model, demo)
            except DemoModelError as error:
                self._notice(str(error), "error")
                return
        budget = await self._first_budget()
        result = await self.session.swap(settings, budget=budget, always_reload=True, progress=self._progress)
        self._finished(result, first=True, host=self.session.host)

    async def _swap(self, target: LoadSettings, force: bool, host: HostEntry | None) -> None:
        session = self.session
        try:
            budget = self._budget()
            if budget is None and target.backend is BackendKind.LLAMA_CPP:
                budget = await self._first_budget()  # the panel watches another machine
            result = await session.swap(
                target, budget=budget, force=force, progress=self._progress, host=host
            )
        finally:
            self._swap_asked = False
        self._finished(result, host=host)

    def _finished(self, result: SwapResult, *, first: bool = False, host: HostEntry | None = None) -> None:
        self._remember_host_model()
        # The memory estimate is an estimate: the user may know better (/force).
        short = result.refused and result.plan is not None and result.plan.short_of_memory
        self._refused = (result.requested, host) if short else None
        if not result.ok and self.loaded is None:
            # Refused before the engine was asked (does not fit, unreadable file), or failed with
            # nothing to go back to: the status must say why, not just "no model".
            self._status(BackendStatus(BackendState.FAILED, result.message))
        self._sampling_note = self._leave_demo_sampling(result.loaded) if result.ok else None
        self._owner.post_message(SwapFinished(result, first=first))

    def _leave_demo_sampling(self, loaded: LoadedModel | None) -> str | None:
        """Off the demo for the first time: its own sampling gives way to the defaults."""
        demo = demo_for(self._options.load.model) if self._options.demo else None
        if demo is None or loaded is None or self._demo_sampling_left:
            return None
        if demo_for(loaded.settings.model):
            self._demo_name = loaded.name
            return None
        if loaded.name == self._demo_name and loaded.settings.backend is BackendKind.LLAMA_CPP:
            return None  # the demo model in another quantization: its sampling still suits it
        self._demo_sampling_left = True
        before = self.sampling
        self.sampling = after = sampling_after_demo(demo, before)
        changed = [name for name in sampling_field_names() if getattr(after, name) != getattr(before, name)]
        if not changed:
            return None
        shown = ", ".join(f"{name} {find_setting(name).format(getattr(after, name))}" for name in changed)
        return f"Sampling back at the defaults where the demo model had its own: {shown}"

    def _remember_host_model(self) -> None:
        loaded = self.loaded
        if loaded is not None:
            self._host_models[self.host.name] = loaded.settings.model

    def _progress(self, progress: SwapProgress) -> None:
        self._owner.post_message(SwapProgressed(progress))

    def report(self, result: SwapResult) -> list[tuple[str, str]]:
        """What to tell the user about a finished swap: (text, kind) lines for the chat log."""
        loaded = result.loaded
        if result.refused and result.plan is not None and result.plan.short_of_memory:
            return [(f"{result.message} · /force loads it anyway", "error")]
        if not result.ok:
            return [(result.message, "error" if not result.rolled_back else "warning")]
        if not result.reloaded:
            return [(result.message, "info")]
        lines: list[tuple[str, str]] = []
        if self._sampling_note:
            lines.append((self._sampling_note, "info"))
        if loaded is not None:
            lines.append((format_loaded(loaded), "info"))
            # The session's notes already include the backend's own ones.
            lines.extend((note, "info") for note in dict.fromkeys((*loaded.notes, *result.notes)))
        demo = demo_for(loaded.settings.model) if self._options.demo and loaded is not None else None
        if demo is not None and not self._demo_notice_shown:
            self._demo_notice_shown = True
            notice = BASE_DEMO_NOTICE if demo.base_model else DEMO_NOTICE
            text = notice.format(penalty=self.sampling.repeat_penalty, limit=self.sampling.max_tokens)
            lines.append((text, "warning" if demo.base_model else "info"))
        return lines

    async def _wait_for_ollama(
        self, settings: LoadSettings, chat_model: ChatModel | None
    ) -> LoadSettings | None:
        """Wait (retrying with backoff) until the server answers, then settle which model to load."""
        backend = self.ollama()
        if backend is None:
            return settings
        from lollma_tui.core.backends.ollama import PING_TIMEOUT_S

        delay = FIRST_RETRY_S
        while True:
            if self.ollama() is not backend:
                return None  # another backend was chosen meanwhile (as for OpenAI)
            try:
                version = await backend.version(timeout_s=PING_TIMEOUT_S)
                break
            except BackendError as error:
                # Not only "not reachable": another server on that port answers, and says so.
                delay = await self._retry_after(str(error), delay)
        self._notice(f"Connected to Ollama {version} at {backend.base_url}.")
        if settings.model:
            return settings
        try:
            models = await backend.list_models()
        except BackendError as error:
            self._notice(str(error), "error")
            return None
        if len(models) == 1:
            return settings.with_changes(model=models[0].name)
        from lollma_tui.core.backends.ollama_models import same_model

        used = await chat_model(BackendKind.OLLAMA, backend.base_url) if chat_model is not None else None
        offered = next((m.name for m in models if used is not None and same_model(m.name, used)), None)
        if offered is not None:
            self._notice(f"Loading {offered}, the model this chat last used on this server.")
            return settings.with_changes(model=offered)
        if not models:
            self._notice("This Ollama server has no models yet: /pull llama3.2:1b downloads one.", "warning")
        else:
            # A server with fifty models filled the chat with their names.
            names = sorted(m.name for m in models)
            shown = ", ".join(names[:LISTED_MODELS])
            more = (
                f" (+{len(names) - LISTED_MODELS} more; Tab completes /model)"
                if len(names) > LISTED_MODELS
                else ""
            )
            self._notice(f"Models on this server: {shown}{more}. Choose one with /model NAME.")
        self._status(BackendStatus(BackendState.UNLOADED, "No model chosen"))
        return None

    async def _wait_for_openai(
        self, settings: LoadSettings, chat_model: ChatModel | None
    ) -> LoadSettings | None:
        """As for Ollama: retried until the server answers; with no model named and several on
        offer, the one the resumed chat last used there."""
        from lollma_tui.core.backends.base import BackendUnavailableError
        from lollma_tui.core.backends.openai import OpenAIBackend

        backend, delay = self.backend, FIRST_RETRY_S
        if not isinstance(backend, OpenAIBackend):
            return settings
        self._status(BackendStatus(BackendState.UNLOADED, f"Connecting to {backend.base_url}…"))
        while True:
            if self.backend is not backend:
                # Another backend was chosen meanwhile: this one is closed, and its next try
                # failed on it ("_load_first failed: … the client has been closed").
                return None
            try:
                served = await backend.list_models()
                ids = [model.id for model in served]
                break
            except BackendUnavailableError as error:
                delay = await self._retry_after(str(error), delay)
            except BackendError:
                return settings  # its load says why (an API key, say)
        if delay > FIRST_RETRY_S:
            self._notice(f"Connected to {backend.base_url}.")
        if (named := settings.model.strip()) and named not in ids:
            # Part of a name, as /model takes it ("--model qwen" for "qwen2.5-7b-instruct").
            from lollma_tui.core.session.models import ModelChoiceError, openai_catalog, resolve_model

            try:
                return settings.with_changes(model=resolve_model(named, openai_catalog(served)).ref)
            except ModelChoiceError:
                return settings  # its load says what the server offers
        used = await chat_model(BackendKind.OPENAI, backend.base_url) if chat_model is not None else None
        if settings.model.strip() or len(ids) < 2 or used not in ids:
            return settings
        self._notice(f"Loading {used}, the model this chat last used on this server.")
        return settings.with_changes(model=used)

    async def _retry_after(self, message: str, delay: float) -> float:
        """Say the server does not answer (in the chat the first time), wait `delay`, and return
        the next, longer wait."""
        self._status(BackendStatus(BackendState.FAILED, f"{message} Retrying…"))
        if delay == FIRST_RETRY_S:
            self._notice(f"{message} Retrying in the background.", "error")
        await asyncio.sleep(delay)
        return min(delay * 2, 10.0)

    def _notice(self, text: str, kind: str = "info") -> None:
        self._owner.post_message(NoticePosted(text, kind))

    def _status(self, status: BackendStatus) -> None:
        self.status = status
        self._owner.post_message(BackendStatusChanged(status))

    # -- replies --------------------------------------------------------------------------------

    def stop_reply(self) -> None:
        """Ask the engine to stop the reply it is writing (the reply's worker then winds up)."""
        self._owner.run_worker(self.session.cancel(), group="stop", exclusive=True, exit_on_error=False)

    # -- Ollama's models ------------------------------------------------------------------------

    def ollama(self) -> OllamaBackend | None:
        """The active backend when it is Ollama's."""
        from lollma_tui.core.backends.ollama import OllamaBackend

        backend = self.backend
        return backend if isinstance(backend, OllamaBackend) else None

    async def pull(self, name: str) -> AsyncIterator[PullProgress]:
        """Download an Ollama model; raises `BackendError` when it fails or Ollama is not in use."""
        backend = self.ollama()
        if backend is None:
            raise BackendError("Pulling models needs the Ollama backend (/backend ollama).")
        async for progress in backend.pull(name):
            yield progress

    def delete_refused(self, name: str) -> str | None:
        """Why deleting the Ollama model `name` is refused before asking the user, if it is."""
        from lollma_tui.core.backends.ollama_models import same_model

        backend = self.ollama()
        if backend is None:
            return "Deleting models needs the Ollama backend (/backend ollama)."
        loaded = backend.status.loaded
        if loaded is not None and same_model(loaded.name, name):
            return f"{name} is loaded; switch to another model first."
        return None

    async def not_installed(self, name: str) -> str | None:
        """Why `name` cannot be deleted: the server does not have it (None when it has it, or
        cannot say: the delete itself then says what is wrong)."""
        from lollma_tui.core.backends.ollama_models import same_model
        from lollma_tui.core.chat.setting_commands import CATALOG_WAIT_S

        backend = self.ollama()
        try:
            # On the screen's turn (/delete): a server that never answers held it frozen for
            # the whole read timeout, five minutes.
            installed = await asyncio.wait_for(backend.list_models(), CATALOG_WAIT_S) if backend else None
        except (BackendError, TimeoutError):
            return None
        if installed is None or any(same_model(model.name, name) for model in installed):
            return None
        return f"Ollama has no model '{name}' to delete."

    def server_address(self) -> str:
        backend = self.ollama()
        return backend.base_url if backend is not None else ""

    async def delete(self, name: str) -> tuple[str, str]:
        """Delete an Ollama model; returns the line to show and its kind."""
        backend = self.ollama()
        refused = self.delete_refused(name)
        if backend is None or refused is not None:
            return refused or "", "error"
        try:
            await backend.delete(name)
        except BackendError as error:
            return str(error), "error"
        return f"Deleted {name} from the Ollama server.", "info"

"""`ModelSession`: the active backend, its load and sampling settings, and swaps as transactions.

A swap checks the fit, stops a reply in flight, unloads the old model, loads the new one, and
when that fails loads the old one again, so the user always knows what is loaded. The chat is
not touched: it lives in the app and is sent to whichever model is loaded.

Everything here runs on the backends' event loop, not thread-safe. Swaps are serialised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any, Final

from lollma_tui.core.backends.base import (
    Backend,
    BackendError,
    BackendState,
    ChatEvent,
    ChatMessage,
    LoadedModel,
    ReplyDone,
)
from lollma_tui.core.hosts import HostEntry
from lollma_tui.core.models.catalog import Catalog, HeaderCache, ModelVariant
from lollma_tui.core.models.gguf_header import GGUFError, GGUFHeader
from lollma_tui.core.session.backend_catalog import backend_catalog, switch_refusal
from lollma_tui.core.session.budget import MemoryBudget
from lollma_tui.core.session.models import ModelChoice, quant_variants, resolve_model, settings_for_quant
from lollma_tui.core.session.plan import (
    CPU_ONLY_BUILD_NOTE,
    LoadPlan,
    expand_home,
    layers_for_ollama,
    notes_after_load,
    plan_load,
    read_header,
    reclaimable_memory,
    target_label,
)
from lollma_tui.core.session.reload import (
    applied_without_reload,
    keep_read_only,
    read_only_notes,
    reload_needed,
)
from lollma_tui.core.session.results import (
    ProgressListener,
    SwapClock,
    SwapPhase,
    SwapProgress,
    SwapResult,
    SwapTimings,
    failure_text,
    refused,
)
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings

BackendFactory = Callable[[BackendKind], Backend]
HostFactory = Callable[[HostEntry], Backend]
"""Builds the backend for a named host (`swap(..., host=…)`): its kind, at its address."""
BackendListener = Callable[[Backend], None]

STOP_REPLY_TIMEOUT_S: Final = 10.0
"""Longest wait for a reply to stop before unloading anyway (unloading stops it for good)."""
_STOP_POLL_S: Final = 0.1


class SwapInProgressError(BackendError):
    """A reply was requested while the model is being swapped."""


def _ignore(_: SwapProgress) -> None:
    pass


class ModelSession:
    """Owns the active `Backend` and what it was asked to load.

    `factory` builds a backend of a kind (the app passes constructors carrying its status
    listener and log path); it is called once at start and again on every backend switch.
    `host_factory` builds the backend of a named host, for swaps that move to another server
    (`swap(..., host=entry)`); without it only the factory's servers are used.
    """

    def __init__(
        self,
        factory: BackendFactory,
        settings: LoadSettings,
        sampling: SamplingSettings | None = None,
        *,
        on_backend_change: BackendListener | None = None,
        header_cache: HeaderCache | None = None,
        stop_reply_timeout_s: float = STOP_REPLY_TIMEOUT_S,
        host_factory: HostFactory | None = None,
        host: HostEntry | None = None,
    ) -> None:
        self._factory = factory
        self._host_factory = host_factory
        self._host = host if host is not None and host.kind is settings.backend else None
        self._settings = settings
        self._sampling = sampling if sampling is not None else SamplingSettings()
        self._on_backend_change = on_backend_change
        self._headers = header_cache if header_cache is not None else HeaderCache()
        self._stop_timeout_s = stop_reply_timeout_s
        self._backend = self._build(settings.backend, self._host)
        self._lock = asyncio.Lock()
        self._swapping = False
        self._streams = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._gpu_offload: bool | None = None
        self._last_models: dict[BackendKind, str] = {settings.backend: settings.model}
        self._in_use: LoadedModel | None = None  # the last loaded, also while its worker restarts
        self._closed = False

    # -- state --------------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The active backend; it changes on a backend switch (see `on_backend_change`)."""
        return self._backend

    @property
    def kind(self) -> BackendKind:
        return self._backend.kind

    @property
    def host(self) -> HostEntry | None:
        """The named host the backend talks to; None for the factory's own server of its kind."""
        return self._host

    @property
    def settings(self) -> LoadSettings:
        """The load settings as asked for ("auto" kept); `loaded.settings` has them resolved."""
        return self._settings

    @property
    def sampling(self) -> SamplingSettings:
        return self._sampling

    @property
    def loaded(self) -> LoadedModel | None:
        return self._backend.status.loaded

    @property
    def swapping(self) -> bool:
        return self._swapping

    @property
    def replying(self) -> bool:
        return self._streams > 0 or self._backend.status.state is BackendState.GENERATING

    @property
    def gpu_offload_supported(self) -> bool | None:
        """Whether the llama.cpp build can offload layers; None until it has loaded a model."""
        return self._gpu_offload

    @property
    def last_models(self) -> dict[BackendKind, str]:
        """The model last loaded with each backend, for switching back and forth."""
        return dict(self._last_models)

    def process_ids(self) -> tuple[int, ...]:
        return self._backend.process_ids()

    # -- sampling -----------------------------------------------------------------------------

    def set_sampling(self, sampling: SamplingSettings | None = None, **changes: Any) -> SamplingSettings:
        """Replace the sampling settings (or some fields) for the next reply; an out-of-range
        value raises `SettingsError` and changes nothing."""
        base = sampling if sampling is not None else self._sampling
        self._sampling = base.with_changes(**changes) if changes else base
        return self._sampling

    # -- chat ---------------------------------------------------------------------------------

    async def stream_chat(
        self, messages: Sequence[ChatMessage], sampling: SamplingSettings | None = None
    ) -> AsyncIterator[ChatEvent]:
        """The active backend's reply stream, tracked so that a swap can stop it first."""
        if self._swapping:
            raise SwapInProgressError("The model is being switched; send again once it is loaded.")
        backend = self._backend
        self._streams += 1
        self._idle.clear()
        open_ = True
        try:
            async for event in backend.stream_chat(messages, sampling or self._sampling):
                if isinstance(event, ReplyDone) and open_:
                    # Counted as finished before the consumer sees it: a consumer that stops
                    # iterating at ReplyDone must not leave a swap waiting.
                    open_ = False
                    self._stream_ended()
                yield event
        finally:
            if open_:
                self._stream_ended()

    def _stream_ended(self) -> None:
        self._streams -= 1
        if self._streams == 0:
            self._idle.set()

    async def cancel(self) -> None:
        await self._backend.cancel()

    async def _stop_reply(self) -> bool:
        """Cancel the reply in flight and wait until it has ended; False if there was none."""
        if not self.replying:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stop_timeout_s
        while self.replying:
            left = deadline - loop.time()
            if left <= 0:
                break
            # Repeated because a reply that was still being set up ignores the first cancel.
            with contextlib.suppress(BackendError, TimeoutError):
                await asyncio.wait_for(self._backend.cancel(), left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), min(_STOP_POLL_S, max(left, 0.001)))
            if self._streams == 0 and self._backend.status.state is BackendState.GENERATING:
                # A reply the app streams from the backend directly: only its status tells.
                await asyncio.sleep(_STOP_POLL_S)
        return True

    # -- swapping -----------------------------------------------------------------------------

    async def swap(
        self,
        target: LoadSettings,
        *,
        budget: MemoryBudget | None = None,
        force: bool = False,
        always_reload: bool = False,
        progress: ProgressListener | None = None,
        host: HostEntry | None = None,
    ) -> SwapResult:
        """Make `target` the loaded configuration, as a transaction; failures are in the result
        (never `BackendError`). `budget` is the free memory now (e.g. `budget_from_snapshot`);
        the current model's share is added back, since it is unloaded first. Without a budget
        nothing is refused and "auto" GPU layers are left to the backend. `force` loads even when
        the estimate says it will not fit. `progress` is called on each phase. `host` moves to
        that server (its kind must be `target.backend`); without it the session stays on its
        host while the backend kind stays, and otherwise uses the factory's server. A failed
        move goes back to the previous host and model."""
        if host is not None and host.kind is not target.backend:
            raise ValueError(f"host {host.name} runs {host.kind}, not {target.backend}")
        async with self._lock:
            if host is None and self._host is not None and self._host.kind is target.backend:
                host = self._host
            self._swapping = True
            try:
                return await self._swap(target, host, budget, force, always_reload, progress or _ignore)
            finally:
                self._swapping = False

    async def settled(self) -> None:
        """Wait until no swap is running (returns at once when none is)."""
        async with self._lock:
            pass

    async def load(
        self, *, budget: MemoryBudget | None = None, progress: ProgressListener | None = None
    ) -> SwapResult:
        """Load the current settings (the first load, or a retry after a failure)."""
        return await self.swap(self._settings, budget=budget, always_reload=True, progress=progress)

    async def _swap(
        self,
        target: LoadSettings,
        host: HostEntry | None,
        budget: MemoryBudget | None,
        force: bool,
        always_reload: bool,
        report: ProgressListener,
    ) -> SwapResult:
        total = SwapClock.start()
        clock = SwapClock.start()
        target, placed = layers_for_ollama(expand_home(target), self._backend.kind, self._gpu_offload)
        refused_changes = (*placed, *read_only_notes(self._settings, target))
        target = keep_read_only(self._settings, target)
        label = target_label(target)
        previous = self.loaded or self._in_use  # a swap during a restart goes back to that model
        previous_requested = self._settings
        previous_host = self._host

        report(SwapProgress(SwapPhase.ESTIMATING, f"Checking {label}…"))
        plan = await self._plan(target, budget, previous)
        estimate_s = clock.lap()
        notes = [*refused_changes, *plan.notes]
        if not plan.go and not force:
            timings = SwapTimings(estimate_s=estimate_s, total_s=total.lap())
            why = plan.refusal or ""
            result = refused(f"Not loading {label}", why, target, previous, tuple(notes), plan, timings)
            report(SwapProgress(SwapPhase.DONE, result.message))
            return result
        if not plan.go:
            notes.append(f"loaded anyway (forced): {plan.refusal}")

        unchanged = previous is not None and not reload_needed(previous.settings, plan.settings)
        same_backend = self._same_backend(target) and host == self._host
        if previous is not None and unchanged and not always_reload and same_backend:
            return await self._apply_in_place(
                target, plan, previous, notes, report, estimate_s, total, refused_changes
            )
        fresh: Backend | None = None
        if not same_backend:
            # Built and asked before anything is stopped: a server address that cannot be one (a
            # bad OLLAMA_HOST), a server that is down or lacks the model leave the model in use.
            cannot: str | None
            try:
                fresh = self._build(target.backend, host)
                cannot = await switch_refusal(fresh, target.model) if previous is not None else None
            except BackendError as error:
                cannot = str(error)
            if cannot is not None:
                if fresh is not None:
                    await fresh.close()
                timings = SwapTimings(estimate_s=estimate_s, total_s=total.lap())
                result = refused(
                    f"Not switching to {label}", cannot, target, previous, tuple(notes), plan, timings
                )
                report(SwapProgress(SwapPhase.DONE, result.message))
                return result

        if self.replying:
            report(SwapProgress(SwapPhase.STOPPING_REPLY, "Stopping the reply…"))
        stopped = await self._stop_reply()
        stop_s = clock.lap()

        old_name = previous.name if previous is not None else "the current model"
        report(SwapProgress(SwapPhase.UNLOADING, f"Unloading {old_name}…"))
        unload_note = await self._unload_for(target.backend, host, fresh)
        if unload_note:
            notes.append(unload_note)
        unload_s = clock.lap()

        report(SwapProgress(SwapPhase.LOADING, f"Loading {label}…"))
        try:
            loaded = await self._backend.load(plan.settings)
        except BackendError as error:
            load_s = clock.lap()
            timings = SwapTimings(estimate_s, stop_s, unload_s, load_s)
            return await self._roll_back(
                target,
                plan,
                error,
                (previous, previous_requested, previous_host),
                notes,
                stopped,
                timings,
                report,
                total,
            )
        load_s = clock.lap()
        # A backend may settle what was left open (an OpenAI server's only model): keep its choice.
        self._settings = target if target.model.strip() else target.with_changes(model=loaded.settings.model)
        self._remember(loaded)
        notes.extend(notes_after_load(loaded, plan))
        message = f"Loaded {loaded.name} ({loaded.quant}, {target.backend!s}) in {loaded.load_s:.1f} s"
        report(SwapProgress(SwapPhase.DONE, message))
        return SwapResult(
            ok=True,
            requested=target,
            loaded=loaded,
            message=message,
            reloaded=True,
            stopped_reply=stopped,
            notes=tuple(dict.fromkeys(notes)),
            plan=plan,
            timings=SwapTimings(estimate_s, stop_s, unload_s, load_s, 0.0, total.lap()),
        )

    def _same_backend(self, target: LoadSettings) -> bool:
        return target.backend is self._backend.kind

    async def _apply_in_place(
        self,
        target: LoadSettings,
        plan: LoadPlan,
        previous: LoadedModel,
        notes: list[str],
        report: ProgressListener,
        estimate_s: float,
        total: SwapClock,
        refused: tuple[str, ...] = (),
    ) -> SwapResult:
        """Settings that change nothing the engine was loaded with: no reload.

        `refused` says which asked-for changes the backend cannot make (read-only fields)."""
        loaded: LoadedModel | None = previous
        applied = applied_without_reload(previous.settings, plan.settings)
        stopped = False
        for_next = getattr(self._backend, "keep_alive_for_next", None)
        if applied == ("keep_alive",) and self.replying and for_next is not None:
            loaded = for_next(plan.settings)  # Ollama takes it with each request: the reply goes on
        elif applied:
            # Ollama keeps keep_alive per backend load; the same runner options again do not
            # restart the runner (§A.7). Its load() cancels a reply: stop it here, and say so.
            if self.replying:
                report(SwapProgress(SwapPhase.STOPPING_REPLY, "Stopping the reply…"))
            stopped = await self._stop_reply()
            try:
                loaded = await self._backend.load(plan.settings)
            except BackendError as error:
                message = f"Could not apply {', '.join(applied)}: {error}"
                with contextlib.suppress(BackendError):  # the model is still there, as it was
                    await self._backend.load(previous.settings)
                report(SwapProgress(SwapPhase.DONE, message))
                return SwapResult(
                    ok=False,
                    requested=target,
                    loaded=self.loaded,
                    message=message,
                    error=str(error),
                    stopped_reply=stopped,
                    notes=tuple(notes),
                    plan=plan,
                    timings=SwapTimings(estimate_s=estimate_s, total_s=total.lap()),
                )
        layers_asked = target.n_gpu_layers != self._settings.n_gpu_layers  # not /set keep_alive
        self._settings = target
        if applied:
            message = f"{', '.join(applied)} applied without reloading {previous.name}"
        elif refused:
            message = f"{previous.name} is unchanged: " + "; ".join(refused)
        elif CPU_ONLY_BUILD_NOTE in plan.notes and layers_asked:
            message = f"{previous.name} stays loaded as it is: {CPU_ONLY_BUILD_NOTE}"
        else:
            message = f"{previous.name} is already loaded with these settings"
        report(SwapProgress(SwapPhase.DONE, message))
        return SwapResult(
            ok=True,
            requested=target,
            loaded=loaded,
            message=message,
            stopped_reply=stopped,
            notes=tuple(notes),
            plan=plan,
            timings=SwapTimings(estimate_s=estimate_s, total_s=total.lap()),
        )

    async def _roll_back(
        self,
        target: LoadSettings,
        plan: LoadPlan,
        error: BackendError,
        before: tuple[LoadedModel | None, LoadSettings, HostEntry | None],
        notes: list[str],
        stopped: bool,
        timings: SwapTimings,
        report: ProgressListener,
        total: SwapClock,
    ) -> SwapResult:
        previous, previous_requested, previous_host = before
        failure = failure_text(target_label(target), error)
        base = SwapResult(
            ok=False,
            requested=target,
            loaded=None,
            message=failure,
            reloaded=True,
            stopped_reply=stopped,
            error=str(error),
            notes=tuple(notes),
            plan=plan,
        )
        if previous is None or self._closed:  # closing ended the load: nothing loads after it
            self._settings = target if previous is None else previous_requested
            report(SwapProgress(SwapPhase.DONE, failure))
            return replace(base, timings=replace(timings, total_s=total.lap()))

        clock = SwapClock.start()
        report(SwapProgress(SwapPhase.ROLLING_BACK, f"{failure} — reloading {previous.name}…"))
        # Whatever happens next, the settings shown are those of the model we go back to.
        self._settings = previous_requested
        if previous.settings.backend is not self._backend.kind or previous_host != self._host:
            await self._switch_backend(previous.settings.backend, previous_host)
        try:
            back = await self._backend.load(previous.settings)
        except BackendError as second:
            self._in_use = None
            message = f"{failure} — and {previous.name} could not be reloaded either: {second}"
            report(SwapProgress(SwapPhase.DONE, message))
            return replace(
                base,
                message=message,
                rollback_failed=True,
                rollback_error=str(second),
                timings=replace(timings, rollback_s=clock.lap(), total_s=total.lap()),
            )
        self._remember(back)
        message = f"{failure} — back on {back.name}"
        report(SwapProgress(SwapPhase.DONE, message))
        return replace(
            base,
            loaded=back,
            message=message,
            rolled_back=True,
            timings=replace(timings, rollback_s=clock.lap(), total_s=total.lap()),
        )

    async def _plan(
        self, target: LoadSettings, budget: MemoryBudget | None, previous: LoadedModel | None
    ) -> LoadPlan:
        header: GGUFHeader | GGUFError | None = None
        if target.backend is BackendKind.LLAMA_CPP and target.model.strip():
            header = await self._read_header(target.model)
        if budget is not None and previous is not None and previous.settings.backend is BackendKind.LLAMA_CPP:
            # The current model is unloaded before the new one loads.
            previous_header = await self._read_header(previous.settings.model)
            budget = budget.plus(*reclaimable_memory(previous_header, previous))
        offload = self._gpu_offload if target.backend is BackendKind.LLAMA_CPP else None
        return plan_load(target, header, budget, gpu_offload=offload)

    async def _read_header(self, model: str) -> GGUFHeader | GGUFError:
        # Reading a header costs milliseconds to a few hundred (big vocabularies): off the loop.
        return await asyncio.to_thread(read_header, self._headers, model)

    async def _unload_for(
        self, kind: BackendKind, host: HostEntry | None, fresh: Backend | None
    ) -> str | None:
        """Free the current model; on a backend or host switch, close the old backend and move
        to `fresh`, the new one."""
        if kind is not self._backend.kind or host != self._host:
            return await self._switch_backend(kind, host, fresh)
        if kind is BackendKind.OLLAMA:
            return None  # its load asks about the new tag first, then frees the old model
        try:
            await self._backend.unload()
        except BackendError as error:
            return f"the previous model may still be loaded: {error}"
        return None

    async def _switch_backend(
        self, kind: BackendKind, host: HostEntry | None, fresh: Backend | None = None
    ) -> str | None:
        old = self._backend
        note = None
        try:
            # llama.cpp: the worker exits. Ollama: the model is unloaded (keep_alive 0) unless
            # the backend was built with unload_on_close=False.
            await old.close()
        except BackendError as error:
            note = f"closing the {old.kind} backend failed: {error}"
        self._backend = fresh or self._build(kind, host)
        self._host = host
        if self._on_backend_change is not None:
            self._on_backend_change(self._backend)
        return note

    def _build(self, kind: BackendKind, host: HostEntry | None) -> Backend:
        if host is None:
            return self._factory(kind)
        if self._host_factory is None:
            raise ValueError("this session was made without a host factory")
        return self._host_factory(host)

    def _remember(self, loaded: LoadedModel) -> None:
        self._in_use = loaded
        self._last_models[loaded.settings.backend] = loaded.settings.model
        if loaded.settings.backend is BackendKind.LLAMA_CPP:
            self._gpu_offload = loaded.gpu_offload_supported

    # -- models and quantizations -------------------------------------------------------------

    async def catalog(self, gguf_catalog: Catalog | None = None) -> Catalog:
        """The models the active backend can load (see `backend_catalog`); raises `BackendError`
        when a server cannot be asked."""
        return await backend_catalog(self._backend, self._settings.model, self._headers, gguf_catalog)

    async def quant_variants(self, gguf_catalog: Catalog | None = None) -> tuple[ModelVariant, ...]:
        """The current model's quantizations the active backend can load (current one included)."""
        return quant_variants(await self.catalog(gguf_catalog), self._settings.model)

    async def settings_for_quant(self, quant: str, gguf_catalog: Catalog | None = None) -> LoadSettings:
        """The current settings with the model in another quantization (`ModelChoiceError` if absent)."""
        return settings_for_quant(self._settings, quant, await self.catalog(gguf_catalog))

    async def choose_model(self, query: str, gguf_catalog: Catalog | None = None) -> ModelChoice:
        """Resolve a user's model name for the active backend (`ModelChoiceError` if not unique)."""
        current = self.loaded
        prefer = current.quant if current is not None else None
        return resolve_model(query, await self.catalog(gguf_catalog), prefer_quant=prefer)

    # -- shutdown -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop any reply and close the backend (llama.cpp's worker exits; Ollama unloads)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(BackendError):
            await self._stop_reply()
        await self._backend.close()

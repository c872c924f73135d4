"""Loading models: the first load, waiting for Ollama, pulling Ollama models."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual import on, work

from lollma_tui.core.backends.base import BackendError, BackendState, BackendStatus
from lollma_tui.core.chat.stats_format import format_loaded
from lollma_tui.core.models.demo import DemoModelError, demo_for, ensure_demo_model
from lollma_tui.core.settings import BackendKind, LoadSettings
from lollma_tui.ui.app_base import AppBase
from lollma_tui.ui.messages import BackendStatusChanged, SwapFinished, SwapProgressed

if TYPE_CHECKING:
    from lollma_tui.core.session import MemoryBudget, SwapProgress, SwapResult

BASE_DEMO_NOTICE = (
    "Demo model: Gemma 3 270M is a base model, not an instruction-tuned one, so its replies "
    "ramble. This session uses a repeat penalty of {penalty} and at most {limit} tokens per reply to "
    "keep them readable. For real chats start lollma-tui with --model PATH/TO/your-instruct.gguf."
)
DEMO_NOTICE = (
    "Demo model: SmolLM2 135M Instruct, small enough to answer at once on any CPU, and often "
    "wrong. For real chats start lollma-tui with --model PATH/TO/your-instruct.gguf."
)


class ModelFeatures(AppBase):
    _demo_notice_shown = False

    @work(group="model-load", exclusive=True, exit_on_error=False)
    async def load_model(self, settings: LoadSettings) -> None:
        """The first load (after waiting for Ollama or assembling the demo when needed)."""
        if settings.backend == BackendKind.OLLAMA:
            ready = await self._wait_for_ollama(settings)
            if ready is None:
                return
            settings = ready
        demo = demo_for(settings.model) if self.options.demo else None
        if demo is not None:
            try:
                await asyncio.to_thread(ensure_demo_model, demo)
            except DemoModelError as error:
                await self.notice(str(error), "error")
                return
        result = await self.session.swap(
            settings,
            budget=await self.first_memory_budget(),
            always_reload=True,
            progress=self._swap_progress,
        )
        await self._report_swap(result, first=True)

    @work(group="swap", exclusive=True, exit_on_error=False)
    async def swap_to(self, target: LoadSettings, force: bool = False) -> None:
        """Hot-swap: stop the reply, unload, load `target`, and go back to the old model on failure."""
        result = await self.session.swap(
            target, budget=self.memory_budget(), force=force, progress=self._swap_progress
        )
        await self._report_swap(result, first=False)

    def memory_budget(self) -> MemoryBudget | None:
        """Free memory from the newest hardware snapshot (None before the first one)."""
        return None

    async def first_memory_budget(self) -> MemoryBudget | None:
        """Like `memory_budget`, but worth a short wait for the first sample at start-up."""
        return self.memory_budget()

    def _swap_progress(self, progress: SwapProgress) -> None:
        self.post_message(SwapProgressed(progress))

    async def _report_swap(self, result: SwapResult, *, first: bool) -> None:
        self.post_message(SwapFinished(result))
        loaded = result.loaded
        if not result.ok:
            if self.backend.status.loaded is None:
                # Refused before the engine was asked (does not fit, unreadable file): the card
                # must say so, not just "no model".
                self.main.model_card.status = BackendStatus(BackendState.FAILED, result.message)
            await self.notice(result.message, "error" if not result.rolled_back else "warning")
            return
        if not result.reloaded:
            await self.notice(result.message)
            return
        if loaded is not None:
            await self.notice(format_loaded(loaded))
            # The session's notes already include the backend's own ones.
            for note in dict.fromkeys((*loaded.notes, *result.notes)):
                await self.notice(note)
        demo = demo_for(loaded.settings.model) if self.options.demo and loaded is not None else None
        if demo is not None and not self._demo_notice_shown:
            self._demo_notice_shown = True
            notice = BASE_DEMO_NOTICE if demo.base_model else DEMO_NOTICE
            await self.notice(
                notice.format(penalty=self.sampling.repeat_penalty, limit=self.sampling.max_tokens),
                "warning" if demo.base_model else "info",
            )

    async def _wait_for_ollama(self, settings: LoadSettings) -> LoadSettings | None:
        """Wait (retrying with backoff) until the server answers, then settle which model to load."""
        from lollma_tui.core.backends.ollama import OllamaBackend

        backend = self.backend
        if not isinstance(backend, OllamaBackend):
            return settings
        delay = 1.0
        warned = False
        while (version := await backend.ping()) is None:
            message = f"Ollama is not reachable at {backend.base_url} — is `ollama serve` running?"
            self.main.model_card.status = BackendStatus(BackendState.FAILED, f"{message} Retrying…")
            if not warned:
                warned = True
                await self.notice(f"{message} Retrying in the background.", "error")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        await self.notice(f"Connected to Ollama {version} at {backend.base_url}.")
        if settings.model:
            return settings
        try:
            models = await backend.list_models()
        except BackendError as error:
            await self.notice(str(error), "error")
            return None
        if len(models) == 1:
            return settings.with_changes(model=models[0].name)
        if not models:
            await self.notice(
                "This Ollama server has no models yet: pull one with `ollama pull llama3.2:1b`.", "warning"
            )
        else:
            names = ", ".join(m.name for m in models)
            await self.notice(f"Models on this server: {names}. Choose one with /model NAME.")
        self.main.model_card.status = BackendStatus(BackendState.UNLOADED, "No model chosen")
        return None

    @work(group="ollama-pull", exit_on_error=False)
    async def pull_model(self, name: str) -> None:
        """Download an Ollama model with a progress bar in the chat; the chat stays usable."""
        from lollma_tui.core.backends.ollama import OllamaBackend

        backend = self.backend
        if not isinstance(backend, OllamaBackend):
            await self.notice("Pulling models needs the Ollama backend (/backend ollama).", "error")
            return
        view = await self.main.chat_log.add_pull(name)
        try:
            async for progress in backend.pull(name):
                view.show(progress.status, progress.completed, progress.total)
        except BackendError as error:
            view.finish(f"pull {name} failed: {error}", ok=False)
            return
        view.finish(f"pulled {name}", ok=True)

    @work(group="ollama-delete", exit_on_error=False)
    async def delete_model(self, name: str) -> None:
        from lollma_tui.core.backends.ollama import OllamaBackend

        backend = self.backend
        if not isinstance(backend, OllamaBackend):
            await self.notice("Deleting models needs the Ollama backend (/backend ollama).", "error")
            return
        loaded = backend.status.loaded
        if loaded is not None and loaded.name == name:
            await self.notice(f"{name} is loaded; switch to another model first.", "error")
            return
        try:
            await backend.delete(name)
        except BackendError as error:
            await self.notice(str(error), "error")
            return
        await self.notice(f"Deleted {name} from the Ollama server.")

    @on(BackendStatusChanged)
    def _show_backend_status(self, message: BackendStatusChanged) -> None:
        main = self.main_or_none
        if main is not None:
            main.model_card.status = message.status

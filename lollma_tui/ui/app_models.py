"""Loading models: the first load, waiting for Ollama, pulling Ollama models."""

from __future__ import annotations

import asyncio

from textual import on, work

from lollma_tui.core.backends.base import BackendError, BackendState, BackendStatus
from lollma_tui.core.chat.stats_format import format_loaded
from lollma_tui.core.models.demo import DemoModelError, ensure_demo_model, is_demo_model
from lollma_tui.core.settings import BackendKind, LoadSettings
from lollma_tui.ui.app_base import AppBase
from lollma_tui.ui.messages import BackendStatusChanged

DEMO_NOTICE = (
    "Demo model: Gemma 3 270M is a base model, not an instruction-tuned one, so its replies "
    "ramble. This session uses a repeat penalty of {penalty} and at most {limit} tokens per reply to "
    "keep them readable. For real chats start lollma-tui with --model PATH/TO/your-instruct.gguf."
)


class ModelFeatures(AppBase):
    _demo_notice_shown = False

    @work(group="model-load", exclusive=True, exit_on_error=False)
    async def load_model(self, settings: LoadSettings) -> None:
        if settings.backend == BackendKind.OLLAMA:
            ready = await self._wait_for_ollama(settings)
            if ready is None:
                return
            settings = ready
        if self.options.demo and is_demo_model(settings.model):
            try:
                await asyncio.to_thread(ensure_demo_model)
            except DemoModelError as error:
                await self.notice(str(error), "error")
                return
        try:
            loaded = await self.backend.load(settings)
        except BackendError as error:
            await self.notice(str(error), "error")
            return
        self.load_settings = settings
        await self.notice(format_loaded(loaded))
        for note in loaded.notes:
            await self.notice(note)
        if self.options.demo and is_demo_model(settings.model) and not self._demo_notice_shown:
            self._demo_notice_shown = True
            await self.notice(
                DEMO_NOTICE.format(penalty=self.sampling.repeat_penalty, limit=self.sampling.max_tokens),
                "warning",
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
            if not warned:
                warned = True
                await self.notice(f"{message} Retrying in the background.", "error")
            self.main.model_card.status = BackendStatus(BackendState.FAILED, f"{message} Retrying…")
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

    @on(BackendStatusChanged)
    def _show_backend_status(self, message: BackendStatusChanged) -> None:
        self.main.model_card.status = message.status

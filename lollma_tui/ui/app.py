"""LollmaApp: owns the backend, the conversation and the settings; widgets only render."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from lollma_tui.core.backends.base import (
    Backend,
    BackendError,
    BackendState,
    BackendStatus,
    ReplyDone,
    TextDelta,
    ThinkingDelta,
)
from lollma_tui.core.chat.commands import CommandError, is_command, parse_command, unescape_message
from lollma_tui.core.chat.conversation import Conversation, Message, ReplyState
from lollma_tui.core.chat.stats_format import format_gpu_layers, format_loaded
from lollma_tui.core.models.demo import DemoModelError, ensure_demo_model, is_demo_model
from lollma_tui.core.settings import BackendKind, LoadSettings, StartupOptions
from lollma_tui.core.theme_files import APP_VARIABLES
from lollma_tui.ui.messages import BackendStatusChanged
from lollma_tui.ui.screens.help import HelpScreen
from lollma_tui.ui.screens.main import MainScreen
from lollma_tui.ui.themes import DEFAULT_THEME, load_themes
from lollma_tui.ui.widgets.chat_log import ReplyTurn
from lollma_tui.ui.widgets.prompt_input import PromptInput

DEMO_NOTICE = (
    "Demo model: Gemma 3 270M is a base model, not an instruction-tuned one, so its replies "
    "ramble. This session uses a repeat penalty of {penalty} and at most {limit} tokens per reply to "
    "keep them readable. For real chats start lollma-tui with --model PATH/TO/your-instruct.gguf."
)

_FINISH_STATE = {"stop": ReplyState.COMPLETE, "length": ReplyState.LENGTH, "cancelled": ReplyState.STOPPED}


class LollmaApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "lollma-tui"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("escape", "stop", "Stop", id="stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="regenerate"),
        Binding("ctrl+n", "new_conversation", "New chat", id="new-conversation"),
        Binding("ctrl+b", "toggle_sidebar", "Panel", id="toggle-sidebar"),
        Binding("f1", "help", "Help", id="help"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
    ]

    def __init__(self, options: StartupOptions, backend: Backend | None = None) -> None:
        super().__init__()
        self.options = options
        self.load_settings: LoadSettings = options.load
        self.sampling = options.sampling
        self.conversation = Conversation(system_prompt=options.system_prompt)
        self.backend: Backend = backend or self._default_backend()
        self._listen_to(self.backend)
        self._demo_notice_shown = False
        self._theme_failures: list[str] = []
        self._generating: Message | None = None

    # -- set-up -------------------------------------------------------------------------------

    def _default_backend(self) -> Backend:
        if self.options.load.backend == BackendKind.OLLAMA:
            from lollma_tui.core.backends.ollama import OllamaBackend

            return OllamaBackend(self.options.ollama_host)
        from lollma_tui.core.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend()

    def _listen_to(self, backend: Backend) -> None:
        setter = getattr(backend, "set_status_listener", None)
        if setter is not None:
            setter(self._on_backend_status)

    def _on_backend_status(self, status: BackendStatus) -> None:
        self.post_message(BackendStatusChanged(status))

    def get_default_screen(self) -> MainScreen:
        return MainScreen()

    def get_css_variables(self) -> dict[str, str]:
        variables = super().get_css_variables()
        # Themes without our own slots (Textual's built-ins) borrow them from their palette.
        for name, fallback in APP_VARIABLES.items():
            if name not in variables:
                variables[name] = variables[fallback.removeprefix("$")]
        self.theme_variables = variables
        return variables

    def _register_themes(self) -> None:
        themes, failures = load_themes()
        for theme in themes:
            self.register_theme(theme)
        self._theme_failures = [f"{f.path.name}: {f.reason}" for f in failures]

    def on_mount(self) -> None:
        self._register_themes()
        self.apply_theme(self.options.theme)
        if self._theme_failures:
            self.notify("\n".join(self._theme_failures), title="Some themes did not load", severity="warning")

    def on_ready(self) -> None:
        self.main.model_card.status = self.backend.status
        self.load_model(self.load_settings)
        threading.Thread(target=_preload_reply_widgets, name="preload-markdown", daemon=True).start()

    def apply_theme(self, name: str) -> bool:
        if name not in self.available_themes:
            self.notify(
                f"Unknown theme {name!r}; themes: {', '.join(self.theme_names())}",
                severity="warning",
            )
            if self.theme not in self.available_themes or self.theme.startswith("textual-"):
                self.theme = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
            return False
        self.theme = name
        return True

    def theme_names(self) -> list[str]:
        return sorted(self.available_themes)

    @property
    def main(self) -> MainScreen:
        screen = self.screen
        return screen if isinstance(screen, MainScreen) else self.get_screen_stack_main()

    def get_screen_stack_main(self) -> MainScreen:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise RuntimeError("main screen is not mounted")

    # -- model loading ------------------------------------------------------------------------

    @work(group="model-load", exclusive=True, exit_on_error=False)
    async def load_model(self, settings: LoadSettings) -> None:
        chat_log = self.main.chat_log
        if settings.backend == BackendKind.OLLAMA:
            ready = await self._wait_for_ollama(settings)
            if ready is None:
                return
            settings = ready
        if self.options.demo and is_demo_model(settings.model):
            try:
                await asyncio.to_thread(ensure_demo_model)
            except DemoModelError as error:
                await chat_log.add_notice(str(error), "error")
                return
        try:
            loaded = await self.backend.load(settings)
        except BackendError as error:
            await chat_log.add_notice(str(error), "error")
            return
        self.load_settings = settings
        await chat_log.add_notice(format_loaded(loaded))
        for note in loaded.notes:
            await chat_log.add_notice(note)
        if self.options.demo and is_demo_model(settings.model) and not self._demo_notice_shown:
            self._demo_notice_shown = True
            await chat_log.add_notice(
                DEMO_NOTICE.format(penalty=self.sampling.repeat_penalty, limit=self.sampling.max_tokens),
                "warning",
            )

    async def _wait_for_ollama(self, settings: LoadSettings) -> LoadSettings | None:
        """Wait (retrying with backoff) until the server answers, then settle which model to load."""
        from lollma_tui.core.backends.ollama import OllamaBackend

        backend = self.backend
        if not isinstance(backend, OllamaBackend):
            return settings
        chat_log = self.main.chat_log
        delay = 1.0
        warned = False
        while (version := await backend.ping()) is None:
            message = f"Ollama is not reachable at {backend.base_url} — is `ollama serve` running?"
            if not warned:
                warned = True
                await chat_log.add_notice(f"{message} Retrying in the background.", "error")
            self.main.model_card.status = BackendStatus(BackendState.FAILED, f"{message} Retrying…")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        await chat_log.add_notice(f"Connected to Ollama {version} at {backend.base_url}.")
        if settings.model:
            return settings
        try:
            models = await backend.list_models()
        except BackendError as error:
            await chat_log.add_notice(str(error), "error")
            return None
        if len(models) == 1:
            return settings.with_changes(model=models[0].name)
        if not models:
            await chat_log.add_notice(
                "This Ollama server has no models yet: pull one with `ollama pull llama3.2:1b`.", "warning"
            )
        else:
            names = ", ".join(m.name for m in models)
            await chat_log.add_notice(f"Models on this server: {names}. Start with --model NAME to pick one.")
        self.main.model_card.status = BackendStatus(BackendState.UNLOADED, "No model chosen")
        return None

    @work(group="ollama-pull", exit_on_error=False)
    async def pull_model(self, name: str) -> None:
        """Download an Ollama model with a progress bar in the chat; the chat stays usable."""
        from lollma_tui.core.backends.ollama import OllamaBackend

        backend = self.backend
        chat_log = self.main.chat_log
        if not isinstance(backend, OllamaBackend):
            await chat_log.add_notice("Pulling models needs the Ollama backend (/backend ollama).", "error")
            return
        view = await chat_log.add_pull(name)
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

    # -- chat -------------------------------------------------------------------------------

    @on(PromptInput.Submitted)
    async def _handle_prompt(self, message: PromptInput.Submitted) -> None:
        text = message.text
        if is_command(text):
            await self.run_command(text)
            return
        await self.send(unescape_message(text))

    @property
    def is_generating(self) -> bool:
        return self._generating is not None

    async def send(self, text: str) -> None:
        if self.is_generating:
            self.notify("A reply is still being written — Esc stops it.", severity="warning")
            return
        user = self.conversation.add_user(text)
        await self.main.chat_log.add_user(user)
        await self._start_reply()

    async def _start_reply(self) -> None:
        reply = self.conversation.start_reply()
        turn = await self.main.chat_log.add_reply(reply, self._reply_header())
        self._generating = reply
        self.generate(reply, turn)

    def _reply_header(self) -> str:
        loaded = self.backend.status.loaded
        if loaded is None:
            return Path(self.load_settings.model).name or "assistant"
        return " · ".join(
            (
                loaded.name,
                loaded.quant,
                str(loaded.settings.backend),
                format_gpu_layers(loaded.n_gpu_layers, loaded.n_layers),
            )
        )

    @work(group="generation", exclusive=True, exit_on_error=False)
    async def generate(self, reply: Message, turn: ReplyTurn) -> None:
        history = self.conversation.history()
        if self.backend.status.loaded is None:
            turn.show_waiting("waiting for the model to load… Esc cancels")
        stream = turn.body.get_stream(turn.body)
        streaming = False
        try:
            async for event in self.backend.stream_chat(history, self.sampling):
                if isinstance(event, TextDelta):
                    if not streaming:
                        streaming = True
                        turn.show_streaming()
                    reply.content += event.text
                    await stream.write(event.text)
                elif isinstance(event, ThinkingDelta):
                    await turn.add_thinking(event.text)
                elif isinstance(event, ReplyDone):
                    reply.stats = event.stats
                    reply.state = _FINISH_STATE[event.finish_reason]
                    self.main.model_card.last_stats = event.stats
        except BackendError as error:
            reply.state = ReplyState.ERROR
            reply.error = str(error)
        except asyncio.CancelledError:
            reply.state = ReplyState.STOPPED
            raise
        finally:
            if reply.state == ReplyState.STREAMING:
                reply.state = ReplyState.STOPPED
            try:
                await stream.stop()
                if turn.is_mounted:
                    await turn.finish()
            finally:
                self._generating = None

    @on(Worker.StateChanged)
    async def _report_worker_error(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(f"{type(event.worker.error).__name__}: {event.worker.error}", severity="error")

    # -- actions ----------------------------------------------------------------------------

    async def action_stop(self) -> None:
        if not self.is_generating:
            return
        if self.backend.status.loaded is None:
            # Still waiting for the model: nothing runs in the engine yet, so just drop the wait.
            self.workers.cancel_group(self, "generation")
            return
        self.run_worker(self.backend.cancel(), group="stop", exclusive=True, exit_on_error=False)

    async def action_regenerate(self) -> None:
        if self.is_generating:
            self.notify("Wait for the reply to finish, or press Esc first.", severity="warning")
            return
        if self.conversation.drop_last_reply() is None:
            self.notify("Nothing to regenerate yet.")
            return
        await self.main.chat_log.remove_last_reply()
        await self._start_reply()

    async def action_new_conversation(self) -> None:
        if self.is_generating:
            await self.backend.cancel()
            await self.workers.wait_for_complete()
        self.conversation = Conversation(system_prompt=self.conversation.system_prompt)
        await self.main.chat_log.clear_turns()
        await self.main.chat_log.add_notice("New conversation.")

    def action_toggle_sidebar(self) -> None:
        self.main.sidebar.toggle_class("-hidden")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        await self.backend.close()
        self.exit()

    # -- slash commands -----------------------------------------------------------------------

    async def run_command(self, text: str) -> None:
        chat_log = self.main.chat_log
        try:
            command = parse_command(text)
        except CommandError as error:
            await chat_log.add_notice(str(error), "error")
            return
        name, argument = command.name, command.argument
        if name == "clear":
            await self.action_new_conversation()
        elif name == "system":
            if argument:
                self.conversation.system_prompt = argument
                await chat_log.add_notice(f"System prompt set: {argument}")
            else:
                current = self.conversation.system_prompt or "(none)"
                await chat_log.add_notice(f"System prompt: {current}")
        elif name == "regen":
            await self.action_regenerate()
        elif name == "stop":
            await self.action_stop()
        elif name == "theme":
            if not argument:
                await chat_log.add_notice(f"Themes: {', '.join(self.theme_names())} (now: {self.theme})")
            elif self.apply_theme(argument):
                await chat_log.add_notice(f"Theme: {argument}")
        elif name == "help":
            self.action_help()
        elif name == "quit":
            await self.action_quit()


def _preload_reply_widgets() -> None:
    """Import the Markdown widget off the UI thread so the first reply does not pay for it."""
    import textual.widgets._markdown  # noqa: F401

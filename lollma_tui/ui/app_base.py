"""The app's shared state and plumbing; feature layers build on it (see app.py for the stack)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import App

from lollma_tui.core.backends.base import Backend, BackendStatus
from lollma_tui.core.chat.conversation import Conversation, Message
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.messages import BackendStatusChanged
from lollma_tui.ui.screens.main import MainScreen
from lollma_tui.ui.theming import choose_theme, with_app_variables

if TYPE_CHECKING:
    from lollma_tui.core.session.session import ModelSession


class AppBase(App[None]):
    """Holds what every feature needs: options, backend, conversation, settings, themes."""

    def __init__(self, options: StartupOptions, backend: Backend | None = None) -> None:
        super().__init__()
        self.options = options
        self._first_backend = backend
        self.conversation = Conversation(system_prompt=options.system_prompt)
        self._session: ModelSession | None = None
        self._generating: Message | None = None

    @property
    def session(self) -> ModelSession:
        """Owns the active backend; every load and swap goes through it.

        Built on first use (after the first frame): the session pulls in the estimator and the
        catalog, which the first frame does not need.
        """
        if self._session is None:
            from lollma_tui.core.session.session import ModelSession

            self._session = ModelSession(self._backend_for, self.options.load, self.options.sampling)
        return self._session

    def _backend_for(self, kind: BackendKind) -> Backend:
        """The session's backend factory: the injected backend first, then fresh ones."""
        backend = self._first_backend
        if backend is not None and backend.kind == kind:
            self._first_backend = None
        else:
            backend = self.make_backend(kind)
        backend.set_status_listener(self._on_backend_status)
        return backend

    def make_backend(self, kind: BackendKind) -> Backend:
        if kind == BackendKind.OLLAMA:
            from lollma_tui.core.backends.ollama import OllamaBackend

            return OllamaBackend(self.options.ollama_host)
        from lollma_tui.core.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend()

    @property
    def backend(self) -> Backend:
        return self.session.backend

    @property
    def load_settings(self) -> LoadSettings:
        """The load settings as asked for (the loaded model's own carry "auto" resolved)."""
        return self.session.settings

    @property
    def sampling(self) -> SamplingSettings:
        return self.session.sampling

    @sampling.setter
    def sampling(self, value: SamplingSettings) -> None:
        self.session.set_sampling(value)

    def _on_backend_status(self, status: BackendStatus) -> None:
        self.post_message(BackendStatusChanged(status))

    @property
    def is_generating(self) -> bool:
        return self._generating is not None

    def reply_finished(self, reply: Message) -> None:
        """Called when a reply has ended, whatever the reason (later layers react to it)."""

    async def stop_and_wait(self) -> None:
        """Stop a reply in flight and wait until it is wrapped up (the chat layer implements it)."""
        raise NotImplementedError

    # -- screen -------------------------------------------------------------------------------

    def get_default_screen(self) -> MainScreen:
        return MainScreen()

    @property
    def main(self) -> MainScreen:
        """The main screen, also while a dialog is on top of it."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, MainScreen):
                return screen
        raise RuntimeError("main screen is not mounted")

    @property
    def main_or_none(self) -> MainScreen | None:
        """The main screen, or None while the app starts up or shuts down (late messages)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, MainScreen):
                return screen
        return None

    async def notice(self, text: str, kind: str = "info") -> None:
        await self.main.chat_log.add_notice(text, kind)

    # -- themes -------------------------------------------------------------------------------

    def get_css_variables(self) -> dict[str, str]:
        variables = with_app_variables(super().get_css_variables())
        self.theme_variables = variables
        return variables

    def apply_theme(self, name: str) -> bool:
        warning = choose_theme(self, name)
        if warning is not None:
            self.notify(warning, severity="warning")
        return warning is None

    def theme_names(self) -> list[str]:
        return sorted(self.available_themes)

"""The sidebar card that says what is loaded, how, and how fast the last reply was."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import var
from textual.widgets import Static

from lollma_tui.core import formatting as fmt
from lollma_tui.core.backends.base import BackendState, BackendStatus, LoadedModel, ReplyStats
from lollma_tui.core.backends.describe import format_context, loaded_layers, model_label
from lollma_tui.core.chat.context_budget import ContextCheck
from lollma_tui.core.hardware.history import Metric, classify
from lollma_tui.core.settings import BackendKind
from lollma_tui.ui.literal import plain
from lollma_tui.ui.widgets.hardware_rows import set_text

_STATE_MARK = {
    BackendState.UNLOADED: "○ no model",
    BackendState.LOADING: "◌ loading",
    BackendState.READY: "● ready",
    BackendState.GENERATING: "◉ generating",
    BackendState.FAILED: "✗ failed",
}


def _params(n_params: int | None) -> str:
    if not n_params:
        return ""
    return f"{n_params / 1e9:.1f}B" if n_params >= 1e9 else f"{n_params / 1e6:.0f}M"


class ModelCard(Vertical):
    # The side panel's cards are mounted together once the chat's first frame is up; their
    # stylesheet is read then, with this one (not in the app's CSS_PATH). Not scoped: it styles
    # the server card and the hardware panel's title too.
    DEFAULT_CSS = (Path(__file__).resolve().parent.parent / "side_panel.tcss").read_text(encoding="utf-8")
    SCOPED_CSS = False

    # `var`: the lines below redraw themselves, and only lay the screen out when their size
    # changes (a status flip at each reply's start and end would otherwise redo the screen).
    status: var[BackendStatus | None] = var(None, init=False)
    """The backend's latest status; set by the app."""
    last_stats: var[ReplyStats | None] = var(None, init=False)
    context: var[ContextCheck | None] = var(None, init=False)
    """Tokens the conversation takes of the loaded context; set by the app."""

    def compose(self) -> ComposeResult:
        yield Static("model", classes="card-title")
        yield Static("", id="model-lines", markup=False)
        yield Static("", id="model-state", markup=False)
        yield Static("", id="model-context", markup=False)
        yield Static("", id="model-speed", markup=False)

    def watch_status(self, status: BackendStatus | None) -> None:
        lines: list[str] = []
        state_line = ""
        if status is not None:
            loaded = status.loaded
            if loaded is not None:
                settings = loaded.settings
                lines = [
                    model_label(loaded.name),
                    " · ".join(p for p in (loaded.quant, loaded.architecture, _params(loaded.n_params)) if p),
                    " · ".join(p for p in (str(settings.backend), _runs_on(loaded)) if p),
                    f"{loaded_layers(loaded)} · ctx {loaded.n_ctx}",
                    f"threads {loaded.n_threads or 'auto'} · batch {loaded.n_batch or settings.n_batch}"
                    + (" · repack off" if loaded.repack is False else ""),
                ]
                if settings.backend is BackendKind.OPENAI:
                    # Layers, threads and batch are the server's own flags: shown below it, if it says.
                    lines[2:] = [f"{settings.backend} · {format_context(loaded)}"]
            state_line = _STATE_MARK[status.state]
            if status.state in (BackendState.LOADING, BackendState.FAILED, BackendState.UNLOADED):
                state_line += f"\n{status.message}"
            for state in BackendState:
                self.set_class(status.state == state, f"-{state.value}")
        set_text(self.query_one("#model-lines", Static), plain("\n".join(lines)))
        set_text(self.query_one("#model-state", Static), plain(state_line))

    def swapped_to(self, loaded: LoadedModel | None) -> None:
        """A swap ended: the last reply's figures go unless `loaded` is the set-up they measured
        (another set-up's figures under this card read as its speed)."""
        stats = self.last_stats
        if stats is None:
            return
        # Ollama's share on the GPU is learnt with the reply, not at the load.
        if loaded is None or replace(loaded.setup(), gpu_share=None) != replace(stats.setup, gpu_share=None):
            self.last_stats = None

    def watch_last_stats(self, stats: ReplyStats | None) -> None:
        text = ""
        if stats is not None:
            text = (
                f"last reply\n{fmt.rate(stats.gen_tps)} tok/s · {stats.gen_tokens} tok\n"
                f"TTFT {fmt.seconds(stats.ttft_s)}"
            )
            if stats.prompt_tps is not None and not stats.prompt_cached:
                text += f"\nprompt {fmt.rate(stats.prompt_tps)} tok/s"
        speed = self.query_one("#model-speed", Static)
        set_text(speed, text)
        speed.set_class(bool(text), "-shown")

    def watch_context(self, check: ContextCheck | None) -> None:
        line = self.query_one("#model-context", Static)
        if check is None:
            set_text(line, "")
            return
        share = check.used / check.n_ctx if check.n_ctx else 0.0
        approx = "" if check.exact else "≈"
        set_text(line, f"context {approx}{check.used:,}/{check.n_ctx:,} ({share:.0%})")
        level = classify(Metric.MEMORY_FRACTION, share)
        for name in ("ok", "warm", "hot"):
            line.set_class(level == name, f"-{name}")


def _runs_on(loaded: LoadedModel) -> str:
    """Where the model runs: the server's own word for it (Ollama's "72% GPU / 28% CPU"), else
    whether this llama.cpp build can offload at all; a server that says nothing gets nothing."""
    if loaded.placement:
        return loaded.placement
    if loaded.settings.backend is BackendKind.LLAMA_CPP:
        return "GPU build" if loaded.gpu_offload_supported else "CPU only"
    return ""

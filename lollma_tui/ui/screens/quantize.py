"""Quantize one GGUF into smaller types with llama.cpp's own quantizer, from the keyboard.

Every change of the chosen types or of the re-quantize switch is checked at once with the
core's planner (in a thread: it reads the file's header and the free disk space), so a refusal
(already quantized, an i-quant without imatrix, too little disk, an output already there) shows
before anything runs. The run is `quantize_async` in an async worker: one worker process per
type; cancelling the worker stops the process and the core removes the partial file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, Label, ProgressBar, SelectionList, Static, Switch
from textual.widgets.selection_list import Selection
from textual.worker import Worker, WorkerState

from lollma_tui.core import formatting as fmt
from lollma_tui.core.models.gguf_header import GGUFError, GGUFHeader, read_gguf_header
from lollma_tui.core.models.quantize import (
    TARGETS,
    QuantizeFailed,
    QuantizePlan,
    QuantizeProgress,
    QuantizeRefused,
    QuantizeResult,
    abandon_quantization,
    plan_quantizations,
    quantize_async,
)
from lollma_tui.ui.literal import literal, plain
from lollma_tui.ui.widgets.ticks import TickList

PLAN_GROUP: Final = "quantize-plan"
RUN_GROUP: Final = "quantize-run"
DEFAULT_TYPES: Final = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K")
"""Offered by default, best quality first."""
REQUANTIZE_LABEL: Final = "re-quantize a quantized file: quality suffers, the errors add up"
NOTHING_CHOSEN: Final = "choose one or more types (Space ticks the highlighted one)"
_STATES: Final = ("-refused", "-error", "-done")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(max(0, round(seconds)), 60)
    return f"{minutes}:{secs:02d}"


def progress_text(progress: QuantizeProgress, index: int, count: int) -> str:
    parts = [f"{progress.plan.target} ({index}/{count})", _duration(progress.elapsed_s)]
    parts.append(f"{fmt.size(progress.bytes_written)} written" if progress.bytes_written else "starting")
    if progress.tensors_total:
        parts.append(f"tensor {progress.tensors_done or 0}/{progress.tensors_total}")
    return " · ".join(parts)


def plan_text(plans: Sequence[QuantizePlan]) -> str:
    lines = [f"→ {plan.output.name}  ≈ {fmt.size(plan.estimated_bytes)}" for plan in plans]
    # Said where it is not the source's folder (`default_output_dir` chose another).
    elsewhere = sorted(
        {str(plan.output.parent) for plan in plans if plan.output.parent != plan.source.parent}
    )
    return "\n".join(lines + [f"  in {folder}" for folder in elsewhere])


def type_prompt(target: str) -> str:
    spec = TARGETS.get(target)
    return f"{target:<7} {spec.description}" if spec is not None else target


class QuantizeScreen(ModalScreen[list[Path]]):
    """Dismisses with the files it created (possibly none), so the app can rescan its catalog.

    When every chosen type is written the dialog closes by itself. Esc during a run stops it
    (nothing partial is left) and keeps the dialog open to say so; Esc again closes it.

    | Key | Description |
    | :- | :- |
    | space | Tick or untick the highlighted type. |
    | r | Quantize to the ticked types. |
    | escape | Stop the running quantization, or close. |
    """

    CSS_PATH = "../bench_screens.tcss"
    """Loaded with the screen, so the app's first frame does not parse it."""

    BINDINGS = [
        Binding("escape", "cancel_or_close", "Stop/close", id="quantize.escape"),
        Binding("r", "run", "Quantize", id="quantize.run"),
    ]

    running: reactive[bool] = reactive(False, init=False)
    """A quantization runs."""

    class _Checked(Message, bubble=False):
        def __init__(
            self,
            generation: int,
            plans: tuple[QuantizePlan, ...],
            refusal: str | None,
            header: GGUFHeader | None,
        ) -> None:
            super().__init__()
            self.generation = generation
            self.plans = plans
            self.refusal = refusal
            self.header = header

    class _Starting(Message, bubble=False):
        def __init__(self, plan: QuantizePlan, index: int, count: int) -> None:
            super().__init__()
            self.plan = plan
            self.index = index
            self.count = count

    class _Progressed(Message, bubble=False):
        def __init__(self, progress: QuantizeProgress) -> None:
            super().__init__()
            self.progress = progress

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, QuantizeScreen._Progressed)

    class _Created(Message, bubble=False):
        def __init__(self, result: QuantizeResult) -> None:
            super().__init__()
            self.result = result

    class _Failed(Message, bubble=False):
        def __init__(self, plan: QuantizePlan, reason: str) -> None:
            super().__init__()
            self.plan = plan
            self.reason = reason

    class _AllDone(Message, bubble=False):
        pass

    def __init__(
        self,
        source: Path,
        *,
        types: Sequence[str] = DEFAULT_TYPES,
        selected: Sequence[str] = ("Q4_K_M",),
        allow_requantize: bool = False,
        output_dir: Path | None = None,
        threads: int | None = None,
        log_path: Path | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.source = Path(source)
        self.types = tuple(types)
        self._selected = {t for t in selected if t in self.types}
        self._allow_requantize = allow_requantize
        self.output_dir = output_dir
        """Where the files go; None: next to the source, where the catalog groups them with it."""
        self.threads = threads
        self._log_path = log_path
        self._header: GGUFHeader | None = None
        self._generation = 0
        self._plans: tuple[QuantizePlan, ...] = ()
        self._refusal: str | None = None
        self._created: list[Path] = []
        self._failures: list[str] = []
        self._current: tuple[QuantizePlan, int, int] | None = None
        self._in_flight: tuple[QuantizePlan, int | None] | None = None
        """The file being written now and its worker's pid, once known (set by the run worker)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="quantize-dialog") as dialog:
            # A file name is the user's (or a download's): "[b]" in it is not markup.
            dialog.border_title = literal(f"Quantize {self.source.name}", one_line=True)
            with VerticalScroll(id="quantize-body", can_focus=False):
                yield Static(plain(str(self.source)), id="quantize-source", markup=False)
                yield TickList[str](
                    *(Selection(type_prompt(t), t, t in self._selected) for t in self.types),
                    id="quantize-types",
                )
                with Horizontal(
                    id="quantize-requantize-line", classes="-on" if self._allow_requantize else ""
                ):
                    yield Switch(self._allow_requantize, id="quantize-requantize")
                    yield Label(REQUANTIZE_LABEL, id="quantize-requantize-label")
                yield Static("", id="quantize-plan", markup=False)
                yield Static("", id="quantize-warnings", markup=False)
                with Horizontal(id="quantize-progress-line", classes="-hidden"):
                    yield ProgressBar(total=100, show_eta=False, id="quantize-progress")
                    yield Static("", id="quantize-progress-text", markup=False)
                yield Static("", id="quantize-status", markup=False)
            # The buttons and keys stay on the dialog's last lines; what does not fit above them
            # (a small terminal, a long plan) scrolls, where it pushed them out of sight.
            with Vertical(id="quantize-foot"):
                with Horizontal(id="quantize-buttons"):
                    yield Button(
                        "Quantize", id="quantize-run", variant="primary", compact=True, disabled=True
                    )
                    yield Button("Close", id="quantize-close", compact=True)
                yield Static("Space tick · r quantize · Tab move · Esc stop/close", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#quantize-types", SelectionList).focus()
        self._check()

    # -- what tests and the app read ------------------------------------------------------------

    @property
    def plans(self) -> tuple[QuantizePlan, ...]:
        return self._plans

    @property
    def refusal(self) -> str | None:
        """Why the chosen quantization cannot run, as the planner put it; None when it can."""
        return self._refusal

    @property
    def created(self) -> tuple[Path, ...]:
        return tuple(self._created)

    @property
    def status(self) -> str:
        return str(self.query_one("#quantize-status", Static).content)

    @property
    def chosen_types(self) -> tuple[str, ...]:
        picked = set(self.query_one("#quantize-types", SelectionList).selected)
        return tuple(t for t in self.types if t in picked)

    @property
    def allow_requantize(self) -> bool:
        return self.query_one("#quantize-requantize", Switch).value

    # -- checking the choice --------------------------------------------------------------------

    @on(SelectionList.SelectedChanged, "#quantize-types")
    def _types_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        event.stop()
        self._check()

    @on(Switch.Changed, "#quantize-requantize")
    def _requantize_changed(self, event: Switch.Changed) -> None:
        event.stop()
        self.query_one("#quantize-requantize-line").set_class(event.value, "-on")
        self._check()

    def _check(self) -> None:
        if self.running:
            return
        self._generation += 1
        self._plans = ()
        self._refusal = None
        self._update_run_button()
        self._plan(self._generation, self.chosen_types, self.allow_requantize)

    @work(thread=True, group=PLAN_GROUP, exit_on_error=False)
    def _plan(self, generation: int, types: tuple[str, ...], allow_requantize: bool) -> None:
        header = self._header
        if header is None:
            try:
                header = read_gguf_header(self.source)
            except (GGUFError, OSError):
                header = None
        plans: tuple[QuantizePlan, ...] = ()
        refusal: str | None = None
        if types:
            try:
                plans = tuple(
                    plan_quantizations(
                        self.source,
                        list(types),
                        output_dir=self.output_dir,
                        allow_requantize=allow_requantize,
                    )
                )
            except QuantizeRefused as error:
                refusal = str(error)
        self.post_message(self._Checked(generation, plans, refusal, header))

    @on(_Checked)
    def _checked(self, message: _Checked) -> None:
        if message.header is not None and self._header is None:
            self._header = message.header
            header = message.header
            self.query_one("#quantize-source", Static).update(
                plain(f"{self.source} · {header.quantization} · {fmt.size(header.file_size)}")
            )
        if message.generation != self._generation or self.running:
            return
        self._plans = message.plans
        self._refusal = message.refusal
        plan_line = self.query_one("#quantize-plan", Static)
        warnings = self.query_one("#quantize-warnings", Static)
        if message.refusal is not None:
            plan_line.update(plain(f"✗ {message.refusal}"))
        elif message.plans:
            plan_line.update(plain(plan_text(message.plans)))
        else:
            plan_line.update(NOTHING_CHOSEN)
        plan_line.set_class(message.refusal is not None, "-refused")
        notes = list(dict.fromkeys(w for plan in message.plans for w in plan.warnings))
        warnings.update(plain("\n".join(f"! {note}" for note in notes)))
        warnings.display = bool(notes)
        self._update_run_button()

    def _update_run_button(self) -> None:
        self.query_one("#quantize-run", Button).disabled = self.running or not self._plans
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run":
            return True if self._plans and not self.running else None
        return True

    # -- running --------------------------------------------------------------------------------

    def action_run(self) -> None:
        if self.running:
            return
        if not self._plans:
            self._say(f"✗ {self._refusal}" if self._refusal else NOTHING_CHOSEN, "-error")
            return
        self._failures = []
        self._say("", "")
        self.running = True
        self._quantize(self._plans)

    def action_cancel_or_close(self) -> None:
        if self.running:
            self._say("stopping…", "")
            self.workers.cancel_group(self, RUN_GROUP)
        else:
            self.dismiss(list(self._created))

    @on(Button.Pressed, "#quantize-run")
    def _run_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_run()

    @on(Button.Pressed, "#quantize-close")
    def _close_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel_or_close()

    def watch_running(self, running: bool) -> None:
        self.query_one("#quantize-types", SelectionList).disabled = running
        self.query_one("#quantize-requantize", Switch).disabled = running
        self.query_one("#quantize-progress-line").set_class(not running, "-hidden")
        self.query_one("#quantize-close", Button).label = "Stop" if running else "Close"
        if running:
            self.query_one("#quantize-close", Button).focus()
            self.call_after_refresh(self.query_one("#quantize-progress-line").scroll_visible, animate=False)
        self._update_run_button()

    @work(group=RUN_GROUP, exclusive=True, exit_on_error=False)
    async def _quantize(self, plans: tuple[QuantizePlan, ...]) -> None:
        def on_progress(progress: QuantizeProgress) -> None:
            self._in_flight = (progress.plan, progress.worker_pid)
            self.post_message(self._Progressed(progress))

        for index, plan in enumerate(plans, 1):
            self.post_message(self._Starting(plan, index, len(plans)))
            self._in_flight = (plan, None)
            try:
                result = await quantize_async(
                    plan, on_progress=on_progress, threads=self.threads, log_path=self._log_path
                )
            except QuantizeFailed as error:
                self.post_message(self._Failed(plan, str(error)))
                continue
            finally:
                self._in_flight = None
            self.post_message(self._Created(result))
        self.post_message(self._AllDone())

    def on_unmount(self) -> None:
        # The app quits mid-run: its run ends before this worker is cancelled and cleans up, which
        # left the worker writing a hidden partial file that nothing would ever remove.
        if self._in_flight is not None:
            abandon_quantization(*self._in_flight)
            self._in_flight = None

    def _say(self, text: str, state: str) -> None:
        status = self.query_one("#quantize-status", Static)
        status.update(plain(text))
        for name in _STATES:
            status.set_class(name == state, name)
        # Below the fold in a small terminal: brought into view, as it is what changed.
        self.call_after_refresh(status.scroll_visible, animate=False)

    @on(_Starting)
    def _starting(self, message: _Starting) -> None:
        self._current = (message.plan, message.index, message.count)
        self.query_one("#quantize-progress", ProgressBar).update(total=100, progress=0)
        self.query_one("#quantize-progress-text", Static).update(
            plain(f"{message.plan.target} ({message.index}/{message.count}) · starting")
        )

    @on(_Progressed)
    def _progressed(self, message: _Progressed) -> None:
        if not self.running or self._current is None:
            return
        _, index, count = self._current
        progress = message.progress
        bar = self.query_one("#quantize-progress", ProgressBar)
        fraction = progress.fraction
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=fraction * 100)
        self.query_one("#quantize-progress-text", Static).update(plain(progress_text(progress, index, count)))

    @on(_Created)
    def _created_file(self, message: _Created) -> None:
        result = message.result
        self._created.append(result.output)
        self._say(
            f"✓ {result.output.name} · {fmt.size(result.size_bytes)} in {result.seconds:.1f} s", "-done"
        )

    @on(_Failed)
    def _failed(self, message: _Failed) -> None:
        self._failures.append(f"✗ {message.plan.target}: {message.reason}")
        self._say("\n".join(self._failures), "-error")

    @on(_AllDone)
    def _all_done(self, message: _AllDone) -> None:
        self._current = None
        self.running = False
        if not self._failures:
            self.dismiss(list(self._created))
            return
        self._check()

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != RUN_GROUP or event.state not in (WorkerState.CANCELLED, WorkerState.ERROR):
            return
        current = self._current
        self._current = None
        if event.state == WorkerState.CANCELLED:
            name = current[0].output.name if current is not None else "the file"
            self._say(f"stopped: {name} was not written", "-error")
        else:
            self._say(f"quantizing failed: {event.worker.error}", "-error")
        self.running = False
        # Finished outputs now exist, and the planner refuses to overwrite them: check again.
        self._check()

"""Bench: sweep quant variants × GPU layers × threads, watch rows arrive, apply the fastest.

The sweep is the core's `BenchSession`, run in an async worker on the event loop (each
configuration measures in a worker process of its own, so nothing heavy runs here). Progress
comes back as messages to this screen, which fills the table and the chart a row at a time.

The app hands data down as attributes: `catalog` (its GGUF catalog), `snapshot` / `history` /
`stale` for the hardware panel, `budget` (free memory for "Apply best") and `base_settings`
(the load settings the best row is applied on top of). Up come `BenchScreen.ApplyBest` and
`BenchScreen.Finished`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Final, Literal

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, ProgressBar, Static
from textual.worker import Worker, WorkerState

from lollma_tui.core.bench.compare import best_configuration, load_settings_for
from lollma_tui.core.bench.context import BenchProgress
from lollma_tui.core.bench.records import BenchRecord
from lollma_tui.core.bench.store import ResultStore
from lollma_tui.core.bench.sweep import SweepInputError, SweepPlan, SweepSpec
from lollma_tui.core.formatting import counted
from lollma_tui.core.hardware import HardwareHistory, SystemSnapshot
from lollma_tui.core.models.catalog import Catalog
from lollma_tui.core.settings import LoadSettings
from lollma_tui.ui.literal import plain
from lollma_tui.ui.widgets.bench_chart import BenchChart
from lollma_tui.ui.widgets.bench_form import BenchSetup, SweepForm
from lollma_tui.ui.widgets.bench_results import BenchTable
from lollma_tui.ui.widgets.hardware_panel import HardwarePanel

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from lollma_tui.core.bench.session import BenchRun, BenchSession
    from lollma_tui.core.session.budget import MemoryBudget

SWEEP_GROUP: Final = "bench-sweep"
STATUS_CLASSES: Final = ("-error", "-done", "-busy")


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(progress: BenchProgress) -> str:
    parts = [f"{progress.done}/{progress.total}", format_duration(progress.elapsed_s)]
    if progress.eta_s is not None:
        parts.append(f"ETA {format_duration(progress.eta_s)}")
    if progress.label:
        parts.append(progress.label)
    return " · ".join(parts)


def summary_text(run: BenchRun, saved: int, save_error: str | None) -> str:
    rows = counted(len(run.records), "row")
    head = f"stopped: {rows} kept" if run.cancelled else f"done: {rows}"
    parts = [head]
    if save_error is not None:
        parts.append(f"not saved: {save_error}")
    elif saved:
        parts.append("saved")
    if run.failures:
        failed = run.failures[0]
        more = f" (+{len(run.failures) - 1} more)" if len(run.failures) > 1 else ""
        parts.append(f"{failed.label}: {failed.reason}{more}")
    return " · ".join(parts)


class BenchScreen(Screen[None]):
    """A full-size screen; Esc stops a running sweep, and closes the screen when idle.

    "Apply best" posts `ApplyBest` and the screen stays open, so the table stays in view while
    the app swaps; the app may dismiss it from its handler (`event.control.dismiss()`).

    | Key | Description |
    | :- | :- |
    | r | Run the sweep as filled in (Enter in a field does the same). |
    | s | Stop the sweep; the rows measured so far stay and are saved. |
    | a | Apply best: the fastest generation row within the memory budget. |
    | escape | Stop the sweep, or close the screen when none runs. |
    """

    CSS_PATH = "../bench_screens.tcss"
    """Loaded with the screen, so the app's first frame does not parse it."""

    BINDINGS = [
        Binding("escape", "stop_or_close", "Stop/close", id="bench.escape"),
        Binding("r", "run", "Run", id="bench.run"),
        Binding("s", "stop", "Stop", id="bench.stop"),
        Binding("a", "apply_best", "Apply best", id="bench.apply-best"),
    ]

    catalog: reactive[Catalog] = reactive(Catalog, init=False)
    """The GGUF models to offer; assign a new catalog after a rescan."""
    snapshot: reactive[SystemSnapshot | None] = reactive(None, init=False)
    """The app's newest hardware sample, shown in the side panel."""
    history: reactive[HardwareHistory | None] = reactive(None, init=False, always_update=True)
    """The app's hardware history (assign it again after each sample to redraw the strips)."""
    stale: reactive[bool] = reactive(False, init=False)
    """The app's sampler has gone quiet: the panel dims its figures."""
    running: reactive[bool] = reactive(False, init=False)
    """A sweep is being planned or measured."""

    class ApplyBest(Message):
        """Load `load`: the settings `record` (the fastest tg row within the budget) measured."""

        def __init__(self, screen: BenchScreen, load: LoadSettings, record: BenchRecord) -> None:
            super().__init__()
            self._screen = screen
            self.load = load
            self.record = record

        @property
        def control(self) -> BenchScreen:
            return self._screen

    class Finished(Message):
        """A sweep ended (completed or stopped); `saved` rows went to the result store."""

        def __init__(self, screen: BenchScreen, run: BenchRun, saved: int) -> None:
            super().__init__()
            self._screen = screen
            self.run = run
            self.saved = saved

        @property
        def control(self) -> BenchScreen:
            return self._screen

    class _Planned(Message, bubble=False):
        def __init__(self, plan: SweepPlan) -> None:
            super().__init__()
            self.plan = plan

    class _Progressed(Message, bubble=False):
        def __init__(self, progress: BenchProgress) -> None:
            super().__init__()
            self.progress = progress

    class _Ended(Message, bubble=False):
        def __init__(self, run: BenchRun, saved: int, save_error: str | None) -> None:
            super().__init__()
            self.run = run
            self.saved = saved
            self.save_error = save_error

    class _Refused(Message, bubble=False):
        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    def __init__(
        self,
        catalog: Catalog,
        *,
        model: str | None = None,
        form: SweepForm | None = None,
        budget: MemoryBudget | None = None,
        base_settings: LoadSettings | None = None,
        store: ResultStore | None = None,
        log_path: Path | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(BenchScreen.catalog, catalog)
        self._model = model
        self._form = form
        self.budget = budget
        """Free memory the best row must fit in (None: no limit); the app sets it, counting what
        unloading its current model would free."""
        self.base_settings = base_settings
        """The app's load settings; the best row's model, layers and threads replace theirs."""
        self.store = store or ResultStore()
        self._log_path = log_path
        self._session: BenchSession | None = None
        self._measured: list[BenchRecord] = []
        """The running sweep's rows so far, in order."""
        self._saved_count = 0
        """How many of them are in the results file already."""
        self._closing = False
        self._stop_asked = False
        self._last_run: BenchRun | None = None
        self._progress: tuple[BenchProgress, float] | None = None
        """The last progress and when it came (monotonic): the clock goes on between them."""
        self._ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="bench-top"):
            yield BenchSetup(self.catalog, model=self._model, form=self._form, id="bench-setup")
            with Horizontal(id="bench-actions"):
                yield Button("Run", id="bench-run", variant="primary", compact=True)
                yield Button("Stop", id="bench-stop", compact=True, disabled=True)
                yield Button("Apply best", id="bench-apply", compact=True, disabled=True)
                yield Static("", id="bench-status", markup=False)
            with Horizontal(id="bench-progress-line"):
                yield ProgressBar(show_eta=False, id="bench-progress")
                yield Static("", id="bench-progress-text", markup=False)
        yield BenchTable(id="bench-table")
        with Horizontal(id="bench-lower"):
            with VerticalScroll(id="bench-chart-scroll"):
                yield BenchChart(id="bench-chart")
            with VerticalScroll(id="bench-side"):
                yield HardwarePanel(id="bench-hardware").data_bind(
                    BenchScreen.snapshot, BenchScreen.history, BenchScreen.stale
                )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#bench-model").focus()

    def on_unmount(self) -> None:
        self._closing = True
        if self._session is not None:
            self._session.cancel()
            # The app is quitting mid-sweep. Its run ends without waiting for the sweep's worker
            # (that is cancelled later, as the event loop closes), so the rows measured are
            # saved now, as a stop saves them.
            with contextlib.suppress(OSError):
                self._save_new_rows(self._measured)

    # -- typed accessors ------------------------------------------------------------------------

    @property
    def setup(self) -> BenchSetup:
        return self.query_one(BenchSetup)

    @property
    def table(self) -> BenchTable:
        return self.query_one(BenchTable)

    @property
    def chart(self) -> BenchChart:
        return self.query_one(BenchChart)

    @property
    def hardware_panel(self) -> HardwarePanel:
        return self.query_one(HardwarePanel)

    @property
    def form(self) -> SweepForm:
        """The form as filled in now; pass it back as `form=` to open the next screen the same."""
        return self.setup.form

    @property
    def records(self) -> tuple[BenchRecord, ...]:
        """The rows shown: the current or last sweep's."""
        return self.table.records

    @property
    def last_run(self) -> BenchRun | None:
        return self._last_run

    @property
    def status(self) -> str:
        return str(self.query_one("#bench-status", Static).content)

    # -- state ----------------------------------------------------------------------------------

    def watch_catalog(self, catalog: Catalog) -> None:
        self.setup.catalog = catalog

    def watch_running(self, running: bool) -> None:
        self.setup.disabled = running
        self.query_one("#bench-run", Button).disabled = running
        self.query_one("#bench-stop", Button).disabled = not running
        self.query_one("#bench-apply", Button).disabled = running or not self.records
        self.set_class(running, "-running")
        if self._ticker is not None:
            self._ticker.stop()
        # A load, a warm-up or a long run sends nothing for a while: the elapsed time still moves.
        self._ticker = self.set_interval(1.0, self._tick, name="bench-elapsed") if running else None
        self._progress = None
        if running:
            self.query_one("#bench-stop", Button).focus()
        elif self.focused is None or self.focused.id == "bench-stop":
            self.query_one("#bench-run", Button).focus()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run":
            return None if self.running else True
        if action == "stop":
            return True if self.running else None
        if action == "apply_best":
            return None if self.running or not self.records else True
        return True

    def _say(self, text: str, state: str = "") -> None:
        status = self.query_one("#bench-status", Static)
        status.update(plain(text))
        for name in STATUS_CLASSES:
            status.set_class(name == state, name)

    # -- actions --------------------------------------------------------------------------------

    def action_run(self) -> None:
        if self.running:
            return
        try:
            spec = self.setup.spec()
        except SweepInputError as error:
            self._say(str(error), "-error")
            return
        base = self.base_settings
        if base is not None:
            # Measured as the chat runs, so that "Apply best" keeps them (it turned them off).
            spec = replace(spec, flash_attn=base.flash_attn, kv_cache_type=base.kv_cache_type)
        self._start(spec)

    def action_stop(self) -> None:
        if not self.running or self._stop_asked:
            return
        self._stop_asked = True
        self._say("stopping…", "-busy")
        if self._session is not None:
            self._session.cancel()
        else:
            self.workers.cancel_group(self, SWEEP_GROUP)

    def action_stop_or_close(self) -> None:
        if self.running:
            self.action_stop()
        else:
            self.dismiss(None)

    def action_apply_best(self) -> None:
        if self.running or not self.records:
            return
        budget = self.budget
        # Generation speed is what a chat feels like; a chat-only sweep has the chat rows.
        kind: Literal["tg", "chat"] = "tg" if any(r.kind == "tg" for r in self.records) else "chat"
        best = best_configuration(
            self.records,
            kind=kind,
            ram_budget_bytes=budget.free_ram if budget is not None else None,
            vram_budget_bytes=budget.free_vram if budget is not None else None,
        )
        if best is None:
            measured = any(r.kind == kind and r.avg_ts > 0 for r in self.records)
            self._say("no row fits in the free memory" if measured else "no row measured a speed", "-error")
            return
        load = load_settings_for(best, self.base_settings)
        self._say(
            f"applying {best.quant} · ngl {best.n_gpu_layers} · {counted(best.n_threads, 'thread')}", "-done"
        )
        self.post_message(self.ApplyBest(self, load, best))

    @on(Button.Pressed, "#bench-run")
    def _run_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_run()

    @on(Button.Pressed, "#bench-stop")
    def _stop_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_stop()

    @on(Button.Pressed, "#bench-apply")
    def _apply_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_apply_best()

    @on(Input.Submitted)
    def _field_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_run()

    # -- the sweep ------------------------------------------------------------------------------

    def _start(self, spec: SweepSpec) -> None:
        self._stop_asked = False
        self.table.start(spec)
        self.chart.records = ()
        self.query_one("#bench-progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#bench-progress-text", Static).update("finding the model files…")
        kept = ("flash attention on",) * spec.flash_attn + (f"KV cache {spec.kv_cache_type}",) * (
            spec.kv_cache_type != "f16"
        )
        self._say(f"running with the chat's {' and '.join(kept)}" if kept else "running", "-busy")
        self.running = True
        self._sweep(spec)

    @work(group=SWEEP_GROUP, exclusive=True, exit_on_error=False)
    async def _sweep(self, spec: SweepSpec) -> None:
        # Loaded on first use: the session pulls in the backends and the hardware sampler.
        from lollma_tui.core.backends.base import BackendError
        from lollma_tui.core.bench.session import BenchSession, plan_sweep

        try:
            plan = await plan_sweep(spec, search_dirs=())
        except (SweepInputError, BackendError) as error:
            self.post_message(self._Refused(str(error)))
            return
        self.post_message(self._Planned(plan))

        measured: list[BenchRecord] = []
        self._measured, self._saved_count = measured, 0

        def on_progress(progress: BenchProgress) -> None:
            if progress.row is not None:
                measured.append(progress.row)
            self.post_message(self._Progressed(progress))

        session = BenchSession(plan, on_progress=on_progress, log_path=self._log_path)
        self._session = session
        try:
            run = await session.run()
        except asyncio.CancelledError:
            # The app quits mid-sweep: the rows measured are kept, as a stop keeps them.
            with contextlib.suppress(OSError):
                self._save_new_rows(measured)
            raise
        finally:
            self._session = None
        saved = 0
        save_error: str | None = None
        if run.records:
            try:
                if self._closing:
                    saved = self._save_new_rows(run.records)
                else:
                    saved = await asyncio.to_thread(self._save_new_rows, run.records)
            except OSError as error:
                save_error = error.strerror or str(error)
        self.post_message(self._Ended(run, saved, save_error))

    def _save_new_rows(self, records: Sequence[BenchRecord]) -> int:
        """Append the sweep's rows not saved yet (the quit and the sweep's end may both try)."""
        new = records[self._saved_count :]
        saved = self.store.save(new)
        self._saved_count = len(records)
        return saved

    @on(_Planned)
    def _planned(self, message: _Planned) -> None:
        plan = message.plan
        self.query_one("#bench-progress", ProgressBar).update(total=plan.total_steps, progress=0)
        count = len(plan.configurations)
        self.query_one("#bench-progress-text", Static).update(
            f"{count} configuration{'s' if count != 1 else ''} · {plan.total_steps} timed runs"
        )

    def _tick(self) -> None:
        if self._progress is None or not self.running:
            return
        progress, at = self._progress
        passed = time.monotonic() - at
        eta = None if progress.eta_s is None else max(0.0, progress.eta_s - passed)
        now = replace(progress, elapsed_s=progress.elapsed_s + passed, eta_s=eta)
        self.query_one("#bench-progress-text", Static).update(plain(progress_text(now)))

    @on(_Progressed)
    def _progressed(self, message: _Progressed) -> None:
        progress = message.progress
        self._progress = (progress, time.monotonic())
        self.query_one("#bench-progress", ProgressBar).update(total=progress.total, progress=progress.done)
        self.query_one("#bench-progress-text", Static).update(plain(progress_text(progress)))
        if progress.row is not None:
            self.table.add_record(progress.row)
            self.chart.records = self.table.records
        if progress.message:
            self._say(progress.message, "-busy")

    @on(_Ended)
    def _ended(self, message: _Ended) -> None:
        run = message.run
        self._last_run = run
        failed = message.save_error is not None or (bool(run.failures) and not run.records)
        self._say(summary_text(run, message.saved, message.save_error), "-error" if failed else "-done")
        if not run.cancelled:
            bar = self.query_one("#bench-progress", ProgressBar)
            bar.update(total=bar.total or 1, progress=bar.total or 1)
        self.running = False
        self.post_message(self.Finished(self, run, message.saved))

    @on(_Refused)
    def _refused(self, message: _Refused) -> None:
        self._say(message.reason, "-error")
        self.query_one("#bench-progress-text", Static).update("")
        self.running = False

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != SWEEP_GROUP:
            return
        if event.state == WorkerState.ERROR:
            self._say(f"the bench failed: {event.worker.error}", "-error")
            self.running = False
        elif event.state == WorkerState.CANCELLED:
            self._say("stopped before any row was measured", "-done")
            self.running = False

"""The live hardware panel: CPU, RAM, each GPU, the model's footprint and the live token rate.

It renders what it is handed (attributes down) and never samples anything itself. At about
30 columns it is a compact sidebar; from `WIDE_COLUMNS` on it adds a per-core strip, history
strips for RAM, VRAM and power, and clocks, fan and throttle reasons. Layout and colours are
in ``ui/hardware_panel.tcss``, which the panel brings along when it is first mounted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.widgets import Static

from lollma_tui.core.hardware import (
    CpuSnapshot,
    HardwareHistory,
    MemorySnapshot,
    Metric,
    ProcessSnapshot,
    SystemSnapshot,
)
from lollma_tui.core.hardware.summary import CPU_ONLY, HOST_SOURCE
from lollma_tui.ui.literal import plain
from lollma_tui.ui.widgets import hardware_format as fmt
from lollma_tui.ui.widgets.hardware_gpu import MANY_GPUS, WIDE_BRIEF_COLUMNS, GpuBlock, gpu_labels
from lollma_tui.ui.widgets.hardware_rows import MetricRow, set_text

WIDE_COLUMNS = 48
"""Content width from which the panel shows its extra rows (the sidebar is about 27)."""

SIDEBAR_COLUMNS = 27
"""Content width of the panel in the chat screen's sidebar."""

WAITING = "waiting for the first sample…"


@dataclass(frozen=True, slots=True)
class ModelFootprint:
    """What the loaded model costs the machine, as the panel should word it."""

    processes: tuple[ProcessSnapshot, ...] = ()
    """Our processes as the sampler read them (`SystemSnapshot.processes`): the llama.cpp worker,
    or the Ollama server with its runners (their totals include children)."""
    placement: str | None = None
    """Where the backend put the model, e.g. Ollama's "72% GPU / 28% CPU"."""
    labels: Mapping[int, str] = field(default_factory=dict)
    """Names to show instead of the process name, by pid (e.g. "worker")."""
    none_found: str = ""
    """Said in place of the process lines when there are none (the monitor looks for servers)."""


def footprint_lines(footprint: ModelFootprint, wide: bool = False) -> list[str]:
    lines = [f"model: {footprint.placement}"] if footprint.placement else []
    for process in footprint.processes:
        # A process names itself (and a remote one is named by the far side): shown plain.
        named = footprint.labels.get(process.pid) or process.name or ""
        label = plain(named, one_line=True) or f"pid {process.pid}"
        rss = process.total_rss_bytes if process.total_rss_bytes is not None else process.rss_bytes
        cpu = process.total_cpu_percent if process.total_cpu_percent is not None else process.cpu_percent
        vram = process.total_vram_bytes if process.total_vram_bytes is not None else process.vram_bytes
        usage = [f"RSS {fmt.size(rss)}", f"CPU {fmt.percent(cpu)}"]
        if vram is not None:
            usage.append(f"VRAM {fmt.size(vram)}")
        if wide:
            lines.append(f"{label} (pid {process.pid}): " + " · ".join(usage))
        else:
            lines.extend(_packed(f"{label}:", usage, SIDEBAR_COLUMNS))
    if not footprint.processes and footprint.none_found:
        lines.append(footprint.none_found)
    return lines


def _packed(head: str, figures: list[str], width: int) -> list[str]:
    """`head` and the figures in as few lines of `width` cells as they fit in, a figure never
    split (the sidebar would otherwise wrap "RSS 252" from its "MiB"); later lines are indented.
    Measured in cells: a process may name itself in wide characters (CJK, emoji)."""
    lines: list[str] = []
    line = head
    for figure in figures:
        joined = f"{line} {figure}" if line == head else f"{line} · {figure}"
        if cell_len(joined) <= width:
            line = joined
        else:
            lines.append(line)
            line = f"  {figure}"
    lines.append(line)
    return lines


def cpu_detail(cpu: CpuSnapshot | None, wide: bool = False) -> str:
    if cpu is None:
        return ""
    parts: list[str] = []
    if wide:
        if cpu.model:
            parts.append(cpu.model)
        if cpu.logical_cores and cpu.physical_cores and cpu.physical_cores != cpu.logical_cores:
            parts.append(
                f"{fmt.counted(cpu.physical_cores, 'core')} / {fmt.counted(cpu.logical_cores, 'thread')}"
            )
        elif cpu.logical_cores:
            parts.append(fmt.counted(cpu.logical_cores, "core"))
        if cpu.freq_mhz is not None:
            parts.append(fmt.clock(cpu.freq_mhz))
        if cpu.load_avg is not None:
            parts.append("load " + " ".join(f"{value:.2f}" for value in cpu.load_avg))
    else:
        if cpu.logical_cores:
            parts.append(fmt.counted(cpu.logical_cores, "core"))
        if cpu.load_avg is not None:
            parts.append(f"load {cpu.load_avg[0]:.2f}")
    return " · ".join(parts)


def swap_text(memory: MemorySnapshot) -> str:
    if memory.swap_total_bytes == 0:
        return "none"
    return fmt.used_of_total(memory.swap_used_bytes, memory.swap_total_bytes)


class HardwarePanel(Vertical):
    """Shows the latest `SystemSnapshot` with its `HardwareHistory`; set by the app."""

    # Read with the panel (not in the apps' CSS_PATH): the chat screen mounts it after its
    # first frame. Not scoped: its rules are written as app rules.
    DEFAULT_CSS = (Path(__file__).resolve().parent.parent / "hardware_panel.tcss").read_text(encoding="utf-8")
    SCOPED_CSS = False

    # `var`, not `reactive`: the rows below redraw what changed; a repaint of the whole panel
    # on every assignment (four a second for the live rate) would redo all of its lines.
    snapshot: var[SystemSnapshot | None] = var(None, init=False)
    """The newest sample; None until the first one arrives."""
    history: var[HardwareHistory | None] = var(None, init=False, always_update=True)
    """Recent values for the strips. The same object grows in place, so assigning it again
    redraws the strips."""
    stale: var[bool] = var(False, init=False)
    """The sampler has not delivered for 3 intervals: the figures are dimmed and marked."""
    live_rate: var[float | None] = var(None, init=False)
    """Tokens per second of the reply being written; None when nothing streams."""
    model_footprint: var[ModelFootprint | None] = var(None, init=False)
    """What the loaded model costs; None hides the lines."""
    waiting_text: var[str] = var(WAITING, init=False)
    """Shown while there is no sample: which machine it waits for, or why none comes."""

    def __init__(
        self,
        snapshot: SystemSnapshot | None = None,
        history: HardwareHistory | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(HardwarePanel.snapshot, snapshot)
        self.set_reactive(HardwarePanel.history, history)
        self._gpu_blocks: dict[str, GpuBlock] = {}
        self._wide = False
        self._ready = False
        self._render_pending = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="hw-header"):
            yield Static("hardware", id="hw-title", classes="card-title", markup=False)
            yield Static("stale", id="hw-stale", markup=False)
        yield Static("", id="hw-rate", markup=False)
        yield Static(self.waiting_text, id="hw-waiting", markup=False)
        with Vertical(id="hw-body"):
            yield MetricRow("CPU", id="hw-cpu")
            yield Static("", id="hw-cpu-detail", classes="hw-detail", markup=False)
            with Horizontal(id="hw-cores", classes="wide-only"):
                yield Static("cores", classes="metric-label", markup=False)
                yield Static("", id="hw-cores-strip", markup=False)
            yield MetricRow("RAM", id="hw-ram")
            yield MetricRow("swap", id="hw-swap", strip=False)
            yield Static(CPU_ONLY, id="hw-no-gpu", markup=False)
            yield Vertical(id="hw-gpus")
            yield Static("", id="hw-problems", markup=False)
            yield Static("", id="hw-hint", markup=False)
        yield Static("", id="hw-footprint", markup=False)

    def on_mount(self) -> None:
        self._ready = True
        self.set_class(self.stale, "-stale")
        self._render_snapshot()
        self._render_rate()
        self._render_footprint()

    def on_resize(self, event: events.Resize) -> None:
        wide = self.size.width >= WIDE_COLUMNS
        if wide != self._wide:
            self._wide = wide
            self.set_class(wide, "-wide")
            self._render_footprint()
        self.set_class(self.size.width >= WIDE_BRIEF_COLUMNS, "-wide-gpu-rows")
        # Text widths (per-core strip, details) depend on the width, so redraw even without a flip.
        self._schedule_render()

    @property
    def wide(self) -> bool:
        return self._wide

    @property
    def gpu_blocks(self) -> tuple[GpuBlock, ...]:
        return tuple(self._gpu_blocks.values())

    # -- watchers ---------------------------------------------------------------------------------

    def watch_snapshot(self) -> None:
        self._schedule_render()

    def watch_history(self) -> None:
        self._schedule_render()

    def watch_stale(self, stale: bool) -> None:
        self.set_class(stale, "-stale")

    def watch_live_rate(self) -> None:
        self._render_rate()

    def watch_model_footprint(self) -> None:
        self._render_footprint()

    def watch_waiting_text(self, text: str) -> None:
        if self._ready:
            set_text(self.query_one("#hw-waiting", Static), text)

    # -- rendering --------------------------------------------------------------------------------

    def _schedule_render(self) -> None:
        # The app sets snapshot, history and stale one after the other; draw once for all of them.
        if not self._render_pending:
            self._render_pending = True
            self.call_later(self._flush_render)

    def name_machine(self, host: str | None) -> None:
        """The machine the panel watches now (None: this one), named before its first sample:
        the title named the one watched before until then."""
        if self._ready:
            title = "hardware" if host is None else f"hardware · {host}"
            set_text(self.query_one("#hw-title", Static), title)

    def _flush_render(self) -> None:
        self._render_pending = False
        self._render_snapshot()

    def _render_rate(self) -> None:
        if not self._ready:
            return
        # The line keeps its place while nothing streams: showing and hiding it at each reply
        # would lay the screen out again just as the first tokens come.
        text = "" if self.live_rate is None else f"generating {fmt.rate(self.live_rate)} tok/s"
        set_text(self.query_one("#hw-rate", Static), text)

    def _render_footprint(self) -> None:
        if not self._ready:
            return
        footprint = self.query_one("#hw-footprint", Static)
        lines = footprint_lines(self.model_footprint, self._wide) if self.model_footprint else []
        set_text(footprint, "\n".join(lines))
        footprint.display = bool(lines)

    def _render_snapshot(self) -> None:
        if not self._ready:
            return
        snapshot = self.snapshot
        self.set_class(snapshot is None, "-waiting")
        if snapshot is None:
            return
        history = self.history
        window = history.maxlen if history is not None else 0
        title = "hardware" if snapshot.host is None else f"hardware · {snapshot.host}"
        if self._wide:
            title += f" · every {snapshot.interval_s:g} s · {snapshot.sample_cost_s * 1000:.0f} ms/sample"
        set_text(self.query_one("#hw-title", Static), title)
        self._render_cpu(snapshot.cpu, history, window)
        self._render_memory(snapshot.memory, history, window)
        self._render_gpus(snapshot, history)
        self._render_notes(snapshot)

    def _render_cpu(self, cpu: CpuSnapshot | None, history: HardwareHistory | None, window: int) -> None:
        value = cpu.percent if cpu is not None else None
        self.query_one("#hw-cpu", MetricRow).show(
            fmt.percent(value),
            fmt.level_of(Metric.UTILIZATION_PERCENT, value),
            history.cpu_percent() if history is not None else (),
            scale=100.0,
            window=window,
        )
        set_text(self.query_one("#hw-cpu-detail", Static), cpu_detail(cpu, self._wide))
        strip = fmt.core_strip(cpu.per_core_percent, self.size.width - 6) if cpu is not None else ""
        set_text(self.query_one("#hw-cores-strip", Static), strip or fmt.MISSING)

    def _render_memory(
        self, memory: MemorySnapshot | None, history: HardwareHistory | None, window: int
    ) -> None:
        ram = self.query_one("#hw-ram", MetricRow)
        swap = self.query_one("#hw-swap", MetricRow)
        if memory is None:
            ram.show(fmt.MISSING)
            swap.show(fmt.MISSING)
            return
        used_fraction = memory.used_fraction
        ram.show(
            fmt.used_of_total(memory.used_bytes, memory.total_bytes),
            fmt.level_of(Metric.MEMORY_FRACTION, used_fraction),
            history.ram_used_bytes() if history is not None else (),
            scale=float(memory.total_bytes) or None,
            window=window,
        )
        swap.show(swap_text(memory), fmt.level_of(Metric.SWAP_FRACTION, memory.swap_fraction))

    def _render_gpus(self, snapshot: SystemSnapshot, history: HardwareHistory | None) -> None:
        self.set_class(len(snapshot.gpus) >= MANY_GPUS, "-many-gpus")
        keys = tuple(gpu.key for gpu in snapshot.gpus)
        if keys != tuple(self._gpu_blocks):
            container = self.query_one("#hw-gpus", Vertical)
            container.remove_children()
            labels = gpu_labels(snapshot.gpus)
            self._gpu_blocks = {
                gpu.key: GpuBlock(gpu, history, label=labels[gpu.key], classes="gpu-block")
                for gpu in snapshot.gpus
            }
            container.mount_all(self._gpu_blocks.values())
            return
        for gpu in snapshot.gpus:
            self._gpu_blocks[gpu.key].show(gpu, history)

    def _render_notes(self, snapshot: SystemSnapshot) -> None:
        problems = snapshot.problems
        gpu_failed = any(problem.name != HOST_SOURCE for problem in problems)
        self.query_one("#hw-no-gpu", Static).display = not snapshot.gpus and not gpu_failed
        problem_text = "\n".join(f"✗ {problem.message or problem.name + ' failed'}" for problem in problems)
        problem_line = self.query_one("#hw-problems", Static)
        set_text(problem_line, problem_text)
        problem_line.display = bool(problems)
        hint = self.query_one("#hw-hint", Static)
        set_text(hint, snapshot.hint or "")
        hint.display = bool(snapshot.hint)

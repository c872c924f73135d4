"""`lollma-tui monitor`: the hardware panel full screen, no model loaded.

A small nvitop/macmon for LLM boxes that works over SSH: CPU, RAM, every GPU, and the LLM
servers running here (Ollama, llama.cpp's server, …) with their memory and CPU use.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import psutil
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Footer

from lollma_tui.core.hardware import DEFAULT_INTERVAL_S, MAX_INTERVAL_S, MIN_INTERVAL_S, HardwareSource
from lollma_tui.ui.controllers.hardware_feed import HardwareFeed
from lollma_tui.ui.literal_app import LiteralApp
from lollma_tui.ui.messages import HardwareSampled
from lollma_tui.ui.themes import DEFAULT_THEME
from lollma_tui.ui.theming import choose_theme, register_themes, with_app_variables
from lollma_tui.ui.widgets.hardware_panel import HardwarePanel, ModelFootprint

INTERVAL_STEPS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
"""What + and - step through, in seconds."""

LLM_PROCESS_NAMES = frozenset(
    {"ollama", "llama-server", "llama-cli", "llamafile", "koboldcpp", "lms", "vllm"}
)
"""Process names of LLM servers worth a line of their own (compared lower-case, without .exe)."""
PYTHON_SERVER_MODULES = frozenset(
    {"llama_cpp.server", "vllm.entrypoints.openai.api_server", "sglang.launch_server"}
)
"""Servers that run as `python -m MODULE`: their process is named python, their command says."""


def next_interval(current: float, direction: int) -> float:
    """The step after `current` in `direction` (+1 slower, -1 faster), clamped to 0.25–5 s."""
    if direction > 0:
        later = [step for step in INTERVAL_STEPS if step > current + 1e-9]
        return later[0] if later else MAX_INTERVAL_S
    earlier = [step for step in INTERVAL_STEPS if step < current - 1e-9]
    return earlier[-1] if earlier else MIN_INTERVAL_S


class LlmProcessFinder:
    """Pids of the LLM servers running here, outermost only (an Ollama server, not its runners,
    which the sampler counts as its children). Called on the sampler thread: the process table
    is walked at most every `rescan_s`."""

    def __init__(
        self,
        names: Iterable[str] = LLM_PROCESS_NAMES,
        *,
        rescan_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._names = frozenset(name.lower() for name in names)
        self._rescan_s = rescan_s
        self._clock = clock
        self._found: tuple[int, ...] = ()
        self._scanned_at: float | None = None

    def __call__(self) -> tuple[int, ...]:
        now = self._clock()
        if self._scanned_at is None or now - self._scanned_at >= self._rescan_s:
            self._found = self._scan()
            self._scanned_at = now
        return self._found

    def _scan(self) -> tuple[int, ...]:
        parents: dict[int, int | None] = {}
        if _PROC.is_dir():
            parents.update(_named_processes_proc(self._names))
        else:
            # Not Linux: psutil, five times slower (7 ms for 75 processes). Where /proc exists and
            # no server runs (the usual case), /proc's answer stands: nothing is scanned twice.
            for proc in psutil.process_iter(["pid", "ppid", "name", "status"]):
                info = proc.info
                name = str(info.get("name") or "").lower().removesuffix(".exe")
                if info.get("status") != psutil.STATUS_ZOMBIE and (
                    name in self._names or (name.startswith("python") and _python_server(proc))
                ):
                    parents[int(info["pid"])] = info.get("ppid")
        return tuple(sorted(pid for pid, ppid in parents.items() if ppid not in parents))


_PROC = Path("/proc")


def _named_processes_proc(names: frozenset[str]) -> Iterator[tuple[int, int]]:
    """(pid, ppid) of the processes called one of `names`, from each ``/proc/PID/stat``: one
    read per process. The kernel keeps 15 characters of a name; every name we look for fits."""
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), "rb") as stat:
                data = stat.read()
        except OSError:
            continue  # ended meanwhile
        opening, closing = data.find(b"("), data.rfind(b")")
        name = data[opening + 1 : closing].decode(errors="replace").lower()
        if name in names or (name.startswith("python") and _runs_a_server_module(entry.path)):
            state, ppid, _ = data[closing + 2 :].split(None, 2)
            if state not in (b"Z", b"X"):  # a server that died unreaped is not running
                yield int(entry.name), int(ppid)


def _python_server(proc: psutil.Process) -> bool:
    try:
        return not PYTHON_SERVER_MODULES.isdisjoint(proc.cmdline())
    except psutil.Error:
        return False


def _runs_a_server_module(proc_dir: str) -> bool:
    try:
        with open(os.path.join(proc_dir, "cmdline"), "rb") as cmdline:
            arguments = cmdline.read(4096).decode(errors="replace").split("\0")
    except OSError:
        return False
    return not PYTHON_SERVER_MODULES.isdisjoint(arguments)


class MonitorApp(LiteralApp[None]):
    CSS_PATH = ["monitor_app.tcss"]
    TITLE = "lollma-tui monitor"

    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        # Nothing here to copy from: Ctrl+C quits, as it does top and nvitop.
        Binding("ctrl+c", "quit", show=False, id="quit-ctrl-c"),
        Binding("plus,equals_sign", "slower", "Slower", key_display="+", id="slower"),
        Binding("minus,underscore", "faster", "Faster", key_display="-", id="faster"),
        Binding("p", "toggle_processes", "Processes", id="toggle-processes"),
    ]

    show_processes: reactive[bool] = reactive(True, init=False)
    """Whether the LLM server lines are shown under the GPUs."""

    def __init__(
        self,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        theme: str = DEFAULT_THEME,
        sources: Sequence[HardwareSource] | None = None,
        process_ids: Sequence[int] = (),
        find_llm_processes: bool = True,
    ) -> None:
        super().__init__()
        self.requested_theme = theme
        """The theme asked for; an unknown name falls back to lollma-dark with a warning."""
        self.watched_pids = tuple(process_ids)
        """Processes shown whether or not they look like LLM servers (``--pid``)."""
        self._finder = LlmProcessFinder() if find_llm_processes else None
        self.hardware = HardwareFeed(self, sources, interval_s=interval_s, process_ids=self._process_ids)
        self._shown_panel: HardwarePanel | None = None

    def _process_ids(self) -> list[int]:
        found = self._finder() if self._finder is not None else ()
        return list(dict.fromkeys((*self.watched_pids, *found)))

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="monitor-body"):
            yield HardwarePanel(id="monitor-panel")
        yield Footer()

    @property
    def panel(self) -> HardwarePanel:
        return self.query_one(HardwarePanel)

    def get_css_variables(self) -> dict[str, str]:
        return with_app_variables(super().get_css_variables())

    def on_mount(self) -> None:
        failures = register_themes(self)
        warning = choose_theme(self, self.requested_theme)
        if failures:
            self.notify("\n".join(failures), title="Some themes did not load", severity="warning")
        if warning:
            self.notify(warning, severity="warning")
        self.hardware.start()

    def on_unmount(self) -> None:
        self.hardware.stop()

    @on(HardwareSampled)
    def _show_hardware(self, message: HardwareSampled) -> None:
        panel = self._panel()
        if panel is None:
            return  # a sample that was on its way while the app shuts down
        panel.history = message.history
        panel.stale = message.stale
        panel.snapshot = message.snapshot
        self._show_footprint()

    def _panel(self) -> HardwarePanel | None:
        # Looked up once: a query walks the whole DOM, every second.
        if self._shown_panel is None or not self._shown_panel.is_attached:
            self._shown_panel = next(iter(self.query(HardwarePanel)), None)
        return self._shown_panel

    def _show_footprint(self) -> None:
        panel = self._panel()
        if panel is None:
            return
        snapshot = self.hardware.latest
        if not self.show_processes or snapshot is None:
            panel.model_footprint = None
            return
        panel.model_footprint = ModelFootprint(snapshot.processes, none_found=self._none_found())

    def _none_found(self) -> str:
        """What the process lines say when there are none: what was looked for, and the way on."""
        missing: list[str] = []
        if self._finder is not None:
            modules = (module.split(".entrypoints")[0] for module in sorted(PYTHON_SERVER_MODULES))
            servers = [*sorted(LLM_PROCESS_NAMES), *(f"python -m {module}" for module in modules)]
            missing.append(f"no LLM server running ({', '.join(servers)})")
        if self.watched_pids:
            missing.append(f"pid {', '.join(str(pid) for pid in self.watched_pids)} not running")
        if not missing:
            return ""
        hint = "" if self.watched_pids else " · --pid PID shows any process"
        return f"processes: {'; '.join(missing)}{hint} · p hides this"

    def watch_show_processes(self) -> None:
        self._show_footprint()

    def action_slower(self) -> None:
        self.hardware.set_interval(next_interval(self.hardware.interval_s, +1))

    def action_faster(self) -> None:
        self.hardware.set_interval(next_interval(self.hardware.interval_s, -1))

    def action_toggle_processes(self) -> None:
        self.show_processes = not self.show_processes

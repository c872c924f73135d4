"""One GPU's block in the hardware panel."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from lollma_tui.core.hardware import GpuSnapshot, GpuState, GpuVendor, HardwareHistory, Level, Metric
from lollma_tui.ui.widgets import hardware_format as fmt
from lollma_tui.ui.widgets.hardware_rows import MetricRow, MetricValue, set_level, set_text

_VENDOR_LABELS = {
    GpuVendor.NVIDIA: "NV",
    GpuVendor.AMD: "AMD",
    GpuVendor.INTEL: "Intel",
    GpuVendor.APPLE: "GPU",
}


def gpu_labels(gpus: Sequence[GpuSnapshot]) -> dict[str, str]:
    """What each GPU is called, by key: ``GPU0``, ``GPU1``… as the driver numbers them; with
    GPUs of several vendors, whose numbers each start at 0, ``NV0`` and ``AMD0``."""
    mixed = len({gpu.vendor for gpu in gpus}) > 1
    return {gpu.key: f"{_VENDOR_LABELS[gpu.vendor] if mixed else 'GPU'}{gpu.index}" for gpu in gpus}


def gpu_title(gpu: GpuSnapshot, label: str | None = None) -> str:
    notes = [label for flag, label in ((gpu.unified_memory, "unified"), (gpu.mig_enabled, "MIG")) if flag]
    # "NVIDIA GeForce RTX 4090" would not fit the sidebar; the model name alone says enough.
    name = gpu.name.removeprefix("NVIDIA ") or gpu.name
    title = f"{label or f'GPU{gpu.index}'} {name}"
    return f"{title} ({', '.join(notes)})" if notes else title


def gpu_state_line(gpu: GpuSnapshot) -> str:
    if gpu.state is GpuState.ASLEEP:
        return "asleep: not polled, so it can stay asleep"
    if gpu.state is GpuState.LOST:
        return "lost: the GPU stopped answering"
    if gpu.state is GpuState.UNREADABLE:
        return "unreadable: the driver will not open it for us"
    return ""


def gpu_details(gpu: GpuSnapshot) -> str:
    """The slow-changing extras shown when the panel is wide: clocks, fan, bandwidth, throttling."""
    parts = [f"clock {fmt.clock(gpu.clock_mhz)}"]
    if gpu.fan_percent is not None:
        parts.append(f"fan {fmt.percent(gpu.fan_percent)}")
    if gpu.memory_bandwidth_percent is not None:
        parts.append(f"mem bw {fmt.percent(gpu.memory_bandwidth_percent)}")
    if gpu.throttle_reasons is not None:
        parts.append("throttle: " + (", ".join(gpu.throttle_reasons) or "none"))
    return " · ".join(parts)


MANY_GPUS = 3
"""From this many GPUs on, each takes one line (as nvitop's rows), so that eight fit 80×24."""

WIDE_BRIEF_COLUMNS = 67
"""Width of `gpu_brief`'s wide line; narrower, the short line shows, which cuts no figure off."""


def gpu_brief(gpu: GpuSnapshot, wide: bool, label: str | None = None) -> str:
    """One line for a GPU among many: ``GPU3  87% 35/80G 71° 699W`` in the sidebar's 27
    columns; wide, its name and the panel's own figures."""
    label = label or f"GPU{gpu.index}"
    if gpu.state is not GpuState.OK:
        return f"{label} {gpu_state_line(gpu).split(':')[0]}"
    if wide:
        vram = fmt.used_of_total(gpu.memory_used_bytes, gpu.memory_total_bytes)
        util, temp = fmt.percent(gpu.utilization_percent), fmt.temperature(gpu.temperature_c)
        power = fmt.power(gpu.power_w, gpu.power_limit_w)
        return f"{gpu_title(gpu, label):<24.24} {util:>5}  {vram:>15}  {temp:>5}  {power:>11}"
    util = fmt.MISSING if gpu.utilization_percent is None else f"{gpu.utilization_percent:3.0f}%"
    if gpu.memory_used_bytes is not None and gpu.memory_total_bytes:
        vram = f"{gpu.memory_used_bytes / (1 << 30):.0f}/{gpu.memory_total_bytes / (1 << 30):.0f}G"
    else:
        vram = "unified" if gpu.unified_memory else fmt.MISSING
    temp = fmt.MISSING if gpu.temperature_c is None else f"{gpu.temperature_c:.0f}°"
    power = fmt.MISSING if gpu.power_w is None else f"{gpu.power_w:.0f}W"
    return f"{label} {util} {vram} {temp} {power}"


def gpu_level(gpu: GpuSnapshot) -> Level:
    """How worrying the GPU looks: heat, memory and power. High utilisation is the goal, not a warning."""
    return fmt.worst(
        (
            fmt.level_of(Metric.TEMPERATURE_C, gpu.temperature_c),
            fmt.level_of(Metric.MEMORY_FRACTION, gpu.memory_fraction),
            fmt.level_of(Metric.POWER_FRACTION, gpu.power_fraction),
        )
    )


class GpuBlock(Vertical):
    """Name, utilisation, VRAM, temperature and power of one GPU, with their recent history."""

    def __init__(
        self,
        gpu: GpuSnapshot,
        history: HardwareHistory | None = None,
        *,
        label: str | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.gpu = gpu
        self.history = history
        self.label = label or f"GPU{gpu.index}"
        """What the GPU is called here (`gpu_labels`)."""
        self.level: Level = gpu_level(gpu)

    @property
    def key(self) -> str:
        return self.gpu.key

    def compose(self) -> ComposeResult:
        yield Static("", classes="gpu-brief", markup=False)
        yield Static("", classes="gpu-brief-wide", markup=False)
        yield Static("", classes="gpu-name", markup=False)
        yield Static("", classes="gpu-state", markup=False)
        yield MetricRow("util", classes="gpu-util")
        yield MetricRow("VRAM", classes="gpu-vram")
        yield MetricRow("power", classes="gpu-power wide-only")
        with Horizontal(classes="gpu-line"):
            yield MetricValue(classes="gpu-temp")
            yield MetricValue(classes="gpu-power-short compact-only")
            yield Static("", classes="gpu-details wide-only", markup=False)

    def on_mount(self) -> None:
        self._render_gpu()

    def show(self, gpu: GpuSnapshot, history: HardwareHistory | None) -> None:
        self.gpu = gpu
        self.history = history
        if self.is_mounted:
            self._render_gpu()

    def _render_gpu(self) -> None:
        gpu, history = self.gpu, self.history
        key = gpu.key
        window = history.maxlen if history is not None else 0
        self.level = gpu_level(gpu)
        set_level(self, self.level)
        set_text(self.query_one(".gpu-name", Static), gpu_title(gpu, self.label))
        set_text(self.query_one(".gpu-brief", Static), gpu_brief(gpu, False, self.label))
        set_text(self.query_one(".gpu-brief-wide", Static), gpu_brief(gpu, True, self.label))
        state = self.query_one(".gpu-state", Static)
        set_text(state, gpu_state_line(gpu))
        state.display = gpu.state is not GpuState.OK

        self.query_one(".gpu-util", MetricRow).show(
            fmt.percent(gpu.utilization_percent),
            fmt.level_of(Metric.UTILIZATION_PERCENT, gpu.utilization_percent),
            history.gpu_utilization(key) if history is not None else (),
            scale=100.0,
            window=window,
        )
        vram = self.query_one(".gpu-vram", MetricRow)
        if gpu.unified_memory and not gpu.memory_total_bytes:
            # The pool is system RAM, already shown (and coloured) in the RAM row.
            vram.show("unified (RAM)")
        else:
            vram.show(
                fmt.used_of_total(gpu.memory_used_bytes, gpu.memory_total_bytes),
                fmt.level_of(Metric.MEMORY_FRACTION, gpu.memory_fraction),
                history.gpu_memory_used(key) if history is not None else (),
                scale=float(gpu.memory_total_bytes) if gpu.memory_total_bytes else None,
                window=window,
            )
        power_text = fmt.power(gpu.power_w, gpu.power_limit_w)
        power_level = fmt.level_of(Metric.POWER_FRACTION, gpu.power_fraction)
        self.query_one(".gpu-power", MetricRow).show(
            power_text,
            power_level,
            history.gpu_power(key) if history is not None else (),
            scale=gpu.power_limit_w,
            window=window,
        )
        self.query_one(".gpu-temp", MetricValue).show(
            fmt.temperature(gpu.temperature_c), fmt.level_of(Metric.TEMPERATURE_C, gpu.temperature_c)
        )
        self.query_one(".gpu-power-short", MetricValue).show(power_text, power_level)
        set_text(self.query_one(".gpu-details", Static), gpu_details(gpu))

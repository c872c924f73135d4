"""AMD (amdgpu) and Intel (i915, xe) GPUs on Linux, read from DRM sysfs and hwmon.

No vendor library is needed. Which files a card offers is worked out once when the card is
found; each tick then reads only those files (tens of microseconds each).

Intel exposes no utilisation through sysfs (it needs the perf PMU and CAP_PERFMON), so Intel
cards report clock, temperature, power and, on xe, VRAM size only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lollma_tui.core.hardware.snapshots import GpuSnapshot, GpuState, GpuVendor, SourceState
from lollma_tui.core.hardware.source import RETRY_AFTER_S, SampleContext, SourceReading, status

_CARD = re.compile(r"card(\d+)")
_VENDORS = {"0x1002": GpuVendor.AMD, "0x8086": GpuVendor.INTEL}
_DRIVERS = {"amdgpu": GpuVendor.AMD, "i915": GpuVendor.INTEL, "xe": GpuVendor.INTEL}
_APU_VRAM_LIMIT = 1 << 30
"""An AMD "VRAM" of 1 GiB or less is a BIOS carve-out on an APU; the real pool is GTT."""
_PREFERRED_TEMP_LABELS = ("edge", "pkg", "junction")


def _read_text(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path: Path | None) -> int | None:
    text = _read_text(path)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def _existing(*candidates: Path) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def _driver_name(device: Path) -> str | None:
    link = device / "driver"
    if link.exists():
        return link.resolve().name
    for line in (_read_text(device / "uevent") or "").splitlines():
        key, _, value = line.partition("=")
        if key == "DRIVER":
            return value
    return None


def _pci_slot(device: Path) -> str | None:
    for line in (_read_text(device / "uevent") or "").splitlines():
        key, _, value = line.partition("=")
        if key == "PCI_SLOT_NAME":
            return value
    return None


def _pick_temperature(hwmon: Path | None) -> Path | None:
    if hwmon is None:
        return None
    inputs = sorted(hwmon.glob("temp*_input"), key=lambda p: (len(p.name), p.name))
    for wanted in _PREFERRED_TEMP_LABELS:
        for path in inputs:
            if _read_text(path.with_name(path.name.replace("_input", "_label"))) == wanted:
                return path
    return inputs[0] if inputs else None


@dataclass(slots=True)
class _Card:
    """The files one card offers, found once at discovery."""

    index: int
    name: str
    vendor: GpuVendor
    driver: str
    bus_id: str | None
    integrated: bool
    busy: Path | None = None
    mem_busy: Path | None = None
    vram_used: Path | None = None
    vram_total: Path | None = None
    gtt_used: Path | None = None
    gtt_total: Path | None = None
    vram_size_files: tuple[Path, ...] = ()
    temperature: Path | None = None
    power: Path | None = None
    """Instantaneous or averaged power in µW."""
    energy: Path | None = None
    """A µJ counter, turned into watts from consecutive readings when no power file exists."""
    power_limit: Path | None = None
    clock_mhz: Path | None = None
    clock_hz: Path | None = None
    pwm: Path | None = None
    pwm_max: Path | None = None
    runtime_status: Path | None = None
    """Runtime power management: "suspended" while a hybrid laptop's dGPU sleeps."""
    last_energy: tuple[float, int] | None = field(default=None)

    def still_at(self, card_dir: Path) -> bool:
        """Whether `card_dir` is still this card with these files: a card unbound or unplugged
        goes, one bound again comes back with its hwmon renumbered. Only looked at (stat), as
        reading a sleeping card's files wakes it."""
        files = (self.busy, self.vram_used, self.temperature, self.power, self.energy, self.clock_mhz)
        return _pci_slot(card_dir / "device") == self.bus_id and all(
            path.exists() for path in files if path is not None
        )


def _discover_card(card_dir: Path, index: int) -> _Card | None:
    device = card_dir / "device"
    if not device.is_dir():
        return None
    driver = _driver_name(device)
    vendor = _DRIVERS.get(driver or "") or _VENDORS.get((_read_text(device / "vendor") or "").lower())
    if vendor is None:
        return None  # NVIDIA goes through NVML; virtual and simple framebuffers have nothing to show
    driver = driver or ("amdgpu" if vendor is GpuVendor.AMD else "i915")
    hwmons = sorted((device / "hwmon").glob("hwmon*"))
    hwmon = hwmons[0] if hwmons else None
    bus_id = _pci_slot(device)
    product = _read_text(device / "product_name")
    label = "AMD" if vendor is GpuVendor.AMD else "Intel"
    card = _Card(
        index=index,
        name=product or f"{label} GPU (card{index})",
        vendor=vendor,
        driver=driver,
        bus_id=bus_id,
        integrated=False,
        temperature=_pick_temperature(hwmon),
        runtime_status=_existing(device / "power/runtime_status"),
    )
    if hwmon is not None:
        card.power = _existing(hwmon / "power1_average", hwmon / "power1_input")
        card.energy = None if card.power else _existing(hwmon / "energy1_input")
        card.power_limit = _existing(hwmon / "power1_cap", hwmon / "power1_max")
        card.pwm = _existing(hwmon / "pwm1")
        card.pwm_max = _existing(hwmon / "pwm1_max")
    if driver == "amdgpu":
        card.busy = _existing(device / "gpu_busy_percent")
        card.mem_busy = _existing(device / "mem_busy_percent")
        card.vram_used = _existing(device / "mem_info_vram_used")
        card.vram_total = _existing(device / "mem_info_vram_total")
        card.gtt_used = _existing(device / "mem_info_gtt_used")
        card.gtt_total = _existing(device / "mem_info_gtt_total")
        vram_total = _read_int(card.vram_total)
        card.integrated = (
            vram_total is not None and vram_total <= _APU_VRAM_LIMIT and card.gtt_total is not None
        )
        if hwmon is not None:
            card.clock_hz = _existing(hwmon / "freq1_input")
    elif driver == "xe":
        card.clock_mhz = _existing(
            *(device / f"tile0/gt0/freq0/{name}" for name in ("act_freq", "cur_freq")),
        )
        card.vram_size_files = tuple(sorted(device.glob("tile*/physical_vram_size_bytes")))
        card.integrated = not any(_read_int(p) for p in card.vram_size_files)
    else:  # i915
        card.clock_mhz = _existing(
            card_dir / "gt_act_freq_mhz",
            card_dir / "gt_cur_freq_mhz",
            card_dir / "gt/gt0/rps_act_freq_mhz",
            card_dir / "gt/gt0/rps_cur_freq_mhz",
        )
        # Discrete Arc cards have a hwmon; the integrated GPU never does.
        card.integrated = hwmon is None
    return card


class SysfsGpuSource:
    """GPU readings from `drm_root` (normally /sys/class/drm; tests pass a fake tree)."""

    def __init__(
        self, drm_root: Path = Path("/sys/class/drm"), *, retry_after_s: float = RETRY_AFTER_S
    ) -> None:
        self._root = drm_root
        self._retry_after_s = retry_after_s
        self._cards: list[_Card] | None = None
        self._next_scan_at: float | None = None

    @property
    def name(self) -> str:
        return "sysfs"

    def close(self) -> None:
        self._cards = None
        self._next_scan_at = None

    def _scan(self) -> list[_Card]:
        """The cards now in `drm_root`: the ones already known kept as they are (their files
        are not read again), new or changed ones discovered."""
        known = {card.index: card for card in self._cards or ()}
        cards: list[_Card] = []
        try:
            entries = list(self._root.iterdir())
        except OSError:
            return cards
        for entry in entries:
            match = _CARD.fullmatch(entry.name)  # card0, not connector entries like card0-DP-1
            if match is None:
                continue
            index = int(match.group(1))
            kept = known.get(index)
            card = kept if kept is not None and kept.still_at(entry) else _discover_card(entry, index)
            if card is not None:
                cards.append(card)
        return sorted(cards, key=lambda c: c.index)

    def sample(self, context: SampleContext) -> SourceReading:
        try:
            return self._sample(context)
        except Exception as exc:  # an unexpected sysfs layout must not stop the other sources
            return SourceReading(status=status(self.name, SourceState.ERROR, f"sysfs read failed: {exc}"))

    def _sample(self, context: SampleContext) -> SourceReading:
        # Looked for again every `retry_after_s`, found or not: a card found once was read from
        # the same paths for good, after it was unplugged or rebound, and one added never showed.
        if self._next_scan_at is None or context.now >= self._next_scan_at:
            self._cards = self._scan()
            self._next_scan_at = context.now + self._retry_after_s
        if not self._cards:
            return self._absent()
        gpus = tuple(self._read_card(card, context.now) for card in self._cards)
        amd = sum(1 for c in self._cards if c.vendor is GpuVendor.AMD)
        intel = len(self._cards) - amd
        parts = [
            f"{n} {label} GPU{'s' if n > 1 else ''}" for n, label in ((amd, "AMD"), (intel, "Intel")) if n
        ]
        line = "sysfs: " + ", ".join(parts)
        if intel:
            line += " (Intel utilisation needs CAP_PERFMON: not shown)"
        return SourceReading(status=status(self.name, SourceState.OK, line), gpus=gpus)

    def _absent(self) -> SourceReading:
        return SourceReading(status=status(self.name, SourceState.ABSENT, "no AMD or Intel GPU in DRM sysfs"))

    def _read_card(self, card: _Card, now: float) -> GpuSnapshot:
        if _read_text(card.runtime_status) == "suspended":
            # Reading its other files would wake it: a laptop's dGPU never slept while we ran.
            card.last_energy = None
            return GpuSnapshot(
                index=card.index,
                name=card.name,
                vendor=card.vendor,
                state=GpuState.ASLEEP,
                unified_memory=card.integrated,
                bus_id=card.bus_id,
            )
        used = _read_int(card.vram_used)
        total = _read_int(card.vram_total)
        if card.vram_size_files:
            sizes = [s for s in (_read_int(p) for p in card.vram_size_files) if s is not None]
            total = sum(sizes) if sizes else None
        if card.integrated and card.vendor is GpuVendor.AMD:
            gtt_used, gtt_total = _read_int(card.gtt_used), _read_int(card.gtt_total)
            used = None if used is None or gtt_used is None else used + gtt_used
            total = None if total is None or gtt_total is None else total + gtt_total

        temp_milli = _read_int(card.temperature)
        power_uw = _read_int(card.power)
        power_w = power_uw / 1e6 if power_uw is not None else self._energy_power(card, now)
        limit_uw = _read_int(card.power_limit)
        clock = _read_int(card.clock_mhz)
        if clock is None and card.clock_hz is not None:
            hz = _read_int(card.clock_hz)
            clock = hz // 1_000_000 if hz is not None else None
        fan: float | None = None
        pwm, pwm_max = _read_int(card.pwm), _read_int(card.pwm_max)
        if pwm is not None and pwm_max:
            fan = 100.0 * pwm / pwm_max
        busy = _read_int(card.busy)
        mem_busy = _read_int(card.mem_busy)
        return GpuSnapshot(
            index=card.index,
            name=card.name,
            vendor=card.vendor,
            utilization_percent=float(busy) if busy is not None else None,
            memory_bandwidth_percent=float(mem_busy) if mem_busy is not None else None,
            memory_used_bytes=used,
            memory_total_bytes=total or None,
            temperature_c=temp_milli / 1000.0 if temp_milli is not None else None,
            power_w=power_w,
            power_limit_w=limit_uw / 1e6 if limit_uw else None,
            clock_mhz=clock,
            fan_percent=fan,
            unified_memory=card.integrated,
            bus_id=card.bus_id,
        )

    def _energy_power(self, card: _Card, now: float) -> float | None:
        energy = _read_int(card.energy)
        if energy is None:
            return None
        previous, card.last_energy = card.last_energy, (now, energy)
        if previous is None:
            return None
        then, before = previous
        elapsed = now - then
        if elapsed <= 0 or energy < before:  # counter wrapped or clock went backwards
            return None
        return (energy - before) / elapsed / 1e6

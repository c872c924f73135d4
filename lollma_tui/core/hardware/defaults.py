"""Which sources this platform gets."""

from __future__ import annotations

import platform as _platform
import sys

from lollma_tui.core.hardware.host import HostSource
from lollma_tui.core.hardware.macmon import MacmonSource
from lollma_tui.core.hardware.nvidia import NvidiaSource
from lollma_tui.core.hardware.source import HardwareSource
from lollma_tui.core.hardware.sysfs_gpu import SysfsGpuSource


def default_sources(system: str | None = None, machine: str | None = None) -> list[HardwareSource]:
    """The sources worth running here; the host source always comes first.

    Linux: psutil + NVML + DRM sysfs (AMD/Intel). Apple Silicon: psutil + macmon.
    Intel Macs: psutil only. Elsewhere: psutil + NVML. Constructing them is cheap and has no
    side effects; libraries and child processes are opened on the first sample.
    """
    system = system or sys.platform
    machine = (machine or _platform.machine()).lower()
    sources: list[HardwareSource] = [HostSource()]
    if system.startswith("linux"):
        sources += [NvidiaSource(), SysfsGpuSource()]
    elif system == "darwin":
        if machine in ("arm64", "aarch64"):
            sources.append(MacmonSource())
    else:
        sources.append(NvidiaSource())
    return sources

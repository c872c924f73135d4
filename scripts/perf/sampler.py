"""Time one sample of each hardware source on this machine, and a whole sampler tick.

    uv run python scripts/perf/sampler.py [--samples 200] [--quick]

Prints median and p95 per call. Sources that find nothing here (no NVIDIA driver, no DRM GPU)
are timed too: their cost while absent is what a CPU-only box pays every tick. The AMD line
uses a synthetic sysfs tree in a temporary directory, so it shows our parsing cost, not the
kernel's cost of producing those files.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _support import QUICK_HELP

from lollma_tui.core.hardware import (
    HardwareSampler,
    HostSource,
    NvidiaSource,
    ProcessTracker,
    SysfsGpuSource,
    default_sources,
)
from lollma_tui.core.hardware.source import SampleContext


def timed(label: str, call: Callable[[int], object], samples: int) -> float:
    call(0)  # warm-up: first calls load libraries and prime deltas
    costs = []
    for i in range(1, samples + 1):
        started = time.perf_counter()
        call(i)
        costs.append(time.perf_counter() - started)
    costs.sort()
    median = statistics.median(costs)
    p95 = costs[int(len(costs) * 0.95) - 1]
    print(f"{label:<44} median {median * 1e6:9.1f} µs   p95 {p95 * 1e6:9.1f} µs")
    return median


def fake_amd_tree(root: Path) -> Path:
    device = root / "class/drm/card0/device"
    files = {
        "vendor": "0x1002",
        "uevent": "DRIVER=amdgpu\nPCI_SLOT_NAME=0000:03:00.0",
        "product_name": "AMD Radeon (synthetic)",
        "gpu_busy_percent": "40",
        "mem_busy_percent": "10",
        "mem_info_vram_used": str(6 << 30),
        "mem_info_vram_total": str(24 << 30),
        "mem_info_gtt_used": "0",
        "mem_info_gtt_total": str(16 << 30),
        "hwmon/hwmon0/temp1_input": "50000",
        "hwmon/hwmon0/temp1_label": "edge",
        "hwmon/hwmon0/power1_average": "100000000",
        "hwmon/hwmon0/power1_cap": "300000000",
        "hwmon/hwmon0/freq1_input": "2000000000",
        "hwmon/hwmon0/pwm1": "100",
        "hwmon/hwmon0/pwm1_max": "255",
    }
    for rel, text in files.items():
        path = device / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return root / "class/drm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP + ": 5 samples each")
    args = parser.parse_args()
    if args.quick:
        args.samples = 5
    n = args.samples

    def ctx(i: int, pids: frozenset[int] = frozenset()) -> SampleContext:
        # Advance "now" by 1 s per call so retry timers and slow tiers behave as at 1 s ticks.
        return SampleContext(now=float(i), interval_s=1.0, pids=pids)

    print(f"{n} samples each; {os.cpu_count()} logical CPUs; Python {sys.version.split()[0]}")
    host = HostSource()
    timed("host (psutil CPU + RAM + swap)", lambda i: host.sample(ctx(i)), n)

    nvidia = NvidiaSource()
    reading = nvidia.sample(ctx(0))
    timed(
        f"nvidia [{reading.status.state}: {reading.status.message[:28]}]", lambda i: nvidia.sample(ctx(i)), n
    )
    nvidia.close()

    sysfs = SysfsGpuSource()
    reading = sysfs.sample(ctx(0))
    timed(f"sysfs, real /sys [{reading.status.state}]", lambda i: sysfs.sample(ctx(i)), n)

    with tempfile.TemporaryDirectory() as tmp:
        amd = SysfsGpuSource(fake_amd_tree(Path(tmp)))
        timed("sysfs, synthetic amdgpu card (1 GPU)", lambda i: amd.sample(ctx(i)), n)

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        tracker = ProcessTracker()
        roots = [os.getpid()]

        def track(i: int) -> None:
            tracker.refresh(roots, now=float(i))
            tracker.read()

        timed("processes: self + 1 child (rescan every 5 ticks)", track, n)

        def rescan(i: int) -> None:
            tracker.refresh(roots, now=float(i) * 10)  # force the descendant walk every call
            tracker.read()

        timed("processes: with descendant rescan", rescan, n)

        sampler = HardwareSampler(lambda _: None, default_sources())
        sampler.set_process_ids_provider(lambda: roots)
        median = timed("whole tick, default sources + our pid", lambda i: sampler.sample_now(), n)
        sampler.close()
        print(f"→ at a 1.0 s interval the sampler costs about {median * 100:.3f} % of one core")
    finally:
        child.kill()
        child.wait()


if __name__ == "__main__":
    main()

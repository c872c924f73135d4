"""Apple Silicon GPU and power through `macmon pipe` (sudoless; we never run powermetrics).

`macmon pipe -i <ms>` prints one JSON object per line. Its own reader thread parses each line
as it arrives and keeps only the newest; `sample()` just reads that, so a slow or dead macmon
never delays a tick. When macmon exits it is restarted with exponential backoff (1 s → 30 s).

Field names changed across macmon versions; `parse_macmon_line` accepts all of them:
v0.5–0.7 ``gpu_usage: [freq_mhz, ratio]`` pairs, v0.8.0 ``*_usage_ratio``, v0.8.1+
``*_scaled_ratio`` plus ``*_freq_mhz``. Ratios are 0..1; a 0 temperature means "no sensor".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from lollma_tui.core.hardware.host import read_cpu_model
from lollma_tui.core.hardware.snapshots import GpuSnapshot, GpuVendor, SourceState
from lollma_tui.core.hardware.source import RETRY_AFTER_S, SampleContext, SourceReading, status
from lollma_tui.core.safe_text import clean_text

INSTALL_HINT = "install macmon for GPU/power (brew install macmon)"


@dataclass(frozen=True, slots=True)
class MacmonReading:
    """One parsed `macmon pipe` line; None where that macmon version or machine has no value."""

    gpu_ratio: float | None
    gpu_freq_mhz: int | None
    ecpu_ratio: float | None
    ecpu_freq_mhz: int | None
    pcpu_ratio: float | None
    pcpu_freq_mhz: int | None
    cpu_power_w: float | None
    gpu_power_w: float | None
    ane_power_w: float | None
    ram_power_w: float | None
    all_power_w: float | None
    sys_power_w: float | None
    cpu_temp_c: float | None
    gpu_temp_c: float | None
    ram_total_bytes: int | None
    ram_used_bytes: int | None
    swap_total_bytes: int | None
    swap_used_bytes: int | None
    chip_name: str | None

    @property
    def all_zero(self) -> bool:
        """True for the all-zero readings macmon gives on some headless Macs."""
        figures = (
            self.gpu_ratio,
            self.ecpu_ratio,
            self.pcpu_ratio,
            self.cpu_power_w,
            self.gpu_power_w,
            self.all_power_w,
        )
        return all(not v for v in figures)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _ratio(data: Mapping[str, Any], prefix: str) -> float | None:
    for key in (f"{prefix}_scaled_ratio", f"{prefix}_usage_ratio"):
        value = _number(data.get(key))
        if value is not None:
            return min(max(value, 0.0), 1.0)
    pair = data.get(f"{prefix}_usage")
    if isinstance(pair, list) and len(pair) == 2:
        value = _number(pair[1])
        if value is not None:
            return min(max(value, 0.0), 1.0)
    return None


def _freq(data: Mapping[str, Any], prefix: str) -> int | None:
    value = _number(data.get(f"{prefix}_freq_mhz"))
    if value is None:
        pair = data.get(f"{prefix}_usage")
        if isinstance(pair, list) and len(pair) == 2:
            value = _number(pair[0])
    return int(value) if value is not None else None


def _temperature(value: Any) -> float | None:
    celsius = _number(value)
    # macmon writes 0 when it found no sensor; anything past 150 °C is a bogus read.
    return celsius if celsius is not None and 0.0 < celsius <= 150.0 else None


def _bytes(data: Mapping[str, Any], key: str) -> int | None:
    value = _number(data.get(key))
    return int(value) if value is not None and value >= 0 else None


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def parse_macmon_line(line: str) -> MacmonReading | None:
    """Parse one `macmon pipe` line of any known version; None for a line that is not a reading."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    temp, memory, soc = _section(data, "temp"), _section(data, "memory"), _section(data, "soc")
    chip = soc.get("chip_name")
    reading = MacmonReading(
        gpu_ratio=_ratio(data, "gpu"),
        gpu_freq_mhz=_freq(data, "gpu"),
        ecpu_ratio=_ratio(data, "ecpu"),
        ecpu_freq_mhz=_freq(data, "ecpu"),
        pcpu_ratio=_ratio(data, "pcpu"),
        pcpu_freq_mhz=_freq(data, "pcpu"),
        cpu_power_w=_number(data.get("cpu_power")),
        gpu_power_w=_number(data.get("gpu_power")),
        ane_power_w=_number(data.get("ane_power")),
        ram_power_w=_number(data.get("ram_power")),
        all_power_w=_number(data.get("all_power")),
        sys_power_w=_number(data.get("sys_power")) or None,  # 0 when the SMC key is missing
        cpu_temp_c=_temperature(temp.get("cpu_temp_avg")),
        gpu_temp_c=_temperature(temp.get("gpu_temp_avg")),
        ram_total_bytes=_bytes(memory, "ram_total"),
        ram_used_bytes=_bytes(memory, "ram_usage"),
        swap_total_bytes=_bytes(memory, "swap_total"),
        swap_used_bytes=_bytes(memory, "swap_usage"),
        chip_name=chip if isinstance(chip, str) and chip else None,
    )
    if reading.gpu_ratio is None and reading.gpu_power_w is None and reading.ram_total_bytes is None:
        return None  # valid JSON, but nothing macmon-like in it
    return reading


def gpu_from_reading(reading: MacmonReading, cpu_model: str | None) -> GpuSnapshot:
    """The Apple GPU as a GpuSnapshot; named after the chip ("Apple M2 Pro GPU") when known."""
    chip = cpu_model if cpu_model and cpu_model.startswith("Apple") else None
    name = reading.chip_name or chip
    return GpuSnapshot(
        index=0,
        name=f"{name} GPU" if name else "Apple GPU",
        vendor=GpuVendor.APPLE,
        utilization_percent=reading.gpu_ratio * 100.0 if reading.gpu_ratio is not None else None,
        temperature_c=reading.gpu_temp_c,
        power_w=reading.gpu_power_w,
        clock_mhz=reading.gpu_freq_mhz,
        unified_memory=True,
    )


class MacmonSource:
    """Runs ``<executable> [extra_args] pipe -i <ms>`` and reports its newest line.

    Tests pass ``executable=sys.executable, extra_args=[script]`` to replay recorded lines.
    """

    def __init__(
        self,
        executable: str = "macmon",
        *,
        extra_args: Sequence[str] = (),
        which: Callable[[str], str | None] = shutil.which,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        retry_after_s: float = RETRY_AFTER_S,
        silent_after_s: float = 3.0,
    ) -> None:
        self._executable = executable
        self._silent_after_s = silent_after_s
        """A macmon quiet for this long (three intervals at least) is restarted."""
        self._extra_args = tuple(extra_args)
        self._which = which
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._interval_ms = 1000
        self._restart_requested = False
        self._latest: MacmonReading | None = None
        self._heard_since: float | None = None
        """When this macmon last gave a reading, or was first started without one since."""
        self._started_at = 0.0
        self._unread_lines = 0
        """Lines since the last reading that were not readings (another version's, an error)."""
        self._silent_restarts = 0
        self._problem: str | None = None
        self._restarts = 0
        self._next_lookup_at: float | None = None
        self._chip: str | None = None

    @property
    def name(self) -> str:
        return "macmon"

    @property
    def restarts(self) -> int:
        """How many times macmon exited on its own and was started again."""
        with self._lock:
            return self._restarts

    # -- sampler side ------------------------------------------------------------------------

    def sample(self, context: SampleContext) -> SourceReading:
        try:
            return self._sample(context)
        except Exception as exc:  # never let the Mac path take the tick down
            return SourceReading(status=status(self.name, SourceState.ERROR, f"macmon failed: {exc}"))

    def _sample(self, context: SampleContext) -> SourceReading:
        wanted_ms = max(100, round(context.interval_s * 1000))
        if self._thread is None:
            if self._next_lookup_at is not None and context.now < self._next_lookup_at:
                return self._not_installed()
            path = self._which(self._executable)
            if path is None:
                self._next_lookup_at = context.now + self._retry_after_s
                return self._not_installed()
            self._chip = read_cpu_model()
            self._start([path, *self._extra_args], wanted_ms)
        elif wanted_ms != self._interval_ms:
            self._request_restart(wanted_ms)

        with self._lock:
            latest, problem = self._latest, self._problem
            heard_since, started_at, unread = self._heard_since, self._started_at, self._unread_lines
            running = self._proc is not None
        now = time.monotonic()
        # Each restart for silence waits twice as long as the last, up to the exit backoff's cap.
        patience = max(3 * context.interval_s, self._silent_after_s)
        patience = min(patience * 2**self._silent_restarts, max(patience, self._backoff_max_s))
        if running and heard_since is not None and now - max(heard_since, started_at) > patience:
            # Alive but silent (stuck on the GPU driver, say): its last figures would pass for
            # live; one silent from the start showed the Mac as "CPU only", for good.
            quiet_s = now - heard_since
            if unread:
                why = f"macmon printed {unread} line{'s' if unread != 1 else ''} this lollma-tui cannot read"
            else:
                why = f"macmon has not reported for {quiet_s:.0f} s"
            self._silent_restarts += 1
            self._set_problem(f"{why} — restarting it")
            self._request_restart(wanted_ms)
            problem = self._problem
        if problem is not None:
            return SourceReading(status=status(self.name, SourceState.ERROR, problem))
        if latest is None:
            return SourceReading(
                status=status(self.name, SourceState.OK, "waiting for macmon's first sample")
            )
        if latest.all_zero:
            line = "macmon reads all zeros (headless Mac without a display?) — metrics unavailable here"
            return SourceReading(status=status(self.name, SourceState.ERROR, line))
        return SourceReading(
            status=status(self.name, SourceState.OK, "Apple GPU and power via macmon"),
            gpus=(gpu_from_reading(latest, self._chip),),
        )

    def _not_installed(self) -> SourceReading:
        return SourceReading(
            status=status(self.name, SourceState.ABSENT, f"macmon not found — {INSTALL_HINT}"),
            hint=INSTALL_HINT,
        )

    def _start(self, base_command: list[str], interval_ms: int) -> None:
        self._stop.clear()
        self._interval_ms = interval_ms
        self._thread = threading.Thread(
            target=self._run, args=(base_command,), name="lollma-macmon-reader", daemon=True
        )
        self._thread.start()

    def _request_restart(self, interval_ms: int) -> None:
        with self._lock:
            self._interval_ms = interval_ms
            self._restart_requested = True
            proc = self._proc
        if proc is not None:
            _terminate(proc)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            proc = self._proc
        if proc is not None:
            _terminate(proc)
        if self._thread is not None:
            self._thread.join(timeout=3.0)
        self._thread = None
        with self._lock:
            self._latest = None
            self._problem = None
            self._heard_since = None
        self._silent_restarts = 0
        self._next_lookup_at = None

    # -- reader thread -----------------------------------------------------------------------

    def _run(self, base_command: list[str]) -> None:
        backoff = self._backoff_initial_s
        while not self._stop.is_set():
            with self._lock:
                command = [*base_command, "pipe", "-i", str(self._interval_ms)]
                self._restart_requested = False
            started = time.monotonic()
            errors = _error_file()
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    # Bytes that are not UTF-8 become U+FFFD: the line is then junk, not fatal.
                    encoding="utf-8",
                    errors="replace",
                    bufsize=1,
                )
            except OSError as exc:
                errors.close()
                self._set_problem(f"cannot start macmon: {exc} — retrying in {backoff:g} s")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)
                continue
            with self._lock:
                self._proc = proc
                self._started_at = time.monotonic()
                self._unread_lines = 0
                if self._heard_since is None:
                    self._heard_since = self._started_at
            if self._stop.is_set():  # close() ran before it could see this process
                _terminate(proc)
            self._read_lines(proc)
            code = proc.wait()
            said = _last_line(errors)
            with self._lock:
                self._proc = None
                restart_now = self._restart_requested
            if self._stop.is_set():
                break
            if restart_now:
                continue
            if time.monotonic() - started >= self._backoff_max_s:
                backoff = self._backoff_initial_s  # it ran well for a while: start the ladder over
            with self._lock:
                self._restarts += 1
                self._latest = None
                self._problem = f"macmon exited (code {code}{said}) — restarting in {backoff:g} s"
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self._backoff_max_s)

    def _read_lines(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in _bounded_lines(proc.stdout):
                reading = parse_macmon_line(line)
                with self._lock:
                    if reading is None:
                        self._unread_lines += 1
                        continue
                    self._latest = reading
                    self._heard_since = time.monotonic()
                    self._unread_lines = 0
                    self._problem = None
                self._silent_restarts = 0
                if self._stop.is_set():
                    return

    def _set_problem(self, message: str) -> None:
        with self._lock:
            self._problem = message
            self._latest = None


MAX_LINE_CHARS = 1 << 20
"""A macmon line is about 1 KiB; a longer one is skipped rather than held in memory."""


def _bounded_lines(stream: IO[str]) -> Iterator[str]:
    """The stream's lines, leaving out (read in pieces, never whole) any past MAX_LINE_CHARS."""
    skipping = False
    while chunk := stream.readline(MAX_LINE_CHARS):
        ended = chunk.endswith("\n")
        if skipping or (not ended and len(chunk) == MAX_LINE_CHARS):
            skipping = not ended  # a piece of a line past the limit, dropped to its newline
            continue
        yield chunk


def _error_file() -> IO[bytes]:
    """Where macmon's stderr goes: a file read after it exits, so a pipe never fills."""
    try:
        return tempfile.TemporaryFile()
    except OSError:
        return open(os.devnull, "w+b")  # closed by `_last_line`


def _last_line(errors: IO[bytes]) -> str:
    """ ": " and the last line a macmon wrote to stderr (its reason for failing), if any."""
    with errors:
        errors.seek(0, 2)
        errors.seek(max(0, errors.tell() - 4096))
        lines = [line.strip() for line in errors.read().decode(errors="replace").splitlines()]
    said = next((line for line in reversed(lines) if line), "")
    return f": {clean_text(said, keep_lines=False)[:160]}" if said else ""


def _terminate(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        proc.kill()

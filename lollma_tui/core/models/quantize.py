"""Make a quantized GGUF from an F32/F16/BF16 one with llama.cpp's own quantizer.

`plan_quantization` checks everything that can be checked up front and refuses with one clear
line (`QuantizeRefused`): an unknown or unsupported type, an i-quant that needs an importance
matrix, a source that is already quantized (unless re-quantizing is allowed), too little disk.
`quantize` runs `llama_model_quantize` in a worker process (`quantize_worker`), reports
progress (elapsed time, bytes written, tensors done), and can be cancelled.

The output goes next to the source as ``<base>-<TYPE>.gguf`` (``tiny-llama-f16.gguf`` →
``tiny-llama-Q4_K_M.gguf``), which the catalog groups with the source: the metadata is copied.
Written under a hidden name, renamed when complete: a failed or killed run leaves no partial file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lollma_tui.core import paths
from lollma_tui.core.models.gguf_header import (
    SPLIT_NAME,
    GGUFError,
    GGUFHeader,
    merge_split_headers,
    read_gguf_header,
)
from lollma_tui.core.models.quant_types import FILE_TYPE_IDS, normalize_quant
from lollma_tui.core.models.quantize_estimate import estimate_output, fallback_warning
from lollma_tui.core.workers.process import WorkerExited, WorkerProcess

WORKER_MODULE = "lollma_tui.core.models.quantize_worker"
OP_QUANTIZE = "quantize"
"""The request the quantize worker answers (its module keeps llama_cpp out of this one)."""

SOURCE_TYPES = frozenset({"F32", "F16", "BF16"})
"""What a quantization should start from; anything else stacks quantization error."""

IMATRIX_TYPES = frozenset(
    {"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "Q2_K_S"}
)
"""llama.cpp refuses these without an importance matrix (verified: "requires an imatrix")."""


@dataclass(frozen=True, slots=True)
class QuantTarget:
    bits_per_weight: float
    """Average over a typical model's large matrices, mixes included (Q4_K_M puts some in Q6_K)."""
    block_size: int
    """Rows must be a multiple of this; others fall back to a wider type."""
    description: str


TARGETS: dict[str, QuantTarget] = {
    "F32": QuantTarget(32.0, 1, "32-bit float, lossless, twice F16's size"),
    "F16": QuantTarget(16.0, 1, "16-bit float, effectively lossless"),
    "BF16": QuantTarget(16.0, 1, "bfloat16, effectively lossless"),
    "Q8_0": QuantTarget(8.5, 32, "8-bit, nearly lossless"),
    "Q6_K": QuantTarget(6.5625, 256, "6-bit k-quant, very close to Q8_0"),
    "Q5_K_M": QuantTarget(5.69, 256, "5-bit k-quant mix, very good quality"),
    "Q5_K_S": QuantTarget(5.54, 256, "5-bit k-quant"),
    "Q5_1": QuantTarget(6.0, 32, "legacy 5-bit"),
    "Q5_0": QuantTarget(5.5, 32, "legacy 5-bit"),
    "Q4_K_M": QuantTarget(4.89, 256, "4-bit k-quant mix, the usual choice"),
    "Q4_K_S": QuantTarget(4.58, 256, "4-bit k-quant, a little smaller"),
    "Q4_1": QuantTarget(5.0, 32, "legacy 4-bit"),
    "Q4_0": QuantTarget(4.5, 32, "legacy 4-bit, fast on some CPUs and GPUs"),
    "IQ4_NL": QuantTarget(4.5, 32, "4-bit non-linear i-quant"),
    "IQ4_XS": QuantTarget(4.25, 256, "4-bit i-quant, smaller than Q4_K_S"),
    "Q3_K_L": QuantTarget(4.27, 256, "3-bit k-quant mix, large"),
    "Q3_K_M": QuantTarget(3.91, 256, "3-bit k-quant mix, noticeable quality loss"),
    "Q3_K_S": QuantTarget(3.5, 256, "3-bit k-quant, clear quality loss"),
    "IQ3_M": QuantTarget(3.66, 256, "3-bit i-quant mix (better with an imatrix)"),
    "IQ3_S": QuantTarget(3.44, 256, "3-bit i-quant (better with an imatrix)"),
    "Q2_K": QuantTarget(3.35, 256, "2-bit k-quant mix, large quality loss"),
}
"""The types offered, best quality first."""

_HEADROOM = 1.05
_HEADROOM_BYTES = 1 << 20
_FULL_MARGIN = 1 << 20
"""Below this much free space a failed write is taken for a full disk, whatever the estimate."""
_PARTIAL = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.partial$")
_TENSOR_LINE = re.compile(rb"\[\s*(\d+)\s*/\s*(\d+)\s*\]")


class QuantizeRefused(ValueError):
    """Refused before anything ran; the message is one line for the user.
    `requantize_would_allow`: the source is quantized already, which allowing that lifts."""

    def __init__(self, message: str, *, requantize_would_allow: bool = False) -> None:
        super().__init__(message)
        self.requantize_would_allow = requantize_would_allow


class QuantizeFailed(RuntimeError):
    """llama.cpp failed, or its worker died; no output file was left behind."""


class QuantizeCancelled(Exception):
    """Stopped on request; no output file was left behind."""


@dataclass(frozen=True, slots=True)
class QuantizePlan:
    source: Path
    source_quant: str
    target: str
    ftype: int
    output: Path
    estimated_bytes: int
    allow_requantize: bool = False
    warnings: tuple[str, ...] = ()

    def partial_path(self, pid: int) -> Path:
        """Hidden (the catalog skips dot files) and not ``.gguf``, next to the output."""
        return self.output.with_name(f".{self.output.name}.{pid}.partial")


@dataclass(frozen=True, slots=True)
class QuantizeProgress:
    plan: QuantizePlan
    elapsed_s: float
    bytes_written: int
    tensors_done: int | None = None
    tensors_total: int | None = None
    worker_pid: int | None = None

    @property
    def fraction(self) -> float | None:
        """Tensors done when the log says so, else bytes written against the estimate."""
        if self.tensors_done is not None and self.tensors_total:
            return min(1.0, self.tensors_done / self.tensors_total)
        if self.plan.estimated_bytes > 0:
            return min(0.99, self.bytes_written / self.plan.estimated_bytes)
        return None


@dataclass(frozen=True, slots=True)
class QuantizeResult:
    plan: QuantizePlan
    output: Path
    size_bytes: int
    seconds: float


ProgressCallback = Callable[[QuantizeProgress], None]


def quantize_log_path() -> Path:
    return paths.log_dir() / "quantize.log"


def supported_types() -> tuple[str, ...]:
    return tuple(TARGETS)


def base_name(source: Path) -> str:
    """The file name without ``.gguf`` and without trailing quantization words."""
    stem = source.name[: -len(".gguf")] if source.name.lower().endswith(".gguf") else source.stem
    split = SPLIT_NAME.match(source.name)
    if split:
        stem = split["base"]  # one file comes out of all the parts
    # Underscores belong to quant names (Q4_K_M), so only dots, dashes and spaces separate words.
    parts = re.split(r"([\s.\-]+)", stem)
    while parts and (normalize_quant(parts[-1]) is not None or not parts[-1].strip(" .-")):
        parts.pop()
    return "".join(parts) or stem


def output_path(source: Path, target: str, output_dir: Path | None = None, model_name: str = "") -> Path:
    """`model_name` (the header's) names the file when the source's name says nothing (an Ollama
    blob is called after its hash)."""
    base = base_name(source)
    if model_name and not source.name.lower().endswith(".gguf"):
        base = re.sub(r"[^\w.+-]+", "-", model_name).strip("-.") or base
    return (output_dir or source.parent) / f"{base}-{target}.gguf"


def default_output_dir(source: Path) -> Path:
    """Where quantized files of `source` go when no folder is named.

    Next to the source, where the model list groups them with it; but the app's own models
    folder (which the list also scans) when that folder is not one to keep files in: an
    installed package (the demo model: a reinstall loses them), the app's cache, Ollama's blob
    store (a blob has no .gguf suffix, and Ollama deletes files it does not know), or a folder
    this user cannot write to.
    """
    folder = source.parent
    kept_elsewhere = (Path(sys.prefix), Path(sys.base_prefix), paths.cache_dir())
    if (
        not source.name.lower().endswith(".gguf")
        or any(_inside(folder, place) for place in kept_elsewhere)
        or not os.access(folder, os.W_OK | os.X_OK)
    ):
        return paths.data_dir() / "models"
    return folder


def _inside(path: Path, folder: Path) -> bool:
    with contextlib.suppress(OSError):
        return path.resolve().is_relative_to(folder.resolve())
    return False


def estimate_output_bytes(header: GGUFHeader, target: str) -> int:
    """About what llama.cpp will write, with the types it really picks (rows that do not fit a
    type's block included)."""
    return estimate_output(header, target).n_bytes


def space_needed(estimated_bytes: int) -> int:
    """Free disk a quantization asks for: the estimate plus room for its error."""
    return int(estimated_bytes * _HEADROOM) + _HEADROOM_BYTES


def _disk_free(folder: Path) -> int:
    return int(shutil.disk_usage(folder).free)


def plan_quantization(
    source: str | os.PathLike[str],
    target: str,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    allow_requantize: bool = False,
    overwrite: bool = False,
) -> QuantizePlan:
    """Check a quantization of `source` to `target` and say where it will go (QuantizeRefused)."""
    source_path = paths.user_path(source).absolute()  # the quantizer runs in another folder
    name = normalize_quant(target)
    if name is None or (name not in TARGETS and name not in IMATRIX_TYPES and name not in FILE_TYPE_IDS):
        raise QuantizeRefused(f"unknown quantization type {target!r} (choose from {', '.join(TARGETS)})")
    if name in IMATRIX_TYPES:
        raise QuantizeRefused(
            f"{name} needs an importance matrix (imatrix), which lollma-tui does not make; "
            "choose IQ4_XS, Q3_K_M or Q2_K instead"
        )
    if name not in TARGETS:
        raise QuantizeRefused(f"{name} is not offered here (choose from {', '.join(TARGETS)})")
    if not paths.is_file(source_path):
        raise QuantizeRefused(f"source not found: {source_path}")
    try:
        header = read_gguf_header(source_path)
    except GGUFError as error:
        raise QuantizeRefused(str(error)) from None
    except OSError as error:
        raise QuantizeRefused(f"cannot read {source_path}: {error.strerror or error}") from None
    if header.split_count > 1:
        header = _whole_split(source_path, header)
    source_quant = header.quantization
    warnings: list[str] = []
    if source_quant == name:
        raise QuantizeRefused(f"{source_path.name} is already {name}")
    if source_quant not in SOURCE_TYPES:
        if not allow_requantize:
            raise QuantizeRefused(
                f"{source_path.name} is already quantized ({source_quant}); quantize from an F16, BF16 "
                "or F32 file, or allow re-quantizing (quality suffers)",
                requantize_would_allow=True,
            )
        warnings.append(
            f"re-quantizing {source_quant} to {name} stacks both quantization errors: quality will be "
            "worse than quantizing the F16/BF16 original"
        )
    folder = default_output_dir(source_path) if output_dir is None else paths.user_path(output_dir).absolute()
    if output_dir is None and folder != source_path.parent:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise QuantizeRefused(f"cannot create {folder}: {error.strerror or error}") from None
    if not paths.is_dir(folder):
        raise QuantizeRefused(
            f"{'not a folder' if os.path.exists(folder) else 'output folder not found'}: {folder}"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise QuantizeRefused(f"cannot write to {folder}")
    output = output_path(source_path, name, folder, header.name or "")
    existing = _same_name(output)
    if existing is not None and not overwrite:
        raise QuantizeRefused(f"{existing} already exists")
    if output.resolve() == source_path.resolve():
        raise QuantizeRefused("the output would overwrite the source")
    estimated = estimate_output(header, name)
    estimate = estimated.n_bytes
    fell_back = fallback_warning(estimated, name)
    if fell_back is not None:
        warnings.append(fell_back)
    if estimate >= header.file_size:
        # Measured, not judged from the type names: a Q4_K_M of 576-wide rows is mostly Q5_0
        # and Q8_0, bigger than a Q4_1 source.
        ours, theirs = _size(estimate), _size(header.file_size)
        warnings.append(
            f"the {name} file will be about as big as the source ({ours})"
            if ours == theirs
            else f"the {name} file will be bigger than the source (about {ours} against {theirs})"
        )
        if source_quant not in SOURCE_TYPES:
            warnings[-1] += f": {name} cannot restore what {source_quant} lost"
    needed = space_needed(estimate)
    free = _disk_free(folder)
    if free < needed:
        need_text, free_text = _sizes(needed, free)
        raise QuantizeRefused(
            f"not enough disk space in {folder}: {name} needs about {need_text}, {free_text} free"
        )
    return QuantizePlan(
        source=source_path,
        source_quant=source_quant,
        target=name,
        ftype=FILE_TYPE_IDS[name],
        output=output,
        estimated_bytes=estimate,
        allow_requantize=allow_requantize,
        warnings=tuple(warnings),
    )


def _whole_split(first: Path, header: GGUFHeader) -> GGUFHeader:
    """One header over every part of a split source: llama.cpp's quantizer, given the first
    part, reads the others from its name and writes one file."""
    match = SPLIT_NAME.match(first.name)
    if match is None or header.split_index != 0:
        raise QuantizeRefused(f"{first.name} is one part of a split model; quantize from its first part")
    count = header.split_count
    parts = [first.with_name(f"{match['base']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    missing = [part.name for part in parts if not part.is_file()]
    if missing:
        raise QuantizeRefused(f"{first.name}: the split model is missing {', '.join(missing)}")
    try:
        return merge_split_headers([header, *(read_gguf_header(part) for part in parts[1:])])
    except GGUFError as error:
        raise QuantizeRefused(str(error)) from None
    except OSError as error:
        raise QuantizeRefused(f"cannot read a part of {first.name}: {error.strerror or error}") from None


def _size(n_bytes: int, decimals: int = 1) -> str:
    if n_bytes >= 1 << 30:
        return f"{n_bytes / (1 << 30):.{decimals}f} GiB"
    return f"{n_bytes / (1 << 20):.{decimals}f} MiB"


def _sizes(first: int, second: int) -> tuple[str, str]:
    """Both sizes with as many decimals as it takes to tell them apart ("needs 1.5 MiB, 1.5 MiB
    free" read as nonsense), in bytes when they are that close."""
    for decimals in (1, 2, 3):
        texts = _size(first, decimals), _size(second, decimals)
        if texts[0] != texts[1] or first == second:
            return texts
    return f"{first:,} bytes", f"{second:,} bytes"


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete temporary files left by runs whose process no longer exists (a killed app)."""
    import psutil

    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            match = _PARTIAL.match(entry.name)
            if match and not psutil.pid_exists(int(match["pid"])):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed


class _LogFollower:
    """Reads what the worker adds to the log and keeps the latest ``[ i/ n]`` tensor counter."""

    def __init__(self, log_path: Path, offset: int) -> None:
        self.path = log_path
        self.offset = offset
        self.done: int | None = None
        self.total: int | None = None

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                chunk = log.read()
        except OSError:
            return
        if not chunk:
            return
        self.offset += len(chunk)
        matches = _TENSOR_LINE.findall(chunk)
        if matches:
            done, total = matches[-1]
            self.done, self.total = int(done), int(total)


def quantize(
    plan: QuantizePlan,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    threads: int | None = None,
    log_path: Path | None = None,
    poll_s: float = 0.1,
    python: str | None = None,
) -> QuantizeResult:
    """Run the plan (blocking; programs with an event loop use `quantize_async`).

    Setting `cancel` kills the worker within `poll_s` and raises QuantizeCancelled. Whatever
    happens, the only file left is the finished output.
    """
    return asyncio.run(
        quantize_async(
            plan,
            on_progress=on_progress,
            cancel=cancel,
            threads=threads,
            log_path=log_path,
            poll_s=poll_s,
            python=python,
        )
    )


async def quantize_async(
    plan: QuantizePlan,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    threads: int | None = None,
    log_path: Path | None = None,
    poll_s: float = 0.1,
    python: str | None = None,
) -> QuantizeResult:
    """Quantize in a worker process. Cancelling the awaiting task (or setting `cancel`) kills the
    worker and removes the partial file. `on_progress` runs on the event loop."""
    log = log_path or quantize_log_path()
    await asyncio.to_thread(remove_stale_partials, plan.output.parent)
    partial = plan.partial_path(os.getpid())
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    started = time.monotonic()
    worker: WorkerProcess | None = None
    reporter: asyncio.Task[None] | None = None
    try:
        try:
            worker = await WorkerProcess.start(
                WORKER_MODULE, name="quantize worker", log_path=log, python=python
            )
        except WorkerExited as error:
            raise QuantizeFailed(f"could not start {error}") from error
        follower = _LogFollower(log, worker.log_offset)
        running = worker

        async def report() -> None:
            while True:
                if cancel is not None and cancel.is_set():
                    running.kill_now(keep_reader=True)
                    return
                await asyncio.to_thread(follower.poll)
                if on_progress is not None:
                    written = await asyncio.to_thread(_file_size, partial)
                    elapsed = time.monotonic() - started
                    done, total = follower.done, follower.total
                    on_progress(QuantizeProgress(plan, elapsed, written, done, total, running.pid))
                await asyncio.sleep(poll_s)

        reporter = asyncio.create_task(report(), name="quantize-progress")
        await worker.send(
            {
                "op": OP_QUANTIZE,
                "source": str(plan.source),
                "output": str(partial),
                "ftype": plan.ftype,
                "threads": threads if threads is not None else (os.cpu_count() or 0),
                "allow_requantize": plan.allow_requantize,
            }
        )
        try:
            event = await worker.next_event()
        except WorkerExited as exited:
            if cancel is not None and cancel.is_set():
                raise QuantizeCancelled(
                    f"quantizing {plan.source.name} to {plan.target} was cancelled"
                ) from None
            raise QuantizeFailed(f"{exited} (log: {log})") from exited
        await asyncio.to_thread(follower.poll)
        if event.get("rc") != 0:
            detail = await asyncio.to_thread(worker.log_detail)
            full = await asyncio.to_thread(_disk_filled, plan, partial)
            if full is not None:
                # llama.cpp says only "basic_ios::clear: iostream error"; its words go last.
                said = f"llama.cpp: {detail}; " if detail else ""
                raise QuantizeFailed(f"{full} ({said}log: {log})")
            reason = "llama.cpp could not quantize the model" + (f": {detail}" if detail else "")
            raise QuantizeFailed(f"{reason} (log: {log})")
        try:
            await asyncio.to_thread(read_gguf_header, partial)
        except (GGUFError, OSError) as error:
            raise QuantizeFailed(f"the quantized file is not readable: {error}") from None
        await asyncio.to_thread(os.replace, partial, plan.output)
        size = _file_size(plan.output)
        if on_progress is not None:
            elapsed = time.monotonic() - started
            on_progress(QuantizeProgress(plan, elapsed, size, follower.total, follower.total, worker.pid))
        return QuantizeResult(plan, plan.output, size, time.monotonic() - started)
    finally:
        if reporter is not None:
            reporter.cancel()
        if worker is not None:
            # Never left running: cancelled, failed or done, the worker is gone before we return.
            await asyncio.shield(worker.kill())
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def abandon_quantization(plan: QuantizePlan, worker_pid: int | None) -> None:
    """End a run its caller can no longer await (the app is exiting and its event loop will not
    resume the run's clean-up): kill the worker, if it is still ours, and remove the partial file."""
    import psutil

    if worker_pid is not None:
        with contextlib.suppress(psutil.Error):
            worker = psutil.Process(worker_pid)
            if worker.ppid() == os.getpid():  # not a process that took a finished worker's pid
                worker.kill()
    with contextlib.suppress(OSError):
        plan.partial_path(os.getpid()).unlink()


def _same_name(path: Path) -> Path | None:
    """The file in `path`'s folder named as `path` is, whatever the letter case: downloads name
    their quantization in lower case (``-q4_k_m``), and one of each is what the model list shows."""
    if path.exists():
        return path
    wanted = path.name.casefold()
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            if entry.name.casefold() == wanted:
                return entry
    return None


def _disk_filled(plan: QuantizePlan, partial: Path) -> str | None:
    """Why a failed run failed, when it is the output's disk: less free than was still to be
    written. Asked before the partial file goes, so the free space is what llama.cpp met."""
    folder = plan.output.parent
    try:
        free = _disk_free(folder)
    except OSError:
        return None
    to_write = max(plan.estimated_bytes - _file_size(partial), _FULL_MARGIN)
    if free >= to_write:
        return None
    left = _size(free, 2) if free >= 1 << 20 else f"{free:,} bytes"
    return f"the disk holding {folder} filled up while writing ({left} free)"


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def plan_quantizations(
    source: str | os.PathLike[str],
    targets: list[str],
    *,
    output_dir: str | os.PathLike[str] | None = None,
    allow_requantize: bool = False,
) -> list[QuantizePlan]:
    """Plans for several types at once, so every refusal shows before anything runs.

    The disk check counts the outputs together: three types need the room of all three.
    """
    wanted = list(dict.fromkeys(normalize_quant(t) or t for t in targets))
    if not wanted:
        raise QuantizeRefused(f"name at least one type to make (choose from {', '.join(TARGETS)})")
    plans = [
        plan_quantization(source, t, output_dir=output_dir, allow_requantize=allow_requantize) for t in wanted
    ]
    by_folder: dict[Path, int] = {}
    for plan in plans:
        by_folder[plan.output.parent] = by_folder.get(plan.output.parent, 0) + plan.estimated_bytes
    for folder, total in by_folder.items():
        needed = space_needed(total)
        free = _disk_free(folder)
        if free < needed:
            need_text, free_text = _sizes(needed, free)
            raise QuantizeRefused(
                f"not enough disk space in {folder} for {len(plans)} files: about {need_text} "
                f"needed, {free_text} free"
            )
    return plans

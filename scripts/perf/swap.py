"""Hot-swap time against a direct llama-cpp-python load, and the catalog scan of 100 GGUF files.

    uv run python scripts/perf/swap.py [--model PATH] [--runs 5] [--ctx 2048 4096]
                                       [--files 100] [--scan-runs 5] [--tiny-vocab]
                                       [--only swap|catalog] [--quick]

Swap (goal: swap / direct ≤ 1.1). `ModelSession.swap` alternates the same GGUF (the demo model
by default) between two context sizes, so every swap reloads it. A llama.cpp swap does not
reload inside the worker: it stops the worker process (shutdown request, wait for exit), then
loads in a spare worker process, one the backend started after the previous load (Python up,
llama_cpp imported, hello said), which constructs the Llama and runs a warm-up decode (two
tokens, then one) before it reports the model loaded; the next spare starts after that. Before
each run the script waits for the spare to be up, as it is by the time a user has read a reply.
The script checks that every swap got a new worker pid, and how many loaded in the spare. The
swap is timed from the call to the returned result (wall clock, as the app waits for it), with
a memory budget from psutil as the app passes one; no reply is in flight, so the "stop" phase
is empty.

The direct side, in this process, frees its previous model (`Llama.close()`) and loads the same
GGUF with the same settings through the worker's own `Worker.load` (the protocol channel goes
to /dev/null): the same `Llama(...)` arguments (n_ctx, n_batch, n_ubatch, n_threads,
n_threads_batch, n_gpu_layers 0, f16 KV cache, mmap on, verbose logging into a log file, as the
worker's stderr is) and the same warm-up decode. Neither side pays for anything the other does
not, except what a swap adds: the process exit and start, imports, the pipe and the fit check.
Runs alternate which side goes first; both sides always make the same ctx change. The phase
split comes from `SwapResult.timings`, and the worker's own load time from `LoadedModel.load_s`;
"start+ipc" is the load phase minus that (with a spare: the pipe and the hand-over; without
one: a new process, imports, hello and the pipe).

Catalog scan (goal: < 1 s for 100 files). Files are written into a temporary folder with
`write_file` from gguf_headers.py (imported from this script's folder): one file
per vocabulary size (real-size vocabularies, 32k-262k tokens with their merges; 512 tokens with
--tiny-vocab), copied to 20 models x 5 quantizations in nested folders, with general.name and
general.file_type patched in place in each copy, so that grouping has models and variants to
sort out. "First time" is a scan with an empty header cache (the app's first start with these
files), "later start" reads the headers the first scan stored on disk (`HeaderCache(store)`,
as every later start of the app does) and only stats the files, "rescan" is the app scanning
again with its cache in memory. The files were just written, so
the OS page cache is warm either way; a first read from disk would add I/O.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil
from _support import QUICK_HELP, in_process_repack, repack_setting, tiny_model
from gguf import GGUFValueType
from gguf_headers import REAL_VOCABS, write_file

from lollma_tui.core.backends import llamacpp_protocol as proto
from lollma_tui.core.backends.base import Backend
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.backends.llamacpp_worker import Channel, Worker, default_threads
from lollma_tui.core.models.catalog import Catalog, HeaderCache, scan_models
from lollma_tui.core.models.demo import ensure_demo_model
from lollma_tui.core.models.gguf_known_arrays import KNOWN_STRING_ARRAYS
from lollma_tui.core.models.quant_types import FILE_TYPE_IDS
from lollma_tui.core.session import MemoryBudget, ModelSession
from lollma_tui.core.session.results import SwapResult
from lollma_tui.core.settings import BackendKind, LoadSettings

GOAL_RATIO = 1.1
GOAL_SCAN_S = 1.0
QUANTS = ("Q4_0", "Q4_K_M", "Q5_K_M", "Q8_0", "F16")
TINY_VOCAB = [(512, 0)]


# -- swap ------------------------------------------------------------------------------------


@contextlib.contextmanager
def output_to(log_path: Path) -> Iterator[None]:
    """Send fd 1 and fd 2 to `log_path`, as the worker does with llama.cpp's load log."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


@dataclass(frozen=True)
class DirectTimes:
    close_s: float
    load_s: float

    @property
    def total_s(self) -> float:
        return self.close_s + self.load_s


class DirectSide:
    """llama-cpp-python in this process, loaded by the worker's own code (no process, no pipe)."""

    def __init__(self, log_path: Path, sink: IO[bytes], repack: bool) -> None:
        self._log_path = log_path
        self._repack = repack
        self._worker = Worker(Channel(sink))  # imports llama_cpp, untimed
        self._ids = 0

    def swap(self, settings: LoadSettings) -> DirectTimes:
        """Free the loaded model, if any, and load `settings` (with the worker's warm-up)."""
        self._ids += 1
        request = {
            "op": proto.OP_LOAD,
            "id": self._ids,
            "settings": proto.load_settings_to_wire(settings),
            "repack": self._repack,
        }
        with output_to(self._log_path):
            started = time.perf_counter()
            self._free()
            closed = time.perf_counter()
            self._worker.load(request)
            loaded = time.perf_counter()
        if self._worker.llm is None:
            raise SystemExit(f"direct load of {settings.model} failed; see {self._log_path}")
        return DirectTimes(closed - started, loaded - closed)

    def _free(self) -> None:
        if self._worker.llm is not None:
            self._worker.llm.close()
            self._worker.llm = None

    def close(self) -> None:
        with output_to(self._log_path):
            self._free()


def budget_now() -> MemoryBudget:
    """Free RAM as the app's hardware snapshot gives it (CPU only: no VRAM)."""
    return MemoryBudget(int(psutil.virtual_memory().available))


async def spare_pid(session: ModelSession, within_s: float = 10.0) -> int | None:
    """The idle spare worker's pid once it is up (the app has one ready a moment after a load)."""
    backend = session.backend
    if not isinstance(backend, LlamaCppBackend):
        return None
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        spare = backend.spare_process_ids()
        if spare:
            return spare[0]
        await asyncio.sleep(0.05)
    return None


async def timed_swap(session: ModelSession, target: LoadSettings) -> tuple[float, SwapResult]:
    budget = budget_now()
    started = time.perf_counter()
    result = await session.swap(target, budget=budget)
    return time.perf_counter() - started, result


@dataclass(frozen=True)
class SwapRow:
    swap_s: float
    direct_s: float
    estimate_s: float
    stop_s: float
    unload_s: float
    start_ipc_s: float
    worker_load_s: float
    direct_close_s: float
    direct_load_s: float


def print_row(label: str, ctx: str, first: str, row: SwapRow) -> None:
    print(
        f"{label:>6} {ctx:>5} {first:>6} {row.swap_s:>7.3f} {row.direct_s:>8.3f} "
        f"{row.swap_s / row.direct_s:>6.2f} │ {row.estimate_s * 1e3:>8.1f} {row.stop_s * 1e3:>5.1f} "
        f"{row.unload_s * 1e3:>7.1f} {row.start_ipc_s * 1e3:>9.1f} {row.worker_load_s * 1e3:>8.1f} │ "
        f"{row.direct_close_s * 1e3:>6.1f} {row.direct_load_s * 1e3:>7.1f}"
    )


async def bench_swap(model: Path, ctxs: Sequence[int], runs: int, tmp: Path) -> int:
    threads = default_threads()
    repack = in_process_repack(model)
    base = LoadSettings(
        model=str(model),
        n_ctx=ctxs[0],
        n_threads=threads,
        n_batch=512,
        n_gpu_layers=0,
        repack=repack_setting(repack),
    )
    log_path = tmp / "llama-worker.log"

    def make_backend(kind: BackendKind) -> Backend:
        assert kind is BackendKind.LLAMA_CPP
        return LlamaCppBackend(log_path=log_path)

    session = ModelSession(make_backend, base)
    sink = open(os.devnull, "wb")  # noqa: SIM115 - closed below
    direct = DirectSide(tmp / "llama-direct.log", sink, repack)
    try:
        # Untimed first loads: both sides start from the same loaded model, page cache warm.
        first = await session.load(budget=budget_now())
        if not first.ok:
            print(f"first load failed: {first.message}", file=sys.stderr)
            return 1
        direct.swap(base)
        print(
            f"swap: {model.name} · {threads} threads · CPU (n_gpu_layers 0) · "
            f"n_ctx {ctxs[0]} ↔ {ctxs[1]} · mmap on · repacked weights {repack_setting(repack)} "
            f"on both sides · {runs} runs, alternating which side goes first"
        )
        print(
            "  app: ModelSession.swap → worker process stopped, the model loaded in the spare worker "
            "(already started: Python, llama_cpp imported), Llama(...) and warm-up decode"
        )
        print("  direct: Llama.close(), then Worker.load in this process (same Llama(...) and warm-up)")
        print(
            f"\n{'':>6} {'':>5} {'':>6} {'swap':>7} {'direct':>8} {'':>6} │ "
            f"{'swap phases, ms':<44}│ {'direct, ms':<14}"
        )
        print(
            f"{'run':>6} {'n_ctx':>5} {'first':>6} {'s':>7} {'s':>8} {'ratio':>6} │ "
            f"{'estimate':>8} {'stop':>5} {'unload':>7} {'start+ipc':>9} {'load':>8} │ "
            f"{'close':>6} {'load':>7}"
        )
        rows: list[SwapRow] = []
        new_pids = 0
        from_spare = 0
        for run in range(runs):
            target = base.with_changes(n_ctx=ctxs[(run + 1) % 2])
            order = ("swap", "direct") if run % 2 == 0 else ("direct", "swap")
            direct_times: DirectTimes | None = None
            swap_s = 0.0
            result: SwapResult | None = None
            pids_before = session.process_ids()
            # Steady state, as when the user reads the last reply before changing a setting: the
            # spare worker the previous load started is up, and not competing with either side.
            spare = await spare_pid(session)
            for side in order:
                if side == "swap":
                    swap_s, result = await timed_swap(session, target)
                else:
                    direct_times = direct.swap(target)
            assert result is not None and direct_times is not None
            loaded = result.loaded
            if not (result.ok and result.reloaded) or loaded is None:
                print(f"swap {run + 1} did not reload: {result.message}", file=sys.stderr)
                return 1
            if loaded.settings != target:
                # The direct side loads `target`; a plan that changed it would make this unfair.
                print(f"the swap loaded {loaded.settings}, not {target}", file=sys.stderr)
                return 1
            pids_after = session.process_ids()
            if pids_after and not set(pids_after) & set(pids_before):
                new_pids += 1
            if spare is not None and pids_after == (spare,):
                from_spare += 1
            timings = result.timings
            rows.append(
                SwapRow(
                    swap_s=swap_s,
                    direct_s=direct_times.total_s,
                    estimate_s=timings.estimate_s,
                    stop_s=timings.stop_reply_s,
                    unload_s=timings.unload_s,
                    start_ipc_s=timings.load_s - loaded.load_s,
                    worker_load_s=loaded.load_s,
                    direct_close_s=direct_times.close_s,
                    direct_load_s=direct_times.load_s,
                )
            )
            print_row(str(run + 1), str(target.n_ctx), order[0], rows[-1])
        medians = SwapRow(
            *(statistics.median(getattr(r, name) for r in rows) for name in SwapRow.__dataclass_fields__)
        )
        print_row("median", "", "", medians)
        print(
            f"worker process restarted by {new_pids} of {runs} swaps (new pid each time: "
            f"{'yes' if new_pids == runs else 'no'}); {from_spare} of {runs} loaded in the spare worker"
        )
        print(
            f"swap overhead over direct (medians): {(medians.swap_s - medians.direct_s) * 1e3:.0f} ms, "
            f"of which the pipe and spare hand-over {medians.start_ipc_s * 1e3:.0f} ms, "
            f"unload {(medians.unload_s - medians.direct_close_s) * 1e3:.0f} ms more than close(), "
            f"fit check {medians.estimate_s * 1e3:.0f} ms"
        )
        print(
            f"median: swap {medians.swap_s:.3f} s, direct {medians.direct_s:.3f} s, "
            f"ratio {medians.swap_s / medians.direct_s:.2f} (goal ≤ {GOAL_RATIO})"
        )
        return 0
    finally:
        await session.close()
        direct.close()
        sink.close()


# -- catalog scan ----------------------------------------------------------------------------


def patch_kv(path: Path, key: str, value: str | int) -> None:
    """Overwrite a string (same length) or uint32 metadata value of a GGUF file in place."""
    raw_key = key.encode()
    with open(path, "r+b") as file:
        head = file.read(1 << 16)
        at = head.find(struct.pack("<Q", len(raw_key)) + raw_key)
        if at < 0:
            raise ValueError(f"{path.name}: no {key} near the start")
        at += 8 + len(raw_key)
        (kind,) = struct.unpack_from("<I", head, at)
        at += 4
        if isinstance(value, int):
            if kind != GGUFValueType.UINT32:
                raise ValueError(f"{path.name}: {key} is not a uint32")
            data = struct.pack("<I", value)
        else:
            (length,) = struct.unpack_from("<Q", head, at)
            at += 8
            data = value.encode()
            if kind != GGUFValueType.STRING or len(data) != length:
                raise ValueError(f"{path.name}: {key} is not a string of {len(data)} bytes")
        file.seek(at)
        file.write(data)


def make_catalog_files(root: Path, count: int, tiny_vocab: bool) -> tuple[list[Path], set[tuple[str, str]]]:
    """`count` GGUF files: models of len(QUANTS) variants each. Returns them and (name, quant) pairs."""
    templates = root / "templates"
    templates.mkdir()
    vocabs = TINY_VOCAB if tiny_vocab else REAL_VOCABS
    sources = []
    for index, (n_vocab, n_merges) in enumerate(vocabs):
        path = templates / f"vocab-{n_vocab}.gguf"
        # Seeds 100+ give the header name "bench-1NN": 9 bytes, the length of the names below.
        write_file(path, n_layer=8 + 4 * index, n_vocab=n_vocab, n_merges=n_merges, seed=100 + index)
        sources.append(path)
    files: list[Path] = []
    expected: set[tuple[str, str]] = set()
    models = root / "models"
    for number in range(count):
        model, quant = divmod(number, len(QUANTS))
        name = f"model-{model:03d}"
        folder = models / f"vendor-{model % 4}" / (name if model % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}-{QUANTS[quant]}.gguf"
        shutil.copyfile(sources[model % len(sources)], path)
        patch_kv(path, "general.name", name)
        patch_kv(path, "general.file_type", FILE_TYPE_IDS[QUANTS[quant]])
        files.append(path)
        expected.add((name, QUANTS[quant]))
    shutil.rmtree(templates)
    return files, expected


def summary_of(catalog: Catalog) -> list[tuple[str, list[tuple[str, int]]]]:
    return [(g.name, [(v.quant, v.size_bytes) for v in g.variants]) for g in catalog.groups]


def timed_scan(root: Path, cache: HeaderCache) -> tuple[float, Catalog]:
    started = time.perf_counter()
    catalog = scan_models([root], cache=cache)
    return time.perf_counter() - started, catalog


def bench_catalog(count: int, runs: int, tiny_vocab: bool, tmp: Path) -> int:
    root = tmp / "catalog"
    root.mkdir()
    started = time.perf_counter()
    files, expected = make_catalog_files(root, count, tiny_vocab)
    size = sum(p.stat().st_size for p in files)
    vocabs = TINY_VOCAB if tiny_vocab else REAL_VOCABS
    vocab_text = ", ".join(f"{v // 1000}k" if v >= 1000 else str(v) for v, _ in vocabs)
    print(
        f"\ncatalog: {len(files)} files, {size / 1e6:.0f} MB, vocabularies {vocab_text} tokens, "
        f"written in {time.perf_counter() - started:.1f} s"
    )
    cold: list[float] = []
    warm: list[float] = []
    restart: list[float] = []
    catalog = Catalog()
    for run in range(runs):
        store = tmp / f"headers-{run}.json"
        # As in a new process: no header and no string array seen before.
        KNOWN_STRING_ARRAYS.clear()
        cache = HeaderCache(store)
        elapsed, catalog = timed_scan(root / "models", cache)
        cache.save()
        cold.append(elapsed)
        warm.append(timed_scan(root / "models", cache)[0])
        # The next app start: the store read from disk, then the scan (only stats the files).
        started = time.perf_counter()
        _, again = timed_scan(root / "models", HeaderCache(store))
        restart.append(time.perf_counter() - started)
        if summary_of(again) != summary_of(catalog):
            print("  the stored headers gave a different catalog", file=sys.stderr)
            return 1
    found = {(g.name, v.quant) for g in catalog.groups for v in g.variants}
    variants = sum(len(g.variants) for g in catalog.groups)
    print(
        "  first time (nothing stored) "
        + ", ".join(f"{s * 1e3:.0f}" for s in cold)
        + " ms; warm (cache filled) "
        + ", ".join(f"{s * 1e3:.1f}" for s in warm)
        + " ms; next start (headers stored on disk) "
        + ", ".join(f"{s * 1e3:.1f}" for s in restart)
        + " ms"
    )
    print(
        f"  found {len(catalog.groups)} models, {variants} variants, {len(catalog.unreadable)} unreadable "
        f"(expected {len({name for name, _ in expected})} models, "
        f"{len(expected)} variants: {'match' if found == expected else 'MISMATCH'})"
    )
    print(
        f"catalog scan of {len(files)} files: {statistics.median(cold):.3f} s the first time, "
        f"{statistics.median(restart):.3f} s at a later start (stored headers), "
        f"{statistics.median(warm):.3f} s rescan in the app (medians of {runs}; goal < {GOAL_SCAN_S:.0f} s)"
    )
    return 0 if found == expected and not catalog.unreadable else 1


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="GGUF file to swap (default: the demo model)")
    parser.add_argument("--runs", type=int, default=5, help="swaps per side")
    parser.add_argument("--ctx", type=int, nargs=2, default=[2048, 4096], metavar=("A", "B"))
    parser.add_argument("--files", type=int, default=100, help="GGUF files in the catalog scan")
    parser.add_argument("--scan-runs", type=int, default=5, help="cold and warm scans each")
    parser.add_argument("--tiny-vocab", action="store_true", help="512-token vocabularies in the scan")
    parser.add_argument("--only", choices=("swap", "catalog"))
    parser.add_argument(
        "--quick",
        action="store_true",
        help=QUICK_HELP + ": one swap each way on the tiny model, 10 tiny-vocabulary files scanned once",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.ctx, args.files, args.scan_runs, args.tiny_vocab = 1, [512, 1024], 10, 1, True
    if args.ctx[0] == args.ctx[1]:
        parser.error("--ctx needs two different sizes, so that each swap reloads")
    status = 0
    with tempfile.TemporaryDirectory(prefix="bench-swap-") as tmp:
        if args.only != "catalog":
            model = args.model or (tiny_model(Path(tmp)) if args.quick else ensure_demo_model())
            status |= await bench_swap(model, args.ctx, args.runs, Path(tmp))
        if args.only != "swap":
            status |= bench_catalog(args.files, args.scan_runs, args.tiny_vocab, Path(tmp))
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""``lollma-tui bench`` and ``lollma-tui quantize``: the command-line side of bench and quantize.

Rows go to stdout as they are measured (markdown like llama-bench, or csv/json/jsonl); progress,
notes and errors go to stderr, the progress line only when stderr is a terminal. Ctrl+C stops a
benchmark cleanly: the rows measured so far stay printed (and saved), and the exit code is 130.

Exit codes: 0 done, 1 some configurations failed, 2 bad input, 130 stopped with Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from lollma_tui.cli import backend_flag
from lollma_tui.cli_output import GuardedOutput
from lollma_tui.core.paths import user_path
from lollma_tui.core.safe_text import clean_text

if TYPE_CHECKING:
    from lollma_tui.core.bench.formatters import TextSink
    from lollma_tui.core.bench.sweep import SweepSpec
    from lollma_tui.core.models.quantize import QuantizePlan

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _error(command: str, message: str, out: TextSink | None = None) -> None:
    print(f"lollma-tui {command}: error: {clean_text(message)}", file=out or sys.stderr)


def _split(values: Sequence[str] | None) -> list[str]:
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, not {text!r}") from None


def _gpu_layers_list(text: str) -> list[int | str]:
    values: list[int | str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        if part in ("auto", "a"):
            values.append("auto")
        elif part in ("all", "max", "-1"):
            values.append(-1)
        else:
            try:
                values.append(int(part))
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected layer counts, 'all' or 'auto', not {part!r}"
                ) from None
    return values


class ProgressLine:
    """One self-overwriting status line on a terminal; `clear` before printing anything else."""

    def __init__(self, stream: TextSink) -> None:
        self.stream = stream
        self.shown = 0

    def show(self, text: str) -> None:
        width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
        text = text[:width]
        # Padding to the previous length wipes what a longer line left behind.
        self.stream.write("\r" + text.ljust(self.shown))
        self.stream.flush()
        self.shown = len(text)

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.stream.flush()
            self.shown = 0


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# --- bench -----------------------------------------------------------------------------------


def build_bench_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lollma-tui bench",
        description=(
            "Measure prompt processing (pp) and generation (tg) speed as llama-bench does, plus an "
            "end-to-end chat reply, over quantizations, GPU layers and thread counts."
        ),
    )
    parser.add_argument(
        "--model",
        "-m",
        action="append",
        metavar="NAME|PATH|TAG",
        help="a GGUF file or model name (repeatable); default with llama.cpp: the demo model",
    )
    parser.add_argument(
        "--model-dir", action="append", default=[], metavar="DIR", help="also look for models here"
    )
    parser.add_argument("--quants", metavar="all|Q4_K_M,Q8_0", help="quant variants of the model to measure")
    parser.add_argument(
        "--ngl",
        "-ngl",
        type=_gpu_layers_list,
        default=["auto"],
        metavar="N,auto,all",
        help="GPU layers (auto)",
    )
    parser.add_argument("--threads", "-t", type=_int_list, metavar="N,M", help="CPU threads (physical cores)")
    parser.add_argument(
        "--repack",
        type=lambda text: _split([text]),
        default=["auto"],
        metavar="auto,on,off",
        help="llama.cpp's repacked weights (auto: on unless they crashed here before); "
        "--repack on,off shows what repacking buys on this CPU",
    )
    parser.add_argument(
        "-p", "--n-prompt", type=_int_list, default=[512], metavar="N", help="prompt tokens (512)"
    )
    parser.add_argument(
        "-n", "--n-gen", type=_int_list, default=[128], metavar="N", help="generated tokens (128)"
    )
    parser.add_argument("-d", "--n-depth", type=_int_list, default=[0], metavar="N", help="context depth (0)")
    parser.add_argument(
        "-r", "--repetitions", type=int, default=5, metavar="N", help="timed runs per test (5)"
    )
    parser.add_argument("-b", "--batch-size", type=int, metavar="N", help="n_batch (2048; Ollama 512)")
    parser.add_argument("-ub", "--ubatch-size", type=int, default=512, metavar="N", help="n_ubatch (512)")
    parser.add_argument(
        "-fa", "--flash-attn", type=int, choices=(0, 1), default=0, help="flash attention (0)"
    )
    parser.add_argument(
        "--chat", action=argparse.BooleanOptionalAction, default=True, help="also time a chat reply (on)"
    )
    parser.add_argument("--question", metavar="TEXT", help="the chat test's question")
    parser.add_argument("--chat-tokens", type=int, metavar="N", help="chat reply length (the first -n)")
    parser.add_argument("-o", "--output", choices=("md", "csv", "json", "jsonl"), default="md")
    parser.add_argument(
        "--backend", type=backend_flag, metavar="{llama.cpp,ollama,openai}", default="llama.cpp"
    )
    parser.add_argument(
        "--base-url", metavar="URL", help="OpenAI-compatible server (OPENAI_BASE_URL, else 127.0.0.1:8080/v1)"
    )
    parser.add_argument("--api-key-env", metavar="NAME", help="variable holding its API key (OPENAI_API_KEY)")
    parser.add_argument(
        "--ollama-host", metavar="HOST", help="Ollama server (OLLAMA_HOST, else 127.0.0.1:11434)"
    )
    parser.add_argument(
        "--compare", action="store_true", help="compare with the last saved run on this machine"
    )
    parser.add_argument("--no-save", action="store_true", help="do not add the results to the saved ones")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run")
    parser.add_argument(
        "--no-fit-check", action="store_true", help="run configurations even if they seem not to fit"
    )
    return parser


def bench_spec(args: argparse.Namespace) -> SweepSpec:
    """The sweep the arguments ask for (SweepInputError when they make no sense)."""
    from lollma_tui.core.bench.sweep import DEFAULT_QUESTION, SweepInputError, SweepSpec
    from lollma_tui.core.hosts import server_address
    from lollma_tui.core.settings import BackendKind

    backend = BackendKind(args.backend)
    flag = {BackendKind.OLLAMA: args.ollama_host, BackendKind.OPENAI: args.base_url}.get(backend)
    try:
        # The server measured, from its flag or its environment variable, can be one.
        server_address(backend, flag, strict=True)
    except ValueError as error:
        raise SweepInputError(str(error)) from None
    models = _split(args.model)
    demo = not models and backend is BackendKind.LLAMA_CPP
    if demo:
        models = [_demo_model()]
    if not models:
        raise SweepInputError(f"give a model with --model ({args.backend} has no default model)")
    quants_text = (args.quants or "").strip()
    quants: tuple[str, ...] | Literal["all"] | None
    if not quants_text:
        quants = None
    elif quants_text.lower() == "all":
        quants = "all"
    else:
        quants = tuple(_split([quants_text]))
    spec = SweepSpec(
        models=tuple(models),
        quants=quants,
        gpu_layers=tuple(args.ngl),
        threads=tuple(args.threads) if args.threads else None,
        n_prompt=tuple(args.n_prompt),
        n_gen=tuple(args.n_gen),
        n_depth=tuple(args.n_depth),
        repetitions=args.repetitions,
        n_batch=args.batch_size,
        n_ubatch=args.ubatch_size,
        flash_attn=bool(args.flash_attn),
        repack=tuple(str(r).lower() for r in args.repack),
        chat=args.chat,
        question=args.question if args.question is not None else DEFAULT_QUESTION,
        chat_tokens=args.chat_tokens,
        backend=BackendKind(args.backend),
        ollama_host=args.ollama_host,
        openai_base_url=args.base_url,
        openai_api_key_env=args.api_key_env,
        # Absolute: the worker runs in the log folder, where a relative folder named nothing.
        model_dirs=tuple(user_path(d).absolute() for d in args.model_dir),
        warmup=not args.no_warmup,
        check_fit=not args.no_fit_check,
    )
    spec.validate()
    if demo:  # after the checks: an error is the one line said
        from lollma_tui.core.models.demo import DEFAULT_DEMO

        print(f"lollma-tui bench: no --model given: measuring {DEFAULT_DEMO.display_name}", file=sys.stderr)
    return spec


def _demo_model() -> str:
    """What `lollma-tui` itself starts on when no model is named: the demo model."""
    from lollma_tui.core.bench.sweep import SweepInputError
    from lollma_tui.core.models.demo import DemoModelError, ensure_demo_model

    try:
        return str(ensure_demo_model())
    except DemoModelError as error:
        raise SweepInputError(str(error)) from None


async def _run_bench(args: argparse.Namespace) -> int:
    from lollma_tui.core.backends.base import BackendError
    from lollma_tui.core.bench import (
        BenchProgress,
        BenchSession,
        ResultStore,
        RowWriter,
        SweepInputError,
        compare_with_saved,
        format_comparison,
        layout_for_sweep,
        plan_sweep,
    )
    from lollma_tui.core.bench.formatters import repack_column
    from lollma_tui.core.formatting import counted
    from lollma_tui.core.settings import BackendKind

    try:
        spec = bench_spec(args)
        plan = await plan_sweep(spec)
    except SweepInputError as error:
        _error("bench", str(error))
        return EXIT_USAGE
    except BackendError as error:
        _error("bench", str(error))
        return EXIT_FAILED

    fmt = args.output
    columns = layout_for_sweep(
        spec.batch,
        spec.n_ubatch,
        spec.flash_attn,
        spec.chat,
        spec.backend == BackendKind.LLAMA_CPP,
        repack=repack_column(spec.repack),
    )
    # A reader that leaves (`| head`) stops the sweep; a terminal that hangs up stops it through
    # SIGHUP. Either way the rows measured are still saved, without a traceback.
    out = GuardedOutput(sys.stdout, on_lost=lambda _: session.cancel())
    err = GuardedOutput(sys.stderr)
    writer = RowWriter(fmt, out, columns)
    line = ProgressLine(err) if sys.stderr.isatty() else None

    def on_progress(progress: BenchProgress) -> None:
        if progress.row is not None or progress.message:
            if line is not None:
                line.clear()
            if progress.row is not None:
                writer.row(progress.row)
            if progress.message:
                print(f"lollma-tui bench: {progress.message}", file=err, flush=True)
        if line is not None:
            eta = f" · ETA {_duration(progress.eta_s)}" if progress.eta_s is not None else ""
            percent = round(progress.fraction * 100)
            line.show(f"[{progress.done}/{progress.total} {percent}%]{eta} · {progress.label}")

    session = BenchSession(plan, on_progress=on_progress)
    loop = asyncio.get_running_loop()
    # A kill or a closed terminal (an ssh session that drops) stops the sweep as Ctrl+C does:
    # the rows measured are printed and saved.
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        for stop in stops:
            loop.add_signal_handler(stop, session.cancel)
    try:
        run = await session.run()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for stop in stops:
                loop.remove_signal_handler(stop)
        if line is not None:
            line.clear()
    # Saved before anything more is written: what is measured is kept whatever the output does.
    comparisons = None
    unsaved = False
    if run.records and (args.compare or not args.no_save):
        store = ResultStore()
        if args.compare:
            try:
                comparisons = compare_with_saved(run.records, store.load(fingerprint=run.fingerprint))
            except OSError as error:
                print(
                    f"lollma-tui bench: error: could not read the saved results in {store.path}: {error}",
                    file=err,
                )
        if not args.no_save:
            try:
                store.save(run.records)
            except OSError as error:
                print(
                    f"lollma-tui bench: error: could not save the results to {store.path}: {error}", file=err
                )
                unsaved = True
    writer.finish(run.build)

    # Progress notes were said on stderr already; these explain the rows themselves.
    notes = list(dict.fromkeys([*run.caveats, *(n for r in run.records for n in r.notes)]))
    extras = out if fmt == "md" else err
    if notes:
        if fmt == "md":
            print("", file=extras)
        for note in notes:
            print(f"note: {note}", file=extras)
    if comparisons is not None:
        print("\nCompared with the last saved run on this machine:\n", file=extras)
        print(format_comparison(comparisons), end="", file=extras)
    out.flush()

    if run.cancelled:
        measured = counted(len(run.records), "row")
        why = "the output was closed" if out.lost is not None else "stopped"
        print(f"lollma-tui bench: {why}; {measured} measured", file=err, flush=True)
        return EXIT_INTERRUPTED
    if run.failures or unsaved:
        return EXIT_FAILED  # an error said is an error exited with, a failed save too
    return EXIT_OK


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace | int:
    """The arguments, or the exit code argparse chose (2 after its usage message, 0 for --help)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE


def bench_main(argv: Sequence[str] | None = None) -> int:
    args = _parse(build_bench_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        return asyncio.run(_run_bench(args))
    except KeyboardInterrupt:
        # Ctrl+C before the benchmark started (while looking for models): nothing to show.
        print("lollma-tui bench: stopped", file=sys.stderr)
        return EXIT_INTERRUPTED


# --- quantize --------------------------------------------------------------------------------


def build_quantize_parser() -> argparse.ArgumentParser:
    from lollma_tui.core.models.quantize import TARGETS

    types = "\n".join(f"  {name:<7} {target.description}" for name, target in TARGETS.items())
    parser = argparse.ArgumentParser(
        prog="lollma-tui quantize",
        description="Make quantized GGUF files from an F16/BF16/F32 one, next to it.",
        epilog=f"types:\n{types}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", metavar="SRC", help="the GGUF to quantize (F16, BF16 or F32)")
    parser.add_argument(
        "--type",
        "-q",
        dest="types",
        action="append",
        required=True,
        metavar="TYPE[,TYPE…]",
        help="target types, e.g. Q4_K_M,Q8_0",
    )
    parser.add_argument("--allow-requantize", action="store_true", help="accept an already quantized source")
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        help="where to write (default: next to SRC; lollma-tui's own models folder where SRC is in "
        "an installed package, a cache, Ollama's blobs or a folder you cannot write to)",
    )
    parser.add_argument("--threads", type=int, metavar="N", help="threads (default: all cores)")
    return parser


def quantize_main(argv: Sequence[str] | None = None) -> int:
    from lollma_tui.core.models.quantize import (
        QuantizeRefused,
        plan_quantizations,
    )

    args = _parse(build_quantize_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        plans = plan_quantizations(
            args.source,
            _split(args.types),
            output_dir=args.output_dir,
            allow_requantize=args.allow_requantize,
        )
    except QuantizeRefused as error:
        _error("quantize", f"{error}: --allow-requantize" if error.requantize_would_allow else str(error))
        return EXIT_USAGE
    # A kill or a closed terminal stops the job as Ctrl+C does, so its partial file goes too.
    previous = {stop: signal.signal(stop, _interrupt) for stop in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return _quantize_all(plans, args.threads)
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _quantize_all(plans: Sequence[QuantizePlan], threads: int | None) -> int:
    from lollma_tui.core.models.quantize import QuantizeCancelled, QuantizeFailed, QuantizeProgress, quantize

    line = ProgressLine(sys.stderr) if sys.stderr.isatty() else None
    status = EXIT_OK
    for plan in plans:
        for warning in plan.warnings:
            print(f"lollma-tui quantize: warning: {clean_text(warning)}", file=sys.stderr)

        def on_progress(progress: QuantizeProgress) -> None:
            if line is None:
                return
            fraction = progress.fraction
            share = f" {fraction * 100:3.0f}%" if fraction is not None else ""
            tensors = (
                f" · tensor {progress.tensors_done}/{progress.tensors_total}"
                if progress.tensors_total
                else ""
            )
            written = progress.bytes_written / (1 << 20)
            line.show(
                f"{progress.plan.output.name}{share} · {_duration(progress.elapsed_s)} · "
                f"{written:.1f} MiB written{tensors}"
            )

        try:
            result = quantize(plan, on_progress=on_progress, threads=threads)
        except KeyboardInterrupt:
            if line is not None:
                line.clear()
            print(f"lollma-tui quantize: stopped; {plan.output.name} was not written", file=sys.stderr)
            return EXIT_INTERRUPTED
        except QuantizeCancelled as error:
            if line is not None:
                line.clear()
            _error("quantize", str(error))
            return EXIT_INTERRUPTED
        except QuantizeFailed as error:
            if line is not None:
                line.clear()
            _error("quantize", str(error))
            status = EXIT_FAILED
            continue
        if line is not None:
            line.clear()
        print(f"{result.output}\t{result.size_bytes / (1 << 20):.2f} MiB\t{result.seconds:.1f} s", flush=True)
    return status


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {"bench": bench_main, "quantize": quantize_main}
    if not args or args[0] not in commands:
        print("usage: python -m lollma_tui.cli_bench {bench,quantize} ...", file=sys.stderr)
        return EXIT_USAGE
    return commands[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())

"""The `lollma-tui` command. Imports stay light until the app actually starts."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from lollma_tui import __version__

if TYPE_CHECKING:
    from lollma_tui.core.config_file import ConfigFile
    from lollma_tui.core.settings import BackendKind, StartupOptions

EXIT_USAGE = 2

SUBCOMMANDS = {
    "monitor": ("lollma_tui.cli_monitor", "monitor_main", "the hardware panel full screen, no model"),
    "bench": ("lollma_tui.cli_bench", "bench_main", "llama-bench-style speed tables"),
    "quantize": ("lollma_tui.cli_bench", "quantize_main", "make quantized GGUF variants"),
    "history": ("lollma_tui.cli_history", "history_main", "list, show, export, import, search chats"),
}


class CliError(Exception):
    """A bad argument or input file: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lollma-tui",
        description="Chat with local LLMs, watch your hardware, and hot-swap quantization and GPU offload.",
        epilog="subcommands: "
        + "; ".join(f"lollma-tui {name} — {help_text}" for name, (_, _, help_text) in SUBCOMMANDS.items())
        + " (each has --help)",
    )
    parser.add_argument("--version", action="version", version=f"lollma-tui {__version__}")
    parser.add_argument(
        "--backend",
        type=backend_flag,
        metavar="{llama.cpp,ollama,openai}",
        help="llama.cpp in a worker process (GGUF files), an Ollama server, or any OpenAI-compatible server "
        "(llama-server, vLLM, LM Studio…); default llama.cpp",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="OpenAI-compatible server (default: $OPENAI_BASE_URL or http://127.0.0.1:8080/v1)",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="environment variable holding that server's API key (default OPENAI_API_KEY)",
    )
    parser.add_argument(
        "--hw-host",
        metavar="[USER@]HOST[:PORT]",
        help="show that machine's hardware, read over your ssh (key login, no password prompt)",
    )
    parser.add_argument(
        "--hw-command",
        metavar="CMD",
        help="command run on --hw-host (default: lollma-tui monitor --jsonl --interval S)",
    )
    parser.add_argument(
        "--ollama-host",
        metavar="HOST[:PORT]",
        help="Ollama server (default: $OLLAMA_HOST or 127.0.0.1:11434)",
    )
    parser.add_argument(
        "--model",
        "-m",
        metavar="PATH|NAME",
        help="a GGUF file, or part of a model's name, as /model takes it (default: the demo "
        "model); with --backend ollama, a model tag such as llama3.2:1b",
    )
    parser.add_argument(
        "--demo",
        choices=("smollm2", "gemma"),
        help="which bundled demo model to chat with when no --model is given (default smollm2: "
        "SmolLM2 135M Instruct; gemma: the Gemma 3 270M base model)",
    )
    parser.add_argument("--system", metavar="TEXT", default="", help="system prompt")
    _add_setting_flags(parser)
    parser.add_argument(
        "--theme", metavar="NAME", help="colour theme (lollma-dark, lollma-light, lollma-amber, …)"
    )
    which_chat = parser.add_mutually_exclusive_group()
    which_chat.add_argument(
        "--new", action="store_true", help="start a new conversation instead of resuming the last"
    )
    which_chat.add_argument(
        "--conversation", metavar="ID", help="resume this conversation (see `lollma-tui history list`)"
    )
    parser.add_argument(
        "--hw-interval", type=float, default=1.0, metavar="S", help="hardware sampling interval, 0.25–5 s"
    )
    return parser


def backend_flag(text: str) -> str:
    """The backend's name as /set and config.toml take it (llamacpp, oai… too)."""
    from lollma_tui.core.settings import SettingsError
    from lollma_tui.core.settings_table import setting

    try:
        return str(setting("backend").parse(text))
    except SettingsError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per row of the settings table that has flags; values are read by the table after
    parsing, so a bad one is reported in one line like any other input error."""
    from lollma_tui.core.settings_table import SETTINGS

    group = parser.add_argument_group("settings (also in config.toml; see the README)")
    for setting in SETTINGS:
        if setting.flags:
            group.add_argument(*setting.flags, dest=setting.name, metavar=setting.metavar, help=setting.help)


def values_may_start_with_a_dash(arguments: list[str]) -> list[str]:
    """`--keep-alive -1m` as `--keep-alive=-1m`: argparse takes a value that starts with "-"
    for a flag unless it is a plain negative number, but Ollama's "keep loaded for good" is
    written `-1m`, and a stop string or a system prompt may start with a dash too."""
    from lollma_tui.core.settings_table import SETTINGS

    taking_text = {"--system", *(flag for setting in SETTINGS for flag in setting.flags)}
    joined: list[str] = []
    for argument in arguments:
        # "--…" and the short flags stay flags: a value forgotten before one is still reported.
        value = argument.startswith("-") and not argument.startswith("--") and argument not in ("-h", "-m")
        if joined and joined[-1] in taking_text and value:
            joined[-1] = f"{joined[-1]}={argument}"
        else:
            joined.append(argument)
    return joined


def models_folders() -> list[Path]:
    """Where a model named by part of its name is looked for: as in the app and `bench -m`."""
    from lollma_tui.core.models.catalog import default_model_dirs

    return list(default_model_dirs())


def resolve_model(spec: str) -> Path:
    """The GGUF `spec` names: a file (a split model's first part, whichever part is named), a
    folder holding one model, or part of a model's name as `/model` takes it in the app (the
    models folders and the demo models; one model, of several quantizations the smallest)."""
    return choose_model_file(spec)[0]


def choose_model_file(spec: str) -> tuple[Path, str]:
    """`resolve_model`'s file, and what the app says about the choice where there was one
    ("took Q4_K_M (also: Q8_0)"), as `/model` says it: "" when `spec` named one file."""
    from lollma_tui.core.paths import is_dir, is_file, user_path

    path = user_path(spec)
    if is_dir(path):
        return _only_model_in(path), ""
    if is_file(path):
        return _one_model([path], path), ""
    if "/" in spec or os.sep in spec:
        return path, ""  # the header check says it is not there
    return _model_named(spec)


def names_a_gguf(spec: str) -> bool:
    """A file name or a file, not a server's model tag (which may hold a "/": hf.co/…)."""
    from lollma_tui.core.paths import is_file, user_path

    return spec.lower().endswith(".gguf") or is_file(user_path(spec))


def _one_model(files: list[Path], where: Path) -> Path:
    """The one model `files` hold (a split model's parts count as one), by its first file."""
    from lollma_tui.core.models.catalog import build_catalog
    from lollma_tui.core.models.gguf_header import split_parts

    parts = [part for file in files for part in split_parts(file)]
    catalog = build_catalog(dict.fromkeys(parts))
    variants = [variant for group in catalog.groups for variant in group.variants]
    if len(variants) == 1:
        return Path(variants[0].ref)
    if variants:
        raise CliError(f"{where} holds {len(variants)} models; pick one with --model {variants[0].ref}")
    if catalog.unreadable:
        bad = catalog.unreadable[0]
        raise CliError(f"{bad.path}: {bad.reason}")
    if catalog.projectors:
        raise CliError(f"{catalog.projectors[0]}: a vision projector (mmproj), not a chat model")
    raise CliError(f"no .gguf files in {where}")


def _only_model_in(folder: Path) -> Path:
    # scandir, not glob: glob takes a folder it may not read for an empty one.
    try:
        with os.scandir(folder) as entries:
            files = sorted(Path(e.path) for e in entries if e.name.lower().endswith(".gguf"))
    except OSError as error:
        raise CliError(f"cannot read {folder}: {error.strerror or error}") from None
    return _one_model(files, folder)


def _model_named(spec: str) -> tuple[Path, str]:
    from lollma_tui.core import paths
    from lollma_tui.core.models.catalog import HeaderCache, scan_models
    from lollma_tui.core.models.demo import DEMOS, demo_model_path, demo_model_ready
    from lollma_tui.core.session.models import (
        ModelChoiceError,
        NoModelMatchError,
        SkippedModelError,
        resolve_model as choose_model,
    )

    demos = [demo_model_path(demo) for demo in DEMOS.values() if demo_model_ready(demo)]
    headers = HeaderCache(paths.header_cache_path())
    catalog = scan_models(models_folders(), demos, cache=headers)
    headers.save()
    try:
        choice = choose_model(spec, catalog)
        return Path(choice.ref), choice.note
    except SkippedModelError as error:
        raise CliError(str(error)) from None
    except NoModelMatchError:
        folders = ", ".join(str(f) for f in models_folders())
        # "llama3.2:1b" reads as an Ollama tag: the backend is the likelier mistake than the name.
        tag = ":" in spec and "/" not in spec and not spec.lower().endswith(".gguf")
        hint = "; an Ollama model? add --backend ollama" if tag else ""
        raise CliError(
            f"model not found: {spec} (not a file, and no GGUF named like it in {folders}{hint})"
        ) from None
    except ModelChoiceError as error:
        raise CliError(str(error)) from None


def check_model_file(path: Path) -> None:
    # The full header walk (tens of ms on a big vocabulary) also catches truncated files.
    from lollma_tui.core.models.gguf_header import GGUFError, read_gguf_header

    try:
        read_gguf_header(path)
    except GGUFError as error:
        raise CliError(str(error)) from None


def startup_options(args: argparse.Namespace, config: ConfigFile | None = None) -> StartupOptions:
    """What the app starts with: the settings' defaults, then the config file, then the flags."""
    from lollma_tui.core.models.demo import (
        DEFAULT_DEMO,
        DEMOS,
        INSTALL_HINT,
        demo_for,
        demo_installed,
        demo_model_path,
    )
    from lollma_tui.core.paths import user_path
    from lollma_tui.core.settings import (
        AUTO,
        BackendKind,
        LoadSettings,
        SamplingSettings,
        SettingsError,
        StartupOptions,
    )
    from lollma_tui.core.settings_table import LOAD_NAMES, SETTINGS

    written = dict(config.settings) if config is not None else {}
    chosen = dict(written)
    asked = BackendKind(args.backend) if args.backend else None
    if asked is None and (args.demo or (args.model and names_a_gguf(args.model))):
        # A GGUF or the demo is for llama.cpp, whichever server config.toml keeps (/keep on Ollama).
        asked = BackendKind.LLAMA_CPP
    if args.demo or (asked and asked != written.get("backend", BackendKind.LLAMA_CPP)):
        # The file's model is for the file's backend (/keep writes the two together), and
        # --demo asks for the demo: neither should send a start looking for that model.
        chosen.pop("model", None)
    try:
        for setting in SETTINGS:
            text = getattr(args, setting.name, None)
            if text is not None:
                chosen[setting.name] = setting.parse(text)
    except SettingsError as error:
        raise CliError(str(error)) from None
    backend = asked or chosen.get("backend", BackendKind.LLAMA_CPP)
    model_spec = args.model if args.model is not None else chosen.get("model")
    demo_model = DEMOS[args.demo] if args.demo else DEFAULT_DEMO
    kept_demo = (
        demo_for(str(user_path(model_spec))) if backend == BackendKind.LLAMA_CPP and model_spec else None
    )
    if kept_demo is not None:
        # /keep on the Gemma demo wrote its file, assembled in the cache: a cleared cache made
        # the start fail. It is that demo, put together again where it is missing.
        model_spec, demo_model = None, kept_demo
    demo = backend == BackendKind.LLAMA_CPP and not model_spec
    if args.demo and not demo:
        raise CliError("--demo picks the model when no --model is given (llama.cpp backend only)")
    model_note = ""
    if backend in (BackendKind.OLLAMA, BackendKind.OPENAI):
        model = (model_spec or "").strip()
    elif demo:
        if not demo_installed(demo_model):
            raise CliError(INSTALL_HINT)
        model = str(demo_model_path(demo_model))
    else:
        try:
            model_path, model_note = choose_model_file(str(model_spec))
            check_model_file(model_path)
        except CliError as error:
            if args.model is None and config is not None:
                # The file named it: say so, or the user looks for a --model they never typed.
                raise CliError(f"{error} (the model named in {config.path}; --model picks another)") from None
            raise
        model = str(model_path.resolve())
    load_changes = {name: value for name, value in chosen.items() if name in LOAD_NAMES}
    if backend is BackendKind.OLLAMA:
        # Unless asked otherwise, the server places the layers, as `ollama run` does; the
        # llama.cpp default of 0 would keep a GPU box's Ollama on the CPU.
        load_changes.setdefault("n_gpu_layers", AUTO)
    sampling_changes = {name: value for name, value in chosen.items() if name not in LOAD_NAMES}
    try:
        load = LoadSettings(**{**load_changes, "backend": backend, "model": model})
        sampling = (demo_model.sampling if demo else SamplingSettings()).with_changes(**sampling_changes)
    except SettingsError as error:
        raise CliError(str(error)) from None
    remote = remote_options(args)
    check_server_address(backend, args)
    if not 0.25 <= args.hw_interval <= 5.0:
        raise CliError(f"--hw-interval must be between 0.25 and 5 seconds, not {args.hw_interval}")
    return StartupOptions(
        load=load,
        sampling=sampling,
        system_prompt=args.system,
        theme=args.theme or (config.theme if config is not None else None) or "lollma-dark",
        theme_from=str(config.path) if config is not None and config.theme and not args.theme else None,
        demo=demo,
        ollama_host=args.ollama_host,
        openai_base_url=remote.base_url,
        openai_api_key_env=args.api_key_env,
        hw_host=remote.hw_host,
        hw_command=args.hw_command,
        hardware_interval_s=args.hw_interval,
        new_conversation=args.new,
        conversation_id=args.conversation,
        config_problems=config.problems if config is not None else (),
        model_note=model_note,
    )


class RemoteOptions(NamedTuple):
    base_url: str | None
    hw_host: str | None


def remote_options(args: argparse.Namespace) -> RemoteOptions:
    """--base-url, --hw-host and --hw-command, checked."""
    url = hw_host = None
    if args.base_url:
        from lollma_tui.core.backends.openai_host import BaseUrlError, base_url

        try:
            url = base_url(args.base_url)
        except BaseUrlError as error:
            raise CliError(str(error)) from None
    if args.hw_host:
        from lollma_tui.core.hardware.ssh_target import SshTarget, SshTargetError

        try:
            hw_host = str(SshTarget.parse(args.hw_host))
        except SshTargetError as error:
            raise CliError(str(error)) from None
    if args.hw_command and not hw_host:
        raise CliError("--hw-command needs --hw-host (the machine to run it on)")
    return RemoteOptions(url, hw_host)


def check_server_address(backend: BackendKind, args: argparse.Namespace) -> None:
    """The server the app starts on (from its flag or its environment variable), and any server
    flag given, can be one."""
    from lollma_tui.core.hosts import server_address
    from lollma_tui.core.settings import BackendKind

    flags = {BackendKind.OLLAMA: args.ollama_host, BackendKind.OPENAI: args.base_url}
    try:
        for kind, flag in flags.items():
            # A server given for later (/backend) is checked now too, not when it is switched to.
            if kind is backend or flag:
                server_address(kind, flag, strict=True)
    except ValueError as error:
        raise CliError(str(error)) from None


def run_subcommand(name: str, argv: list[str]) -> int:
    import importlib

    module_name, function, _ = SUBCOMMANDS[name]
    entry = getattr(importlib.import_module(module_name), function)
    return int(entry(argv))


def terminal_problem() -> str | None:
    """Why the full-screen app cannot run here, or None. `ssh host lollma-tui` without -t gives
    it no terminal: it drew anyway, Ctrl+Q and Enter never reached it, and Ctrl+C left the
    terminal in the app's screen and the app running on the server."""
    if not sys.stdin.isatty():
        return "needs a terminal to read keys from (over ssh: ssh -t HOST lollma-tui)"
    screen = sys.__stderr__
    if screen is None or not screen.isatty():
        return "draws on standard error, which is not a terminal here (over ssh: ssh -t HOST lollma-tui)"
    if os.environ.get("TERM", "") in ("dumb", "unknown"):
        return f"TERM={os.environ['TERM']} cannot show a full-screen app: run it in a terminal emulator"
    return None


def _reconfigure(stream: object, **how: str) -> None:
    if hasattr(stream, "reconfigure"):
        with contextlib.suppress(OSError, ValueError):  # one that cannot change keeps its own
            stream.reconfigure(**how)


def printable_anywhere() -> None:
    """Help, history lines and errors in a locale that lacks a character ("…" in latin-1) show
    a "?" for it: they ended in a UnicodeEncodeError traceback."""
    for stream in (sys.stdout, sys.stderr):
        _reconfigure(stream, errors="replace")


def screen_in_utf8() -> None:
    """The full-screen app draws in UTF-8 whatever the locale says: in a latin-1 one, each box
    and symbol character came out as the six characters of `\u2500`, and the layout broke."""
    _reconfigure(sys.__stderr__, encoding="utf-8", errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    printable_anywhere()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in SUBCOMMANDS:
        return run_subcommand(arguments[0], arguments[1:])
    args = build_parser().parse_args(values_may_start_with_a_dash(arguments))
    from lollma_tui.core.config_file import read_config

    try:
        config = read_config()
        options = startup_options(args, config)
    except CliError as error:
        from lollma_tui.core.safe_text import clean_text

        # It may name models and files, whose names can hold escape sequences.
        print(f"lollma-tui: error: {clean_text(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    problem = terminal_problem()
    if problem is not None:
        print(f"lollma-tui: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    # The cyclic collector is paused until the first frame (`LollmaApp.on_ready` resumes it):
    # importing Textual and the app makes tens of thousands of objects and almost no garbage,
    # and its full collections on the way cost about a tenth of the time to the first frame.
    gc.disable()
    try:
        from lollma_tui.ui.app import LollmaApp

        screen_in_utf8()
        app = LollmaApp(options, hosts=config.hosts)
        app.run()
    finally:
        gc.enable()
    if app.ended_by is not None:
        return 128 + app.ended_by  # as a shell reports a process a signal ended
    return app.return_code or 0  # 1 when Textual ended the app on an error it showed


if __name__ == "__main__":
    sys.exit(main())

"""The installed `lollma-tui` command: bad input ends with one clear line and exit code 2."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lollma_tui import __version__


def lollma_tui() -> str:
    command = shutil.which("lollma-tui", path=str(Path(sys.executable).parent))
    assert command is not None, "the lollma-tui console script is not installed in this environment"
    return command


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [lollma_tui(), *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lollma-tui: error:")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"lollma-tui {__version__}"


def test_missing_model_file(tmp_path: Path) -> None:
    assert_one_line_error(run("--model", str(tmp_path / "nope.gguf")), "nope.gguf", "not found")


def test_not_a_gguf_file(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("these are my notes, not a model\n" * 10)
    assert_one_line_error(run("--model", str(bogus)), "not a GGUF file")


@pytest.mark.parametrize("cut", [20, 5_000, 900_000])
def test_truncated_gguf(tmp_path: Path, tiny_gguf: Path, cut: int) -> None:
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(tiny_gguf.read_bytes()[:cut])
    assert_one_line_error(run("--model", str(truncated)), "cut.gguf")


def test_bad_setting_value(tiny_gguf: Path) -> None:
    assert_one_line_error(run("--model", str(tiny_gguf), "--ctx", "5"), "n_ctx")


def test_model_name_is_looked_up_in_the_models_folder(tmp_path: Path, tiny_gguf: Path) -> None:
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    shutil.copy(tiny_gguf, data / "models" / "my-tiny-Q8_0.gguf")
    # An unknown name lists nothing found; a partial name that matches one file is accepted
    # (checked through a bad --ctx so the app itself does not start).
    env = {"LOLLMA_DATA_DIR": str(data), "HOME": str(tmp_path)}
    assert_one_line_error(run("--model", "llama-70b", env=env), "model not found")
    assert "--backend ollama" not in run("--model", "llama-70b", env=env).stderr
    # A name that reads as an Ollama tag says where it may be.
    assert_one_line_error(run("--model", "llama3.2:1b", env=env), "model not found", "add --backend ollama")
    # A half-downloaded file is named with what is wrong with it, not "model not found".
    (data / "models" / "halfway-Q8_0.gguf").write_bytes(tiny_gguf.read_bytes()[:5000])
    assert_one_line_error(
        run("--model", "halfway", env=env), "is no model that can be loaded", "halfway-Q8_0.gguf ("
    )
    assert_one_line_error(run("--model", "my-tiny", "--ctx", "5", env=env), "n_ctx")


def test_model_and_file_names_in_an_error_cannot_reach_the_terminal(tmp_path: Path) -> None:
    # "'evil' matches 2 models: evil^[]0;pwned^G…": a GGUF's own name (or a file name) retitled
    # the terminal the error was printed to.
    from gguf_factory import TinyModelSpec, write_tiny_gguf

    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    for n, name in enumerate(("evil\x1b]0;pwned\x07 one", "evil \x1b[31mtwo")):
        write_tiny_gguf(models / f"evil{n}\x1b[2J-Q8_0.gguf", TinyModelSpec(name=name, seed=n, n_layer=1))
    result = run("--model", "evil", env={"LOLLMA_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)})
    assert_one_line_error(result, "matches 2 models: evil one, evil two")
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


def test_a_vision_projector_named_on_the_command_line_is_said_to_be_one(tmp_path: Path) -> None:
    # "no .gguf files in …/mmproj-tiny-f16.gguf", naming the .gguf file itself.
    from gguf_model_writer import ModelSpec, write_model

    folder = tmp_path / "vision"
    folder.mkdir()
    (projector,) = write_model(folder / "mmproj-tiny-f16.gguf", ModelSpec(arch="clip"))
    for named in (projector, folder):
        assert_one_line_error(run("--model", str(named)), "mmproj-tiny-f16.gguf: a vision projector (mmproj)")


def test_a_bad_flag_value_is_one_line_naming_the_setting(tiny_gguf: Path) -> None:
    assert_one_line_error(run("--model", str(tiny_gguf), "--temp", "hot"), "temperature must be a number")
    assert_one_line_error(run("--model", str(tiny_gguf), "--seed", "x"), "seed must be a whole number")


@pytest.fixture
def own_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Home, data and cache under `tmp_path`: the models folders hold only what a test puts there."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOLLMA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOLLMA_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.usefixtures("own_folders")
def test_a_model_name_is_found_where_the_app_looks_and_a_split_model_counts_once(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gguf_factory import TinyModelSpec, write_tiny_gguf

    from lollma_tui.cli import CliError, resolve_model

    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    # As the Hugging Face cache keeps a download: a snapshot's name links to a blob.
    blob = hub / "models--acme--Tiny-GGUF" / "blobs" / "0123abcd"
    snapshot = hub / "models--acme--Tiny-GGUF" / "snapshots" / "abc"
    blob.parent.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    shutil.copy(tiny_gguf, blob)
    (snapshot / "tinyacme-q4_1.gguf").symlink_to(blob)
    assert resolve_model("tinyacme") == snapshot / "tinyacme-q4_1.gguf"
    # LM Studio's folder, a model in three parts: one model, named by its first part.
    studio = tmp_path / "home" / ".lmstudio" / "models" / "acme"
    studio.mkdir(parents=True)
    write_tiny_gguf(studio / "bigacme-Q8_0.gguf", TinyModelSpec(name="Big Acme", seed=3, split_max_tensors=8))
    parts = sorted(studio.glob("bigacme-Q8_0-*.gguf"))
    assert len(parts) == 3
    assert resolve_model("bigacme") == parts[0]
    assert resolve_model("big acme") == parts[0]  # the model's own name, as /model takes it
    with pytest.raises(CliError, match="matches 2 models"):
        resolve_model("acme")
    # Any part named by its path opens the model; a folder holding the parts holds one model.
    assert resolve_model(str(parts[1])) == parts[0]
    assert resolve_model(str(studio)) == parts[0]
    # A file name as `ls` shows it, typed without its folder, is looked up like a name.
    assert resolve_model("bigacme-Q8_0-00002-of-00003.gguf") == parts[0]
    parts[2].unlink()
    with pytest.raises(CliError, match="part 3 of 3: file not found"):
        resolve_model(str(parts[0]))


@pytest.mark.usefixtures("own_folders")
def test_a_model_name_picks_as_the_app_does_among_quantizations_and_demos(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    from gguf import LlamaFileType
    from gguf_factory import quantize_gguf

    from lollma_tui.cli import build_parser, resolve_model, startup_options
    from lollma_tui.core.models.demo import DEMOS, demo_model_path, demo_model_ready

    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    f16 = shutil.copy(tiny_gguf, models / "tiny-F16.gguf")
    q8 = quantize_gguf(Path(f16), models / "tiny-Q8_0.gguf", LlamaFileType.MOSTLY_Q8_0)
    # Two quantizations of one model are one model: the smaller is taken, as /model does, and
    # the app is told which, as /model says it.
    assert resolve_model("tiny") == q8
    options = startup_options(build_parser().parse_args(["--model", "tiny"]))
    assert options.load.model == str(q8.resolve())
    assert re.fullmatch(r".*: took Q8_0 \(also: F16\)", options.model_note)
    assert (options.model_note, "info") in options.start_notices
    assert startup_options(build_parser().parse_args(["--model", str(q8)])).model_note == ""
    smollm = DEMOS["smollm2"]
    if demo_model_ready(smollm):  # a dependency of the project: installed wherever tests run
        assert resolve_model("smollm2") == demo_model_path(smollm)
    else:
        pytest.fail("the SmolLM2 demo model is not installed")


def test_a_path_that_cannot_be_looked_at_is_one_line(tiny_gguf: Path) -> None:
    # `~models/x` (no user "models": a typo of ~/) and a name too long for the file system
    # raised out of pathlib as tracebacks.
    assert_one_line_error(run("--model", "~nosuchuser/x.gguf"), "~nosuchuser/x.gguf")
    assert_one_line_error(run("--model", "/tmp/" + "a" * 300 + ".gguf"), "aaaa")
    quantize = run("quantize", "~nosuchuser/x.gguf", "--type", "Q8_0")
    assert quantize.returncode == 2
    assert quantize.stderr.startswith("lollma-tui quantize: error: source not found")


def test_an_app_textual_ends_on_an_error_exits_non_zero(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Textual shows the error and ends the app; `lollma-tui` exited 0 all the same.
    from typing import Any

    from lollma_tui.cli import main
    from lollma_tui.ui.app import LollmaApp

    real_run = LollmaApp.run

    def headless(self: LollmaApp, *args: Any, **kwargs: Any) -> Any:
        return real_run(self, headless=True, size=(80, 24))

    def failing_mount(self: LollmaApp) -> None:
        raise RuntimeError("a bug in the app")

    monkeypatch.setattr(LollmaApp, "run", headless)
    monkeypatch.setattr(LollmaApp, "on_mount", failing_mount)
    monkeypatch.setattr("lollma_tui.cli.terminal_problem", lambda: None)  # no terminal under pytest
    assert main(["--model", str(tiny_gguf), "--new"]) == 1


def test_new_and_conversation_together_are_refused() -> None:
    # --new won, and the conversation asked for was not opened, without a word.
    result = run("--new", "--conversation", "0123abcd")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "lollma-tui: error: argument --conversation: not allowed with argument --new"
    )


def test_a_flag_value_may_start_with_a_dash(tiny_gguf: Path) -> None:
    # Ollama keeps a model loaded for good with -1m; argparse took it for a flag.
    from lollma_tui.cli import build_parser, startup_options, values_may_start_with_a_dash
    from lollma_tui.core.settings_table import setting

    # Checked through a bad --ctx, so the app itself does not start.
    for flag, value in (("--keep-alive", "-1m"), ("--stop", "-END"), ("--system", "-be brief")):
        assert_one_line_error(run("--model", str(tiny_gguf), flag, value, "--ctx", "5"), "n_ctx")
    argv = ["--model", str(tiny_gguf), "--keep-alive", "-1m", "--stop", "-END,--x", "--system", "-hi"]
    chosen = startup_options(build_parser().parse_args(values_may_start_with_a_dash(argv)))
    assert chosen.load.keep_alive == setting("keep_alive").parse("-1m")
    assert chosen.sampling.stop == ("-END", "--x")
    assert chosen.system_prompt == "-hi"
    # A value forgotten before the next flag is still reported as missing.
    forgotten = run("--model", str(tiny_gguf), "--ctx", "--new")
    assert forgotten.returncode == 2 and "--n-ctx/--ctx: expected one argument" in forgotten.stderr


def test_without_a_terminal_the_app_says_so_instead_of_drawing_blind(tiny_gguf: Path) -> None:
    # `ssh host lollma-tui` without -t: the screen was drawn anyway, Ctrl+Q and Enter never
    # reached the app, and Ctrl+C left the terminal in its screen and the app running.
    result = subprocess.run(
        [lollma_tui(), "--model", str(tiny_gguf), "--new"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_one_line_error(result, "needs a terminal to read keys from (over ssh: ssh -t HOST lollma-tui)")
    monitor = subprocess.run(
        [lollma_tui(), "monitor"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert monitor.returncode == 2
    assert monitor.stderr.startswith("lollma-tui monitor: error: needs a terminal"), monitor.stderr


def test_help_and_errors_print_in_a_locale_without_their_characters() -> None:
    # In a latin-1 locale the help's "…" ended in a UnicodeEncodeError traceback.
    latin1 = {"PYTHONIOENCODING": "latin-1"}
    result = run("--help", env=latin1)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "--model" in result.stdout

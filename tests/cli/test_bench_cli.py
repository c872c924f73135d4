"""`lollma-tui bench` and `lollma-tui quantize` from the command line."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gguf_factory import TinyModelSpec, write_tiny_gguf

from lollma_tui.cli_bench import bench_main, main, quantize_main
from lollma_tui.core.bench import ResultStore
from lollma_tui.core.models.demo import DEFAULT_DEMO

FAST = ["-p", "0", "-n", "4", "-r", "2", "--no-chat", "-t", "1"]


def table_rows(text: str) -> list[list[str]]:
    """Data rows of the markdown table in `text` (header and rule left out)."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    return [[cell.strip() for cell in ln.strip("|").split("|")] for ln in lines[2:]]


def test_bad_input_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], quantized_models: Path
) -> None:
    garbage = tmp_path / "broken.gguf"
    garbage.write_bytes(b"this is not a model at all" * 10)
    cases = [
        (["-m", str(tmp_path / "missing.gguf")], "model not found"),
        (["-m", str(garbage)], "not a GGUF file"),
        (["-m", str(quantized_models / "tiny-llama-f16.gguf"), "--quants", "Q5_K_S"], "has no Q5_K_S"),
        (
            ["-m", str(quantized_models / "tiny-llama-f16.gguf"), "-p", "0", "-n", "0", "--no-chat"],
            "nothing to measure",
        ),
        (["-m", str(quantized_models / "tiny-llama-f16.gguf"), "-r", "0"], "repetitions"),
        # An empty list measured nothing and exited 0.
        (["-m", str(quantized_models / "tiny-llama-f16.gguf"), "--quants", ","], "--quants: name"),
        # No model: the demo's, but the error is still the one line said.
        (["-t", "0"], "thread counts"),
        (
            ["--backend", "ollama", "--ollama-host", "http://[::1", "-m", "x"],
            "http://[::1: not a server address",
        ),
        (["--backend", "openai", "--base-url", "ftp://box"], "must start with http:// or https://"),
    ]
    for argv, message in cases:
        assert bench_main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == ""
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and lines[0].startswith("lollma-tui bench: error:")


def test_missing_model_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lollma_tui.cli_bench", "bench", "-m", str(tmp_path / "nope.gguf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_a_model_whose_chat_template_fails_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The worker died at shutdown (SIGABRT): the run blamed llama.cpp's AMX repacking, then a
    # "Fatal Python error", and never named the template.
    model = write_tiny_gguf(
        tmp_path / "broken-template.gguf", TinyModelSpec(chat_template="{% if %}broken{{")
    )
    assert bench_main(["-m", str(model), *FAST]) == 1
    err = capsys.readouterr().err
    assert "the model's chat template failed: TemplateSyntaxError" in err, err
    assert "repack" not in err.lower() and "Fatal Python error" not in err and "metadata" not in err, err


def test_markdown_table_then_json_with_comparison(
    quantized_models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(quantized_models / "tiny-llama-Q8_0.gguf")
    assert bench_main(["-m", model, *FAST, "-n", "4,6"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [row[-3] for row in rows] == ["tg4", "tg6"]
    assert all(row[-2].count(" ± ") == 1 for row in rows)  # t/s as avg ± stddev
    assert "build: " in out and "llama-cpp-python" in out
    saved = ResultStore().load()
    assert len(saved) == 2

    assert bench_main(["-m", model, *FAST, "-n", "4,6", "-o", "json", "--compare"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # stdout stays pure JSON; the comparison goes to stderr
    assert [row["test"] for row in document] == ["tg4", "tg6"]
    assert "Compared with the last saved run" in captured.err
    compared = table_rows(captured.err)
    assert len(compared) == 2
    assert all(row[-1].endswith("%") or row[-1].endswith("~") for row in compared)
    assert len(ResultStore().load()) == 4


def test_saved_results_that_cannot_be_read_are_said_and_the_rows_still_printed(
    quantized_models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ResultStore().path.mkdir(parents=True)  # a folder where the results file should be
    model = str(quantized_models / "tiny-llama-Q8_0.gguf")
    assert bench_main(["-m", model, *FAST, "--compare", "--no-save"]) == 0
    captured = capsys.readouterr()
    assert [row[-3] for row in table_rows(captured.out)] == ["tg4"]
    assert "could not read the saved results in" in captured.err and "Traceback" not in captured.err


def test_results_that_cannot_be_saved_end_in_exit_1(
    quantized_models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "error: could not save the results" was said, and the exit status was 0.
    ResultStore().path.mkdir(parents=True)  # a folder where the results file should be
    model = str(quantized_models / "tiny-llama-Q8_0.gguf")
    assert bench_main(["-m", model, *FAST]) == 1
    captured = capsys.readouterr()
    assert "could not save the results to" in captured.err
    assert [row[-3] for row in table_rows(captured.out)] == ["tg4"]  # measured, and printed


def test_a_relative_model_folder_and_every_layer_as_said(
    quantized_models: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A relative --model-dir failed every configuration ("Model file not found: models/…"): the
    # worker runs in the log folder. And --ngl all was "ngl -1" in the notes.
    monkeypatch.chdir(quantized_models.parent)
    folder = quantized_models.name
    argv = ["-m", "tiny-llama", "--model-dir", folder, "--quants", "Q8_0", "--ngl", "0,all", *FAST]
    assert bench_main(argv) == 0
    captured = capsys.readouterr()
    assert [row[-3] for row in table_rows(captured.out)] == ["tg4"]  # all is 0 on this CPU build
    said = captured.out + captured.err
    assert "ngl -1" not in said and "ngl all · 1 thread is" in said, said


def test_a_broken_quantization_beside_the_model_is_named_with_its_reason(
    quantized_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A cut-off Q4_0 was left out of `--quants all` without a word (exit 0), and asked for by
    # name it was "has no Q4_0 file" while the file was there.
    import shutil

    folder = tmp_path / "models"
    shutil.copytree(quantized_models, folder)
    whole = (folder / "tiny-llama-Q8_0.gguf").read_bytes()
    (folder / "tiny-llama-Q4_0.gguf").write_bytes(whole[: len(whole) // 2])
    model = str(folder / "tiny-llama-Q8_0.gguf")
    for quants in ("all", "Q8_0,Q4_0"):
        assert bench_main(["-m", model, "--quants", quants, *FAST]) == 2, quants
        said = capsys.readouterr().err
        assert "cannot read tiny-llama-Q4_0.gguf" in said and "has no Q4_0" not in said, said
    assert bench_main(["-m", model, "--quants", "Q8_0", *FAST, "--no-save"]) == 0  # the others still go
    capsys.readouterr()


def test_no_model_measures_the_demo_model_as_the_app_starts_on_it(capsys: pytest.CaptureFixture[str]) -> None:
    # `lollma-tui` starts on the demo model when none is named; `bench` (and `bench --compare`,
    # as the README shows it) measures the same one instead of refusing.
    assert bench_main([*FAST, "-o", "jsonl", "--no-save"]) == 0
    captured = capsys.readouterr()
    (row,) = [json.loads(line) for line in captured.out.splitlines()]
    assert row["test"] == "tg4" and row["model_type"].startswith("llama")
    assert f"no --model given: measuring {DEFAULT_DEMO.display_name}" in captured.err
    # A server backend has no default model to fall back on: it still asks for one.
    assert bench_main(["--backend", "ollama", *FAST]) == 2
    assert "give a model with --model (ollama has no default model)" in capsys.readouterr().err


def test_no_save_leaves_the_results_alone(quantized_models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(quantized_models / "tiny-llama-Q4_K_M.gguf")
    assert bench_main(["-m", model, *FAST, "-o", "jsonl", "--no-save"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["test"] == "tg4"
    assert ResultStore().load() == []


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_a_kill_or_a_closed_terminal_print_and_keep_the_finished_rows(
    quantized_models: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    # SIGTERM and SIGHUP (an ssh session that drops) ended the run at once: rows printed, none saved.
    env = dict(os.environ, LOLLMA_DATA_DIR=str(tmp_path / "data"), LOLLMA_STATE_DIR=str(tmp_path / "state"))
    command = [
        sys.executable, "-m", "lollma_tui.cli_bench", "bench",
        "-m", str(quantized_models / "tiny-llama-f16.gguf"), "--quants", "all",
        "-t", "1,2", "-p", "0", "-n", "64", "-r", "5", "--no-chat",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("| llama"):
            break
    assert seen and seen[-1].startswith("| llama"), "no row appeared"
    process.send_signal(stop)
    out, err = process.communicate(timeout=30)
    text = "".join(seen) + out
    assert process.returncode == 130
    rows = table_rows(text)
    assert 1 <= len(rows) < 6  # 3 quants × 2 thread counts were planned
    assert "build: " in text
    assert "stopped" in err and "Traceback" not in err
    # What was measured is kept.
    saved = (tmp_path / "data" / "bench" / "results.jsonl").read_text().splitlines()
    assert len(saved) == len(rows)


@pytest.mark.parametrize("how", ["reader leaves", "terminal hangs up"])
def test_output_that_goes_away_stops_the_sweep_and_keeps_the_rows(
    quantized_models: Path, tmp_path: Path, how: str
) -> None:
    # `bench … | head -1`, or an ssh session that drops: a BrokenPipeError (EIO) traceback,
    # and none of the rows measured were saved.
    env = dict(os.environ, LOLLMA_DATA_DIR=str(tmp_path / "data"), LOLLMA_STATE_DIR=str(tmp_path / "state"))
    command = [
        sys.executable, "-m", "lollma_tui.cli_bench", "bench", "-o", "jsonl",
        "-m", str(quantized_models / "tiny-llama-f16.gguf"), "--quants", "all",
        "-t", "1,2", "-p", "0", "-n", "64", "-r", "5", "--no-chat",
    ]  # fmt: skip
    err_path = tmp_path / "err.txt"
    with err_path.open("w") as err_file:
        if how == "reader leaves":
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err_file, env=env)
            assert process.stdout is not None
            first = process.stdout.readline()
            process.stdout.close()
        else:
            controller, terminal = pty.openpty()
            process = subprocess.Popen(command, stdout=terminal, stderr=terminal, env=env)
            os.close(terminal)
            first = os.read(controller, 4096)
            while b"\n" not in first:
                first += os.read(controller, 4096)
            os.close(controller)  # the terminal is gone: every write now fails with EIO
            process.send_signal(signal.SIGHUP)
        assert b'"test": "tg64"' in first, first
        assert process.wait(timeout=60) == 130
    saved = (tmp_path / "data" / "bench" / "results.jsonl").read_text().splitlines()
    assert 1 <= len(saved) < 6  # measured rows are kept, and the sweep stopped early
    if how == "reader leaves":
        err = err_path.read_text()
        said = re.search(r"the output was closed; (\d+) rows? measured", err)
        assert "Traceback" not in err and said is not None, err
        assert int(said[1]) == len(saved)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_a_quantize_ended_by_kill_or_a_closed_terminal_leaves_no_partial_file(
    slow_gguf: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    # Only Ctrl+C cleaned up: the hidden partial file, as large as the model, stayed.
    out = tmp_path / "out"
    out.mkdir()
    command = [
        sys.executable, "-m", "lollma_tui.cli_bench", "quantize", str(slow_gguf),
        "--type", "Q4_K_M", "--threads", "1", "--output-dir", str(out),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".partial") for p in out.iterdir()):
        assert time.monotonic() < deadline and process.poll() is None, "the quantization never started"
        time.sleep(0.02)
    process.send_signal(stop)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "was not written" in err
    assert list(out.iterdir()) == []


def test_quantize_command(source_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert quantize_main([str(source_copy), "--type", "Q4_0,Q8_0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [Path(line.split("\t")[0]).name for line in out] == [
        "tiny-llama-Q4_0.gguf",
        "tiny-llama-Q8_0.gguf",
    ]
    assert (source_copy.parent / "tiny-llama-Q4_0.gguf").is_file()

    assert quantize_main([str(source_copy), "--type", " , "]) == 2  # did nothing, with exit 0
    assert "name at least one type" in capsys.readouterr().err
    assert quantize_main([str(source_copy), "--type", "IQ2_XXS"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "importance matrix" in err[0]
    assert main(["quantize", str(source_copy), "--type", "Q4_0"]) == 2  # exists already
    assert "already exists" in capsys.readouterr().err
    # A quantized source is refused, and the refusal names the flag that lifts it.
    q8 = str(source_copy.parent / "tiny-llama-Q8_0.gguf")
    (source_copy.parent / "re").mkdir()
    requantize = [q8, "--type", "Q4_0", "--output-dir", str(source_copy.parent / "re")]
    assert quantize_main(requantize) == 2
    assert capsys.readouterr().err.rstrip().endswith("quality suffers): --allow-requantize")
    assert quantize_main([*requantize, "--allow-requantize"]) == 0


def test_argument_errors_return_2_instead_of_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["-m", "x", "--ngl", "lots"]) == 2
    assert "expected layer counts" in capsys.readouterr().err
    assert quantize_main(["model.gguf"]) == 2  # --type is required
    assert bench_main(["--help"]) == 0
    assert "llama-bench" in capsys.readouterr().out

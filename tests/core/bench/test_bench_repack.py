"""`lollma-tui bench --repack`: what llama.cpp's repacked weights buy on this CPU, and the
fallback when they crash (made to happen here by the worker's test-only fault seam)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gguf import LlamaFileType
from gguf_factory import quantize_gguf

from lollma_tui.cli_bench import bench_main
from lollma_tui.core.backends import repack

FAST = ["-p", "16", "-n", "4", "-r", "1", "--no-chat", "-t", "1", "--no-save"]


def table_rows(text: str) -> list[dict[str, str]]:
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True)) for ln in lines[2:]]


def test_a_repack_sweep_gives_a_row_per_choice(
    repacked_gguf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench_main(["-m", str(repacked_gguf), *FAST, "--repack", "on,off", "-o", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["test"], row["repack"]) for row in rows] == [
        ("pp16", True),
        ("tg4", True),
        ("pp16", False),
        ("tg4", False),
    ]
    assert all(row["avg_ts"] > 0 for row in rows)

    assert bench_main(["-m", str(repacked_gguf), *FAST, "--repack", "on,off"]) == 0
    table = table_rows(capsys.readouterr().out)
    assert [row["repack"] for row in table] == ["1", "1", "0", "0"]


def test_a_crash_with_repacking_falls_back_and_is_remembered(
    repacked_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOLLMA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(repack.FAULT_ENV, "load")
    assert bench_main(["-m", str(repacked_gguf), *FAST, "-o", "json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [row["repack"] for row in rows] == [False, False]
    assert "repacking off" in captured.err
    # Said where a command line reads it: the chat's /set is no option of `bench`.
    assert "`--repack on`" in captured.err and "/set" not in captured.err
    assert repack.RepackMemory().path.exists()
    # Asked for explicitly, "on" is not overridden: the configuration fails with the crash.
    assert bench_main(["-m", str(repacked_gguf), *FAST, "--repack", "on", "-o", "json"]) != 0
    assert "segmentation fault" in capsys.readouterr().err.lower()


def test_a_crash_repacking_did_not_cause_is_not_remembered(
    repacked_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOLLMA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(repack.FAULT_ENV, "load:always")
    assert bench_main(["-m", str(repacked_gguf), *FAST, "-o", "json"]) != 0
    assert "segmentation fault" in capsys.readouterr().err.lower()
    assert not repack.RepackMemory().path.exists()


def test_a_bad_repack_value_is_one_line(repacked_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["-m", str(repacked_gguf), *FAST, "--repack", "maybe"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--repack takes auto, on, off, not maybe" in err[0]


def test_rows_say_whether_llama_cpp_repacked_not_whether_it_was_asked(
    tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # F32 weights are repacked on no CPU: "--repack on,off" marked the first rows repacked and
    # showed what repacking buys as the difference between two identical runs.
    f32 = quantize_gguf(tiny_gguf, tmp_path / "tiny-llama-F32.gguf", LlamaFileType.ALL_F32)
    assert bench_main(["-m", str(f32), *FAST, "--repack", "on,off", "-o", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["test"], row["repack"]) for row in rows] == [
        ("pp16", False),
        ("tg4", False),
        ("pp16", False),
        ("tg4", False),
    ]


def test_an_auto_sweep_on_a_cpu_whose_repacking_crashes_shows_which_rows_ran_repacked(
    repacked_gguf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # On an AMX Xeon "auto" runs most files without repacking (their repacked path crashed) and
    # some with it: a --quants all table mixed both with nothing to tell them apart.
    assert bench_main(["-m", str(repacked_gguf), *FAST]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert ("repack" in header) == repack.cpu_has_amx()

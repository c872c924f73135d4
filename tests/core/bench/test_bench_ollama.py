"""Benchmarks against the Ollama-compatible test server, following the §D recipe."""

from __future__ import annotations

import json

import pytest
from ollama_server import OllamaTestServer
from ollama_server.engines import Script

from lollma_tui.cli_bench import bench_main
from lollma_tui.core.bench import OLLAMA_CAVEATS

LONG_REPLY = Script(text=" ".join(["word"] * 100), tokens_per_second=400.0)
"""Paced pieces: the server reports eval_duration = pieces × 2.5 ms, so tg is exactly 400 t/s."""


def run_cli(server: OllamaTestServer, *args: str) -> int:
    return bench_main(["--backend", "ollama", "--ollama-host", server.host, "-o", "json", "--no-save", *args])


def test_tags_by_num_gpu_with_nonce_prompts_and_a_warm_up(
    ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.set_default_reply(LONG_REPLY)
    code = run_cli(
        ollama_server,
        "-m", "tinyllama:1b-q4_K_M", "--quants", "Q4_K_M,Q8_0", "--ngl", "0,auto",
        "-p", "64", "-n", "16", "-r", "3", "--no-chat",
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)
    assert [(r["model_filename"], r["n_gpu_layers_requested"], r["test"]) for r in rows] == [
        ("tinyllama:1b-q4_K_M", "0", "pp64"),
        ("tinyllama:1b-q4_K_M", "0", "tg16 @ d64"),
        ("tinyllama:1b-q4_K_M", "auto", "pp64"),
        ("tinyllama:1b-q4_K_M", "auto", "tg16 @ d64"),
        ("tinyllama:1b-q8_0", "0", "pp64"),
        ("tinyllama:1b-q8_0", "0", "tg16 @ d64"),
        ("tinyllama:1b-q8_0", "auto", "pp64"),
        ("tinyllama:1b-q8_0", "auto", "tg16 @ d64"),
    ]
    for row in rows:
        assert row["backend_impl"] == "ollama" and row["ollama_version"] == "0.33.0"
        assert len(row["samples_ts"]) == 3
    pp = [r for r in rows if r["n_gen"] == 0]
    tg = [r for r in rows if r["n_gen"] > 0]
    # Every prompt was evaluated in full: a cache hit would report far more than 2000 t/s.
    assert all(r["avg_ts"] == pytest.approx(2000.0) and r["n_prompt"] == 64 for r in pp)
    assert all(r["avg_ts"] == pytest.approx(400.0) and r["stddev_ts"] == pytest.approx(0.0) for r in tg)
    assert {r["backends"] for r in rows if r["n_gpu_layers_requested"] == "0"} == {"100% CPU"}
    assert {r["backends"] for r in rows if r["n_gpu_layers_requested"] == "auto"} == {"100% GPU"}
    for caveat in OLLAMA_CAVEATS:
        assert caveat in captured.err

    generates = [r for r in ollama_server.requests if r.path == "/api/generate"]
    assert len(generates) == 4 * (1 + 3)  # a warm-up, then the repetitions, per configuration
    bodies = [r.body or {} for r in generates]
    assert all(b["raw"] is True and b["stream"] is False for b in bodies)
    assert all(b["options"]["num_predict"] == 16 and b["options"]["temperature"] == 0 for b in bodies)
    prompts = [b["prompt"] for b in bodies]
    assert len(set(prompts)) == len(prompts)
    assert {b["options"].get("num_gpu") for b in bodies} == {0, None}
    # The generate requests repeat the load's runner options: one load per configuration, no reloads.
    assert len(ollama_server.loads) == 4 and ollama_server.reload_count == 0
    assert [u.reason for u in ollama_server.unloads].count("request") == 4


def test_an_early_end_of_sequence_is_reported(
    ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.set_default_reply(Script(text="only five words here now", tokens_per_second=400.0))
    code = run_cli(ollama_server, "-m", "tinyllama:1b-q8_0", "-p", "32", "-n", "16", "-r", "2", "--no-chat")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    tg = next(r for r in json.loads(captured.out) if r["n_gen"])
    assert any("ended early" in note and "< 16" in note for note in tg["notes"])
    assert "ended early" in captured.err


def test_chat_row_through_the_ollama_backend(
    ollama_server: OllamaTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.set_default_reply(LONG_REPLY)
    code = run_cli(
        ollama_server, "-m", "tinyllama:1b-q4_K_M", "-p", "16", "-n", "0", "-r", "2", "--chat-tokens", "8"
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)
    assert [r["test"] for r in rows] == ["pp16", "chat"]
    chat = rows[1]
    assert chat["n_gen"] == 8 and chat["avg_ts"] > 0 and chat["avg_ttft_ns"] > 0
    chats = [r for r in ollama_server.requests if r.path == "/api/chat" and (r.body or {}).get("messages")]
    assert len(chats) == 3  # a warm-up and two timed replies


def test_unknown_tag_and_unreachable_server(
    ollama_server: OllamaTestServer, dead_ollama_host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(ollama_server, "-m", "nosuchmodel:7b") == 2
    assert "Ollama has no model nosuchmodel:7b" in capsys.readouterr().err
    code = bench_main(["--backend", "ollama", "--ollama-host", dead_ollama_host, "-m", "tinyllama:1b-q8_0"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]

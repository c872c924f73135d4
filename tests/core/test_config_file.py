"""config.toml: defaults for settings, read through the settings table; bad entries are reported
with file, key and reason and left out, and the rest still applies."""

from __future__ import annotations

from pathlib import Path

from lollma_tui.core.config_file import config_path, read_config
from lollma_tui.core.hardware.ssh_target import SshTarget
from lollma_tui.core.settings import AUTO, BackendKind


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_file_lives_in_the_config_folder(tmp_path: Path) -> None:
    # The root conftest points LOLLMA_CONFIG_DIR into this test's folder.
    assert config_path() == tmp_path / "lollma-config" / "config.toml"
    assert read_config().settings == {} and read_config().problems == ()


def test_values_are_read_as_typed_text_is(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        """
        [settings]
        n_gpu_layers = "auto"
        ctx = 8192            # an alias, as /set takes it
        temp = 0.2
        use_mmap = false
        keep_alive = "10m"
        stop = ["</s>", "a,b"]
        max_tokens = "unlimited"
        batch = "1k"
        """.replace("\n        ", "\n"),
    )
    config = read_config(path)
    assert config.problems == ()
    assert config.settings == {
        "n_gpu_layers": AUTO,
        "n_ctx": 8192,
        "temperature": 0.2,
        "use_mmap": False,
        "keep_alive": "10m",
        "stop": ("</s>", "a,b"),
        "max_tokens": None,
        "n_batch": 1024,
    }


def test_bad_entries_are_reported_and_left_out(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        '[settings]\nn_ctx = 10\ntemperature = "hot"\nbogus = 1\ntop_k = [1]\nseed = 7\nmodel = ["a.gguf"]\n'
        "stop = [1]\n\n[setings]\nx = 1\n",
    )
    config = read_config(path)
    assert config.settings == {"seed": 7}
    problems = "\n".join(config.problems)
    assert len(config.problems) == 7, problems
    assert all(line.startswith(f"{path}: ") for line in config.problems)
    assert "settings.n_ctx: n_ctx must be between 64 and 4194304, not 10" in problems
    assert "settings.temperature: temperature must be a number, not 'hot'" in problems
    assert "settings.bogus: no setting called 'bogus'" in problems
    assert "settings.top_k: takes one value, not a list: [1]" in problems
    # A list for one value was read as the text "('a.gguf',)".
    assert "settings.model: takes one value, not a list: ['a.gguf']" in problems
    assert "settings.stop: a list here holds only text in quotes, not 1" in problems
    assert "unknown section [setings]" in problems


def test_a_number_or_on_off_where_text_is_wanted_is_reported_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[settings]\nstop = 5\nseed = 7\n")
    config = read_config(path)
    assert config.settings == {"seed": 7}
    assert config.problems == (f"{path}: settings.stop: takes text or a list of strings in quotes, not 5",)
    config = read_config(write(tmp_path / "other.toml", "[settings]\nstop = true\n"))
    assert config.settings == {} and len(config.problems) == 1
    # A boolean is quoted as the file has it: "n_batch must be a whole number, not 'on'".
    path = write(tmp_path / "third.toml", "[settings]\nn_batch = true\nflash_attn = true\nuse_mmap = false\n")
    config = read_config(path)
    assert config.settings == {"flash_attn": True, "use_mmap": False}
    (problem,) = config.problems
    assert problem.startswith(f"{path}: settings.n_batch: ") and problem.endswith(", not 'true'")


def test_a_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    # Notepad and some Windows editors start a UTF-8 file with one.
    path = tmp_path / "config.toml"
    path.write_bytes("\ufeff[settings]\nn_ctx = 8192\n".encode())
    config = read_config(path)
    assert config.problems == () and config.settings == {"n_ctx": 8192}


def test_a_file_that_is_not_toml_is_one_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[settings\nn_ctx = \n")
    config = read_config(path)
    assert config.settings == {}
    assert len(config.problems) == 1 and "not valid TOML" in config.problems[0]
    assert config.problems[0].startswith(str(path))


def test_hosts_are_read_each_on_its_own(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        """
        [[hosts]]
        name = "gpu-box"
        kind = "openai"
        url = "gpu-box:8080"
        hw = "ssh://me@gpu-box:2222"
        hw_command = "uvx lollma-tui monitor --jsonl"
        api_key = "sk-typed-where-the-variable-name-goes"

        [[hosts]]
        name = "broken"
        kind = "tgi"
        url = "http://x"

        [[hosts]]
        name = "den"
        kind = "ollama"
        url = "den"

        [[hosts]]
        name = "nowhere"
        kind = "openai"

        [[hosts]]
        name = "gpu-box"
        kind = "ollama"
        url = "gpu-box"
        """.replace("\n        ", "\n"),
    )
    config = read_config(path)
    assert [(h.name, h.kind, h.url) for h in config.hosts] == [
        ("gpu-box", BackendKind.OPENAI, "http://gpu-box:8080/v1"),
        ("den", BackendKind.OLLAMA, "http://den:11434"),
    ]
    box = config.hosts[0]
    assert box.hw == SshTarget("gpu-box", "me", 2222) and box.hw_command == "uvx lollma-tui monitor --jsonl"
    problems = "\n".join(config.problems)
    assert (
        f"{path}: hosts[1].kind: 'tgi' is not one of llama.cpp, ollama, openai; this host is left out"
        in problems
    )
    assert "hosts[3].url: openai hosts need the server’s address" in problems
    assert "hosts[4].name: 'gpu-box' is named twice" in problems
    # A typo in a key was silently dropped, so the key or the remote panel was never used.
    assert "hosts[0].api_key: unknown key (known: name, kind, url, hw, hw_command, api_key_env)" in problems
    assert all(line.startswith(f"{path}: ") for line in config.problems)
    assert len(config.problems) == 4


def test_hosts_that_are_not_tables_are_one_problem(tmp_path: Path) -> None:
    config = read_config(write(tmp_path / "config.toml", 'hosts = "gpu-box"\n'))
    assert config.hosts == ()
    assert config.problems == (f"{tmp_path / 'config.toml'}: hosts must be a list of tables ([[hosts]])",)


def test_the_theme_is_read_from_the_ui_table(tmp_path: Path) -> None:
    config = read_config(write(tmp_path / "config.toml", '[ui]\ntheme = " lollma-amber "\n'))
    assert config.theme == "lollma-amber" and config.problems == ()
    assert read_config(write(tmp_path / "none.toml", "[settings]\nctx = 2048\n")).theme is None


def test_a_bad_theme_entry_or_a_key_outside_any_table_says_where_it_belongs(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        'theme = "lollma-light"\nctx = 2048\n'
        '[ui]\ntheme = 3\ncolour = "red"\n'
        "[settings]\ntemperature = 0.5\n",
    )
    config = read_config(path)
    assert config.theme is None
    assert config.settings == {"temperature": 0.5}  # the rest still applies
    assert config.problems == (
        f"{path}: theme: a key outside any table; settings go under [settings], the theme under [ui]",
        f"{path}: ctx: a key outside any table; settings go under [settings], the theme under [ui]",
        f"{path}: ui.colour: unknown key (known: theme)",
        f"{path}: ui.theme: must be a theme's name, as /theme lists them",
    )
    assert read_config(write(tmp_path / "flat.toml", 'ui = "dark"\n')).problems == (
        f"{tmp_path / 'flat.toml'}: ui must be a table ([ui])",
    )

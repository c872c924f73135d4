"""/keep: the settings in use written into config.toml, read back as the next start reads them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lollma_tui.core.config_file import read_config
from lollma_tui.core.config_keep import KeepError, keep_settings, keep_theme
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings

CHOSEN_LOAD = LoadSettings(
    backend=BackendKind.LLAMA_CPP,
    model="/models/qwen2.5-0.5b-instruct-q8_0.gguf",
    n_gpu_layers="auto",
    n_ctx=8192,
    n_threads=1,
    n_batch=256,
    flash_attn=True,
    kv_cache_type="q8_0",
    use_mmap=False,
    use_mlock=True,
    keep_alive="30m",
    repack="off",
)
CHOSEN_SAMPLING = SamplingSettings(
    temperature=0.2,
    top_p=0.8,
    top_k=20,
    min_p=0.1,
    repeat_penalty=1.3,
    seed=42,
    max_tokens=64,
    stop=("</s>", "User:", "a,b"),
)


def test_every_setting_reads_back_as_it_was_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    kept = keep_settings(CHOSEN_LOAD, CHOSEN_SAMPLING, path=path)
    config = read_config(path)
    assert config.problems == ()
    for settings in (CHOSEN_LOAD, CHOSEN_SAMPLING):
        for name, value in config.settings.items():
            if hasattr(settings, name):
                assert value == getattr(settings, name), name
    # Every setting but the backend (llama.cpp, the default) differs from its default.
    assert len(config.settings) == len(kept.written) == 19
    assert "n_ctx 8192" in kept.written and "seed 42" in kept.written


def test_only_what_differs_from_the_defaults_is_added(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    keep_settings(LoadSettings(model="/m.gguf", n_ctx=2048), SamplingSettings(temperature=0.9), path=path)
    assert read_config(path).settings == {"model": "/m.gguf", "n_ctx": 2048, "temperature": 0.9}


def test_a_setting_written_under_two_keys_is_kept_under_one(tmp_path: Path) -> None:
    # /keep wrote ctx = 8192 while the next start read the later n_ctx = 4096: nothing stuck.
    path = tmp_path / "config.toml"
    path.write_text("[settings]\nctx = 2048\nn_ctx = 4096\n", encoding="utf-8")
    assert read_config(path).settings == {"n_ctx": 4096}
    assert read_config(path).problems == (
        f"{path}: settings.n_ctx: sets n_ctx as ctx does; this one is used",
    )
    kept = keep_settings(LoadSettings(model="/m.gguf", n_ctx=8192), SamplingSettings(), path=path)
    assert kept.duplicates == ("n_ctx",)
    config = read_config(path)
    assert config.settings == {"model": "/m.gguf", "n_ctx": 8192} and config.problems == ()


def test_the_users_file_is_edited_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "# my set-up\n"
        "[settings]\n"
        "ctx = 2048          # short form, kept as written\n"
        "temp = 0.5\n"
        "colour = 'blue'     # not a setting: the user's, reported at start, left alone\n"
        "\n"
        "[[hosts]]\n"
        'name = "den"\n'
        'kind = "ollama"\n'
        'url = "den.local:11434"\n'
    )
    os.chmod(path, 0o644)
    kept = keep_settings(LoadSettings(model="/m.gguf", n_ctx=8192), SamplingSettings(), path=path)
    text = path.read_text()
    assert text.startswith("# my set-up\n[settings]\nctx = 8192          # short form, kept as written\n")
    assert "temp = 0.8" in text  # back at the default, but the file named it: it says so
    assert "colour = 'blue'" in text and "n_ctx" not in text
    config = read_config(path)
    assert [h.name for h in config.hosts] == ["den"]
    assert config.settings == {"n_ctx": 8192, "temperature": 0.8, "model": "/m.gguf"}
    assert [p for p in config.problems if "colour" not in p] == []
    assert sorted(kept.written) == ["ctx 8192", "model /m.gguf", "temp 0.8"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_settings_written_inline_or_dotted_are_edited_where_they_are(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    for text, kept in (
        ("settings = { ctx = 2048 }\n", "settings = { ctx = 8192"),
        ("settings.ctx = 2048\n", "settings.ctx = 8192\n"),
        # Two dotted keys, or a table split by another: valid TOML that /keep called "not a table".
        ("settings.ctx = 2048\nsettings.temp = 0.3\n", "settings.ctx = 8192\nsettings.temp = 0.5\n"),
        ('[settings]\nctx = 2048\n[ui]\ntheme = "x"\n[settings.extra]\na = 1\n', ""),
    ):
        path.write_text(text)
        keep_settings(LoadSettings(n_ctx=8192), SamplingSettings(temperature=0.5), path=path)
        assert path.read_text().startswith(kept)
        assert read_config(path).settings == {"n_ctx": 8192, "temperature": 0.5}, path.read_text()


def test_a_file_that_is_not_toml_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    broken = "[settings\nctx = 4096\n"
    path.write_text(broken)
    with pytest.raises(KeepError, match="not valid TOML"):
        keep_settings(CHOSEN_LOAD, CHOSEN_SAMPLING, path=path)
    assert path.read_text() == broken
    path.write_text("settings = 3\n")
    with pytest.raises(KeepError, match="not a table"):
        keep_settings(CHOSEN_LOAD, CHOSEN_SAMPLING, path=path)
    assert path.read_text() == "settings = 3\n"


def test_a_symlinked_config_stays_a_symlink(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "lollma.toml").write_text("[settings]\nctx = 2048\n")
    link = tmp_path / "config.toml"
    link.symlink_to(dotfiles / "lollma.toml")
    keep_settings(LoadSettings(n_ctx=8192), SamplingSettings(), path=link)
    assert link.is_symlink()
    assert read_config(link).settings == {"n_ctx": 8192}


def test_the_demo_model_names_no_model_and_its_own_sampling_is_the_baseline(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[settings]\nmodel = "/old.gguf"\n')
    demo_sampling = SamplingSettings(repeat_penalty=1.3, max_tokens=400)
    kept = keep_settings(
        LoadSettings(model="/site-packages/demo.gguf", n_ctx=2048),
        demo_sampling.with_changes(temperature=0.1, max_tokens=None),
        path=path,
        model_is_default=True,
        sampling_defaults=demo_sampling,
    )
    assert kept.removed == ("model",)
    assert "max_tokens unlimited" in kept.written
    assert read_config(path).settings == {"n_ctx": 2048, "temperature": 0.1, "max_tokens": None}


def test_a_picked_theme_is_written_into_the_ui_table_and_nothing_else_moves(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    mine = '# mine\n[settings]\nctx = 2048  # fits\n\n[[hosts]]\nname = "den"\nkind = "ollama"\n'
    mine += 'url = "den:11434"\n'
    path.write_text(mine)
    assert keep_theme("lollma-light", path=path) == path
    assert path.read_text().startswith(mine)
    keep_theme("lollma-amber", path=path)
    config = read_config(path)
    assert config.theme == "lollma-amber" and config.problems == ()
    assert config.settings == {"n_ctx": 2048} and [h.name for h in config.hosts] == ["den"]
    assert path.read_text().count("theme") == 1


def test_a_theme_is_not_written_into_a_file_that_cannot_take_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    for text, reason in (("[ui\n", "not valid TOML"), ('ui = "dark"\n', "not a table")):
        path.write_text(text)
        with pytest.raises(KeepError, match=reason):
            keep_theme("lollma-light", path=path)
        assert path.read_text() == text
    missing = tmp_path / "new" / "config.toml"
    keep_theme("lollma-light", path=missing)
    assert read_config(missing).theme == "lollma-light"

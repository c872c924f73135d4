"""The settings table: every setting reads from text and writes back the same way everywhere."""

from __future__ import annotations

from dataclasses import fields

import pytest

from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings, SamplingSettings, SettingsError
from lollma_tui.core.settings_table import (
    LOAD_NAMES,
    SETTING_NAMES,
    SETTINGS,
    find_setting,
    format_value,
    setting,
)

SAMPLE_VALUES: dict[str, tuple[object, ...]] = {
    "backend": (BackendKind.LLAMA_CPP, BackendKind.OLLAMA),
    "model": ("/models/tiny.gguf", "llama3.2:1b"),
    "n_gpu_layers": (0, 12, -1, AUTO),
    "n_ctx": (64, 8192),
    "n_threads": (None, 1, 8),
    "n_batch": (1, 512),
    "flash_attn": (True, False),
    "kv_cache_type": ("f16", "q4_0"),
    "use_mmap": (True, False),
    "use_mlock": (True, False),
    "keep_alive": ("5m", "-1", "1h30m", "300"),
    "repack": ("auto", "on", "off"),
    "temperature": (0.0, 0.7, 0.123456789),
    "top_p": (0.95, 1.0),
    "top_k": (0, 40),
    "min_p": (0.0, 0.05),
    "repeat_penalty": (1.0, 1.3),
    "seed": (None, 0, 42),
    "max_tokens": (None, 1, 160),
    "stop": ((), ("</s>",), ("a,b", "\n\n", "x\\y")),
}


def test_one_row_per_settings_field_in_field_order() -> None:
    names = [f.name for f in fields(LoadSettings)] + [f.name for f in fields(SamplingSettings)]
    assert list(SETTING_NAMES) == names
    assert {f.name for f in fields(LoadSettings)} == LOAD_NAMES
    assert set(SAMPLE_VALUES) == set(names)


@pytest.mark.parametrize("row", SETTINGS, ids=lambda row: row.name)
def test_format_reads_back_to_the_same_value(row: object) -> None:
    for value in SAMPLE_VALUES[row.name]:  # type: ignore[attr-defined]
        assert row.parse(row.format(value)) == value  # type: ignore[attr-defined]
        assert row.parse(row.entry_text(value)) == value  # type: ignore[attr-defined]


@pytest.mark.parametrize("row", SETTINGS, ids=lambda row: row.name)
def test_defaults_and_offered_words_parse(row: object) -> None:
    assert row.parse(row.placeholder()) == row.default()  # type: ignore[attr-defined]
    for word in row.choices:  # type: ignore[attr-defined]
        row.parse(word)  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["5m", "1h30m", "300", "0", "-1", "2.5h", "90s", "+5m", "-1s", "0.5"])
def test_keep_alive_is_what_ollama_reads(text: str) -> None:
    assert setting("keep_alive").parse(text) == text


@pytest.mark.parametrize("text", ["soon", "5 m", "", "m5", "1d", "5mm", "--1"])
def test_keep_alive_refuses_other_text(text: str) -> None:
    with pytest.raises(SettingsError, match="keep_alive must be a duration"):
        setting("keep_alive").parse(text)


@pytest.mark.parametrize("text", ["9999999h", "2562048h", "10000000000000s"])
def test_keep_alive_longer_than_ollama_can_read_is_refused(text: str) -> None:
    # Go's durations end at 2562047h: the app took it, and Ollama then refused the load.
    with pytest.raises(SettingsError, match="at most 2562047h"):
        setting("keep_alive").parse(text)
    assert setting("keep_alive").parse("2562047h") == "2562047h"


def test_stop_strings_split_on_commas_with_escapes() -> None:
    stop = setting("stop")
    assert stop.parse("User:, ###") == ("User:", "###")
    assert stop.parse(r"a\,b, \n\n, ,") == ("a,b", "\n\n")
    assert stop.parse(stop.format(("a,b", "\n", "x\\y", " lead"))) == ("a,b", "\n", "x\\y", "lead")
    assert stop.parse("none") == stop.parse("") == ()
    with pytest.raises(SettingsError, match="strings separated by commas"):
        stop.parse(", ,")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("n_ctx", "10", "n_ctx must be between 64 and 4194304, not 10"),
        ("n_ctx", "big", "n_ctx must be a whole number, not 'big'"),
        ("n_gpu_layers", "-3", "n_gpu_layers must be a layer count, auto or all, not '-3'"),
        ("temperature", "hot", "temperature must be a number, not 'hot'"),
        ("flash_attn", "maybe", "flash_attn must be on or off, not 'maybe'"),
        ("kv_cache_type", "q5", "kv_cache_type must be one of"),
        ("backend", "vllm", "backend must be llama.cpp, ollama or openai, not 'vllm'"),
    ],
)
def test_bad_text_names_the_setting_and_the_reason(name: str, text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        setting(name).parse(text)


def test_words_for_no_value_and_suffixes() -> None:
    assert setting("n_threads").parse("auto") is None and format_value("n_threads", None) == "auto"
    assert setting("seed").parse("random") is None and format_value("seed", None) == "random"
    assert setting("max_tokens").parse("unlimited") is None
    assert setting("n_ctx").parse("8k") == 8192 and setting("n_batch").parse("1_024") == 1024
    assert setting("n_gpu_layers").parse("all") == -1 and format_value("n_gpu_layers", -1) == "all"
    assert setting("backend").parse("LLAMA") is BackendKind.LLAMA_CPP


def test_names_and_aliases() -> None:
    assert find_setting("temp").name == "temperature"
    assert find_setting("NGL").name == "n_gpu_layers"
    assert find_setting("repeat-penalty").name == "repeat_penalty"
    with pytest.raises(SettingsError, match="did you mean n_ctx"):
        find_setting("n_ct")


def test_only_keep_alive_and_sampling_apply_without_a_reload() -> None:
    assert {s.name for s in SETTINGS if not s.reload} == {"keep_alive"} | {
        f.name for f in fields(SamplingSettings)
    }

from __future__ import annotations

import pytest

from lollma_tui.core.settings import AUTO, LoadSettings, SamplingSettings, SettingsError


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"n_gpu_layers": -2}, "n_gpu_layers"),
        ({"n_gpu_layers": "most"}, "n_gpu_layers"),
        ({"n_ctx": 10}, "n_ctx"),
        ({"n_threads": 0}, "n_threads"),
        ({"n_batch": 0}, "n_batch"),
        ({"kv_cache_type": "q3"}, "kv_cache_type"),
    ],
)
def test_bad_load_values_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(SettingsError, match=field):
        LoadSettings(model="m.gguf", **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": -5}, "top_k"),
        ({"min_p": 1.0}, "min_p"),
        ({"repeat_penalty": 0.0}, "repeat_penalty"),
        ({"max_tokens": 0}, "max_tokens"),
        # llama.cpp takes a 32-bit seed (2**32 + 5 replied as 5 did) and reads 2**32 - 1 as
        # "random"; the history could not read back a seed of 2**63.
        ({"seed": 2**32 - 1}, "seed"),
        ({"seed": 18446744073709551615}, "seed"),
        ({"seed": -2}, "seed"),
        ({"top_k": 2**63}, "top_k"),
        ({"max_tokens": 2**63}, "max_tokens"),
    ],
)
def test_bad_sampling_values_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(SettingsError, match=field):
        SamplingSettings(**changes)  # type: ignore[arg-type]


def test_auto_and_all_gpu_layers_are_accepted() -> None:
    assert LoadSettings(model="m", n_gpu_layers=AUTO).n_gpu_layers == "auto"
    assert LoadSettings(model="m", n_gpu_layers=-1).n_gpu_layers == -1


def test_with_changes_validates_too() -> None:
    base = SamplingSettings()
    with pytest.raises(SettingsError):
        base.with_changes(temperature=9.0)
    assert base.with_changes(seed=7).seed == 7 and base.seed is None

"""Naming a model or a quantization: resolution against real catalogs (GGUF files, Ollama tags)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gguf_factory import TinyModelSpec, write_tiny_gguf
from swap_support import Factory

from lollma_tui.core.models.catalog import Catalog, build_catalog
from lollma_tui.core.session import (
    ModelChoiceError,
    ModelSession,
    model_names,
    quant_variants,
    resolve_model,
    settings_for_quant,
)
from lollma_tui.core.settings import BackendKind, LoadSettings

MakeSession = Callable[..., ModelSession]


@pytest.fixture
def catalog(tiny_f16: Path, tiny_q8: Path, tmp_path: Path) -> Catalog:
    spec = TinyModelSpec(name="tiny-mistral", n_layer=1)
    mistral = write_tiny_gguf(tmp_path / "tiny-mistral-F16.gguf", spec)
    return build_catalog([tiny_f16, tiny_q8, mistral])


def test_a_unique_part_of_a_name_picks_the_model(catalog: Catalog, tiny_f16: Path, tiny_q8: Path) -> None:
    smallest = resolve_model("LLAMA", catalog)
    assert smallest.ref == str(tiny_q8) and smallest.group is not None
    assert smallest.note == "tiny-llama: took Q8_0 (also: F16)"
    assert resolve_model("llama", catalog, prefer_quant="f16").ref == str(tiny_f16)
    # A part that only one file name has picks that file.
    assert resolve_model("llama-f16", catalog).ref == str(tiny_f16)
    assert resolve_model(str(tiny_q8), catalog).variant is not None


def test_ambiguous_and_unknown_names_say_what_there_is(catalog: Catalog) -> None:
    with pytest.raises(ModelChoiceError, match=r"'tiny' matches 2 models: tiny-llama, tiny-mistral"):
        resolve_model("tiny", catalog)
    known = r"\(models: tiny-llama, tiny-mistral\)"
    with pytest.raises(ModelChoiceError, match=r"no model matches 'gemma' " + known):
        resolve_model("gemma", catalog)
    with pytest.raises(ModelChoiceError, match="name a model"):
        resolve_model("  ", catalog)


def test_an_exact_model_name_wins_over_longer_names_containing_it(tiny_f16: Path, tmp_path: Path) -> None:
    chat = write_tiny_gguf(tmp_path / "chat.gguf", TinyModelSpec(name="tiny-llama-chat", n_layer=1))
    both = build_catalog([tiny_f16, chat])
    assert resolve_model("tiny-llama", both).ref == str(tiny_f16)
    assert resolve_model("llama-chat", both).ref == str(chat)
    with pytest.raises(ModelChoiceError, match="matches 2 models"):
        resolve_model("llama", both)


def test_a_gguf_outside_the_catalog_is_taken_as_a_path(catalog: Catalog, tmp_path: Path) -> None:
    stray = write_tiny_gguf(tmp_path / "elsewhere.gguf", TinyModelSpec(name="stray", n_layer=1))
    choice = resolve_model(str(stray), catalog)
    assert choice.ref == str(stray) and choice.group is None


def test_quant_variants_and_settings_for_a_quant(catalog: Catalog, tiny_f16: Path, tiny_q8: Path) -> None:
    current = LoadSettings(model=str(tiny_f16), n_ctx=1024)
    assert sorted(v.quant for v in quant_variants(catalog, current.model)) == ["F16", "Q8_0"]
    q8 = settings_for_quant(current, "q8_0", catalog)
    assert q8 == current.with_changes(model=str(tiny_q8))
    assert settings_for_quant(current, "F16", catalog) == current
    missing = r"tiny-llama has no Q4_K_M variant here; available: Q8_0, F16 \(/quantize makes it"
    with pytest.raises(ModelChoiceError, match=missing):
        settings_for_quant(current, "Q4_K_M", catalog)
    with pytest.raises(ModelChoiceError, match="not a quantization name"):
        settings_for_quant(current, "fast", catalog)
    with pytest.raises(ModelChoiceError, match="is not in the model folders"):
        settings_for_quant(current.with_changes(model="/nowhere/x.gguf"), "Q8_0", catalog)
    names = model_names(catalog)
    assert {"tiny-llama", "tiny-mistral", "tiny-llama-Q8_0.gguf"} <= set(names)


async def test_ollama_names_resolve_against_the_servers_tags(
    make_session: MakeSession, both_backends: Factory
) -> None:
    session = make_session(both_backends, LoadSettings(backend=BackendKind.OLLAMA, model="tinyllama:1b-q8_0"))
    await session.load()
    catalog = await session.catalog()
    assert {g.name for g in catalog.groups} >= {"tinyllama:1b", "qwen3:0.6b"}
    # The loaded quantization is preferred when a name covers several.
    assert (await session.choose_model("tinyllama")).ref == "tinyllama:1b-q8_0"
    assert (await session.choose_model("qwen")).ref == "qwen3:0.6b"
    assert (await session.choose_model("tinyllama:1b-fp16")).ref == "tinyllama:1b-fp16"
    with pytest.raises(ModelChoiceError, match="no model matches"):
        await session.choose_model("mistral")

"""Ollama tags grouped into models with quantization variants."""

from __future__ import annotations

from typing import Any

import pytest

from lollma_tui.core.models.ollama_tags import group_ollama_models, parse_tag


def record(
    name: str, digest: str, quant: str, size: int, params: str = "1.2B", family: str = "llama"
) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "size": size,
        "digest": digest * 64,
        "details": {
            "family": family,
            "parameter_size": params,
            "quantization_level": quant,
            "format": "gguf",
        },
    }


LLAMA_1B = [
    record("llama3.2:1b-instruct-q4_K_M", "a", "Q4_K_M", 807_694_464),
    record("llama3.2:1b-instruct-q8_0", "b", "Q8_0", 1_321_082_688),
    record("llama3.2:1b-instruct-fp16", "c", "F16", 2_479_595_168),
]


@pytest.mark.parametrize(
    ("name", "model", "size", "flavour", "quant"),
    [
        ("llama3.2:1b-instruct-q4_K_M", "llama3.2", "1b", "instruct", "Q4_K_M"),
        ("llama3.2:1b-instruct-fp16", "llama3.2", "1b", "instruct", "F16"),
        ("llama3.2:1b", "llama3.2", "1b", "", None),
        ("llama3.2", "llama3.2", "", "", None),
        ("mixtral:8x7b-instruct-v0.1-q4_0", "mixtral", "8x7b", "instruct-v0.1", "Q4_0"),
        (
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF",
            "",
            "",
            "Q4_K_M",
        ),
        ("localhost:5000/me/model:latest", "localhost:5000/me/model", "", "", None),
        ("gemma3:1b-it-qat", "gemma3", "1b", "it-qat", None),
    ],
)
def test_parse_tag(name: str, model: str, size: str, flavour: str, quant: str | None) -> None:
    parts = parse_tag(name)
    assert (parts.model, parts.size, parts.flavour, parts.quant) == (model, size, flavour, quant)


def test_quant_tags_form_one_group() -> None:
    catalog = group_ollama_models(LLAMA_1B)
    assert len(catalog.groups) == 1
    group = catalog.groups[0]
    assert group.name == "llama3.2:1b-instruct"
    assert group.architecture == "llama"
    assert group.parameter_label == "1.2B"
    assert group.quants == ("Q4_K_M", "Q8_0", "F16")
    q8 = group.variant("q8_0")
    assert q8 is not None
    assert q8.tags == ("llama3.2:1b-instruct-q8_0",)
    assert q8.ref == "llama3.2:1b-instruct-q8_0"
    assert q8.size_bytes == 1_321_082_688


def test_alias_with_matching_digest_joins_that_variant() -> None:
    alias = record("llama3.2:1b", "a", "Q4_K_M", 807_694_464)
    catalog = group_ollama_models([alias, *LLAMA_1B])
    assert len(catalog.groups) == 1
    variant = catalog.groups[0].variant("Q4_K_M")
    assert variant is not None
    assert variant.tags == ("llama3.2:1b-instruct-q4_K_M", "llama3.2:1b")
    assert len(catalog.groups[0].variants) == 3
    found = catalog.find("llama3.2:1b")
    assert found is not None
    assert found[1] is variant


def test_alias_with_its_own_digest_is_its_own_variant() -> None:
    alias = record("llama3.2:1b", "d", "Q4_K_M", 807_700_000)
    catalog = group_ollama_models([*LLAMA_1B, alias])
    assert len(catalog.groups) == 1
    tags = [v.tags for v in catalog.groups[0].variants]
    assert ("llama3.2:1b",) in tags
    assert len(tags) == 4
    assert catalog.same_model_in_quant("llama3.2:1b", "fp16") is not None


def test_ambiguous_alias_gets_its_own_group() -> None:
    text = [record("llama3.2:1b-text-q4_K_M", "e", "Q4_K_M", 807_000_000)]
    alias = record("llama3.2:1b", "f", "Q4_K_M", 807_700_000)
    catalog = group_ollama_models([*LLAMA_1B, *text, alias])
    names = sorted(g.name for g in catalog.groups)
    assert names == ["llama3.2:1b", "llama3.2:1b-instruct", "llama3.2:1b-text"]


def test_latest_resolves_and_other_sizes_stay_apart() -> None:
    three = record("llama3.2:latest", "g", "Q4_K_M", 2_019_393_189, params="3.2B")
    catalog = group_ollama_models([*LLAMA_1B, three])
    assert len(catalog.groups) == 2
    found = catalog.find("llama3.2")
    assert found is not None
    assert found[0].parameter_label == "3.2B"
    assert catalog.same_model_in_quant("llama3.2", "Q8_0") is None


def test_same_model_in_quant_from_any_tag() -> None:
    catalog = group_ollama_models(LLAMA_1B)
    target = catalog.same_model_in_quant("llama3.2:1b-instruct-q4_K_M", "Q8_0")
    assert target is not None
    assert target.ref == "llama3.2:1b-instruct-q8_0"
    assert catalog.same_model_in_quant("mistral:7b", "Q8_0") is None


def test_records_without_a_name_are_reported() -> None:
    catalog = group_ollama_models([{"size": 3}, *LLAMA_1B])
    assert len(catalog.unreadable) == 1
    assert "no model name" in catalog.unreadable[0].reason
    assert len(catalog.groups) == 1


def test_quant_from_details_when_tag_has_none() -> None:
    catalog = group_ollama_models([record("gemma3:1b-it-qat", "h", "Q4_0", 1_000_000_000, family="gemma3")])
    assert catalog.groups[0].variants[0].quant == "Q4_0"

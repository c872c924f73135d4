"""A vocabulary seen before is recognised by its bytes instead of walked again, exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gguf_model_writer import ModelSpec, write_model

from lollma_tui.core.models import gguf_header_reader as reader
from lollma_tui.core.models.gguf_header import ArrayInfo, GGUFError, read_gguf_header
from lollma_tui.core.models.gguf_known_arrays import KNOWN_STRING_ARRAYS, MIN_STRINGS

VOCAB = MIN_STRINGS + 500


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    KNOWN_STRING_ARRAYS.clear()
    yield
    KNOWN_STRING_ARRAYS.clear()


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The element count of every long string array walked string by string."""
    counts: list[int] = []
    real = reader._skip_strings_le

    def counting(buf: Any, off: int, count: int, size: int) -> int:
        counts.append(count)
        return real(buf, off, count, size)

    monkeypatch.setattr(reader, "_skip_strings_le", counting)
    return counts


def parsed_fresh(path: Path) -> Any:
    KNOWN_STRING_ARRAYS.clear()
    return read_gguf_header(path)


def same_layout(a: Any, b: Any) -> bool:
    return a.tensors == b.tensors and a.data_offset == b.data_offset and dict(a.kv) == dict(b.kv)


def test_a_second_file_with_the_same_vocabulary_is_not_walked(tmp_path: Path, walks: list[int]) -> None:
    first = write_model(tmp_path / "m-Q8_0.gguf", ModelSpec(name="M", n_vocab=VOCAB, merges=MIN_STRINGS))[0]
    spec = ModelSpec(name="M v2", n_vocab=VOCAB, merges=MIN_STRINGS)
    second = write_model(tmp_path / "m-F16.gguf", spec)[0]
    read_gguf_header(first)
    assert sorted(walks) == [MIN_STRINGS, VOCAB]  # tokens and merges, walked once
    header = read_gguf_header(second)
    assert sorted(walks) == [MIN_STRINGS, VOCAB], "the second file's arrays were recognised"
    assert header.name == "M v2"
    assert same_layout(header, parsed_fresh(second))


def test_same_size_different_bytes_are_walked_and_end_in_the_right_place(
    tmp_path: Path, walks: list[int]
) -> None:
    plain = write_model(tmp_path / "a.gguf", ModelSpec(n_vocab=VOCAB))[0]
    longer = write_model(tmp_path / "b.gguf", ModelSpec(n_vocab=VOCAB, last_token_suffix="-and-more"))[0]
    read_gguf_header(plain)
    header = read_gguf_header(longer)
    assert walks == [VOCAB, VOCAB]  # same count and first bytes, different end: walked
    assert same_layout(header, parsed_fresh(longer))
    # The scores follow the tokens: they start exactly the extra bytes later.
    scores = header.get("tokenizer.ggml.scores")
    plain_scores = read_gguf_header(plain).get("tokenizer.ggml.scores")
    assert isinstance(scores, ArrayInfo) and isinstance(plain_scores, ArrayInfo)
    assert scores.offset - plain_scores.offset == len("-and-more")


def test_a_truncated_copy_of_a_known_file_is_still_refused(tmp_path: Path) -> None:
    good = write_model(tmp_path / "good.gguf", ModelSpec(n_vocab=VOCAB))[0]
    read_gguf_header(good)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good.read_bytes()[: 24 + 2000 + VOCAB * 8])
    with pytest.raises(GGUFError, match="truncated"):
        read_gguf_header(cut)

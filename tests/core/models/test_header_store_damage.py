"""A damaged header store costs re-reads, entry by entry, and never an exception."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gguf_bytes import small_model

from lollma_tui.core.models import catalog as catalog_module
from lollma_tui.core.models.catalog import HeaderCache, scan_models
from lollma_tui.core.models.fit import memory_profile

Damage = Callable[[dict[str, Any]], None]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the files whose headers the catalog parses (instead of taking the store's)."""
    seen: list[str] = []
    real = catalog_module.read_gguf_header

    def counting(path: Any) -> Any:
        seen.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(catalog_module, "read_gguf_header", counting)
    return seen


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Path]:
    """A models folder with two models and a store written by a real scan of it."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "a.gguf").write_bytes(small_model(name="Alpha"))
    (folder / "b.gguf").write_bytes(small_model(name="Beta"))
    store = tmp_path / "headers.json"
    cache = HeaderCache(store)
    scan_models([folder], cache=cache)
    cache.save()
    return folder, store


def damage_entry(store: Path, name: str, damage: Damage) -> None:
    document = json.loads(store.read_text())
    key = next(k for k in document["entries"] if k.endswith(name))
    damage(document["entries"][key])
    store.write_text(json.dumps(document))


def _set(path: tuple[Any, ...], value: Any) -> Damage:
    def apply(entry: dict[str, Any]) -> None:
        target = entry
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return apply


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"t": [value]}
    return value


DAMAGES: dict[str, Damage] = {
    "kv is a list": _set(("header", "kv"), []),
    "tensors is an object": _set(("header", "tensors"), {"a": 1}),
    "entry is a number": lambda entry: (entry.clear(), entry.update({"id": 5})),
    "identity of strings": _set(("id",), ["1", "2", "3"]),
    "huge block count": _set(("header", "kv", "llama.block_count"), 10**12),
    "huge integer": _set(("header", "kv", "llama.embedding_length"), 10**40),
    "shape too long": _set(("header", "tensors", 0, 2), [32, 1, 1, 1, 1]),
    "shape of floats": _set(("header", "tensors", 0, 2), [32.0]),
    "unknown ggml type": _set(("header", "tensors", 0, 1), 4),
    "version as float": _set(("header", "version"), 3.0),
    "alignment not a power of two": _set(("header", "alignment"), 24),
    "float as text": _set(("header", "kv", "x.f"), {"f": "1e5"}),
    "array info short": _set(("header", "kv", "x.a"), {"a": [8, 3]}),
    "array info of type 99": _set(("header", "kv", "x.a"), {"a": [99, 3, 10]}),
    "tuple too long": _set(("header", "kv", "x.t"), {"t": [1] * 65}),
    "nested tuples": _set(("header", "kv", "x.t"), _nested(50)),
    "missing field": lambda entry: entry["header"].pop("data_offset"),
    "header is a list": _set(("header",), [1, 2]),
}


@pytest.mark.parametrize("name", DAMAGES)
def test_a_damaged_entry_is_left_out_with_its_reason(
    stored: tuple[Path, Path], reads: list[str], name: str
) -> None:
    folder, store = stored
    damage_entry(store, "a.gguf", DAMAGES[name])
    cache = HeaderCache(store)
    [(key, reason)] = cache.dropped
    assert key.endswith("a.gguf") and reason
    catalog = scan_models([folder], cache=cache)
    assert reads == ["a.gguf"], "only the damaged entry's file is read again"
    assert {g.name for g in catalog.groups} == {"Alpha", "Beta"}
    for group in catalog.groups:
        header = group.variants[0].header
        assert header is not None
        memory_profile(header)


def test_the_store_is_written_private_and_whole(stored: tuple[Path, Path]) -> None:
    _, store = stored
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    assert not [p for p in store.parent.iterdir() if p.name.startswith(".")], "no temporary file left"


@pytest.mark.parametrize(
    "content",
    [
        '{"version": 1, "entries": [1, 2]}',
        '{"version": 1, "entries": "x"}',
        '{"version": 1, "entries": {"/x.gguf": ' + "[" * 100_000 + "]" * 100_000 + "}}",
        "[" * 100_000,
    ],
    ids=["entries a list", "entries a string", "entry nested 100000 deep", "unclosed nesting"],
)
def test_a_store_of_another_shape_is_ignored_as_a_whole(
    stored: tuple[Path, Path], reads: list[str], content: str
) -> None:
    folder, store = stored
    store.write_text(content)
    catalog = scan_models([folder], cache=HeaderCache(store))
    assert sorted(reads) == ["a.gguf", "b.gguf"]
    assert {g.name for g in catalog.groups} == {"Alpha", "Beta"}


def test_a_fifo_in_place_of_the_store_is_not_waited_on(tmp_path: Path) -> None:
    store = tmp_path / "headers.json"
    os.mkfifo(store)
    made: list[HeaderCache] = []
    worker = threading.Thread(target=lambda: made.append(HeaderCache(store)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():
        # Let the blocked open() return so the thread can end, then fail.
        os.close(os.open(store, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("opening the store waited for a writer on a FIFO")
    assert len(made[0]) == 0

"""Headers kept on disk between runs: the next scan reads only files that changed."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from gguf import GGUFValueType
from gguf_model_writer import ModelSpec, write_model

from lollma_tui.core.models.catalog import Catalog, HeaderCache, scan_models
from lollma_tui.core.models.gguf_header import GGUFHeader, read_gguf_header


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    (root / "swa").mkdir(parents=True)
    write_model(root / "small-f16.gguf", ModelSpec(name="Small", merges=40))
    write_model(
        root / "swa" / "gemma-like.gguf",
        ModelSpec(
            arch="gemma3",
            name="Windowed",
            n_head_kv=(2, 1),
            sliding_window=512,
            extra_kv={
                "test.inf": (float("inf"), GGUFValueType.FLOAT32),
                "test.flag": (True, GGUFValueType.BOOL),
                "test.note": ("ünïcode", GGUFValueType.STRING),
            },
        ),
    )
    write_model(root / "big.gguf", ModelSpec(name="Split", split_max_tensors=6))
    (root / "cut.gguf").write_bytes((root / "small-f16.gguf").read_bytes()[:3000])
    return root


def gguf_count(folder: Path) -> int:
    return len(list(folder.rglob("*.gguf")))


def summary(catalog: Catalog) -> Any:
    return (
        [(g.name, [(v.quant, v.size_bytes, v.paths) for v in g.variants]) for g in catalog.groups],
        sorted((u.path.name, u.reason) for u in catalog.unreadable),
    )


def same_header(a: GGUFHeader, b: GGUFHeader) -> bool:
    fields = ("path", "version", "tensors", "alignment", "data_offset", "file_size", "big_endian", "parts")
    return all(getattr(a, f) == getattr(b, f) for f in fields) and dict(a.kv) == dict(b.kv)


def test_a_second_run_reads_no_unchanged_file(folder: Path, tmp_path: Path, reads: list[Path]) -> None:
    store = tmp_path / "cache" / "headers.json"
    first_cache = HeaderCache(store)
    first = scan_models([folder], cache=first_cache)
    first_cache.save()
    files = gguf_count(folder)  # two single files, the split parts, the cut file
    assert len(reads) == files
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600

    second = scan_models([folder], cache=HeaderCache(store))
    assert len(reads) == files, "nothing was read again"
    assert summary(second) == summary(first)
    # The stored headers are the parsed ones, field for field (tuples, arrays, inf, unicode).
    first_part = sorted(folder.glob("big-*.gguf"))[0]
    for path in ("small-f16.gguf", "swa/gemma-like.gguf", first_part.name):
        stored = HeaderCache(store).read(folder / path)
        assert same_header(stored, read_gguf_header(folder / path))
    windowed = HeaderCache(store).read(folder / "swa" / "gemma-like.gguf")
    assert windowed.get("test.inf") == float("inf")
    assert windowed.get("gemma3.attention.head_count_kv") == (2, 1)


def test_the_store_is_trusted_only_while_size_mtime_and_inode_hold(
    folder: Path, tmp_path: Path, reads: list[Path]
) -> None:
    store = tmp_path / "headers.json"
    cache = HeaderCache(store)
    scan_models([folder], cache=cache)
    cache.save()
    # Same size and mtime, different bytes: the store answers (it never opens the file)...
    small = folder / "small-f16.gguf"
    info = os.stat(small)
    data = bytearray(small.read_bytes())
    data[:4] = b"XXXX"
    small.write_bytes(bytes(data))
    os.utime(small, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert HeaderCache(store).read(small).name == "Small"
    # ...and a real change is read again and replaces the entry; a deleted file leaves the store.
    write_model(small, ModelSpec(name="Small v2", n_layer=3))
    (folder / "cut.gguf").unlink()
    del reads[:]
    cache = HeaderCache(store)
    catalog = scan_models([folder], cache=cache)
    cache.save()
    assert reads == [small]
    assert "Small v2" in {g.name for g in catalog.groups}
    keys = json.loads(store.read_text())["entries"].keys()
    assert not any(key.endswith("cut.gguf") for key in keys)
    assert any(key.endswith("small-f16.gguf") for key in keys)


@pytest.mark.parametrize(
    "content",
    [
        "not json at all",
        '{"version": 999, "entries": {}}',
        '{"version": 1, "entries": {"/x.gguf": {"id": [1, 2], "header": {}}}}',
        '{"version": 1, "entries": {"/x.gguf": {"id": "abc"}}}',
        "[1, 2, 3]",
    ],
)
def test_a_damaged_store_means_reading_everything_again(
    folder: Path, tmp_path: Path, reads: list[Path], content: str
) -> None:
    store = tmp_path / "headers.json"
    store.write_text(content)
    cache = HeaderCache(store)
    catalog = scan_models([folder], cache=cache)
    cache.save()
    assert len(reads) == gguf_count(folder)
    assert {g.name for g in catalog.groups} == {"Small", "Windowed", "Split"}
    assert json.loads(store.read_text())["version"] == 1
    del reads[:]
    scan_models([folder], cache=HeaderCache(store))
    assert reads == []


def test_an_unwritable_store_costs_only_the_head_start(folder: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    cache = HeaderCache(blocker / "headers.json")
    catalog = scan_models([folder], cache=cache)
    cache.save()  # no exception
    assert {g.name for g in catalog.groups} == {"Small", "Windowed", "Split"}


def test_a_read_the_system_refused_is_not_remembered(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file unreadable once (permissions, a mount not up yet) stayed "cannot read: Permission
    # denied" after chmod, across restarts: a chmod changes none of size, mtime and inode.
    store = tmp_path / "headers.json"
    refused = folder / "small-f16.gguf"
    real_open = os.open

    def open_refusing(path: Any, *args: Any, **kwargs: Any) -> int:
        if Path(path) == refused:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", open_refusing)
        cache = HeaderCache(store)
        first = scan_models([folder], cache=cache)
        cache.save()
    assert ("small-f16.gguf", "cannot read: Permission denied") in summary(first)[1]
    again = HeaderCache(store)
    assert "Small" in {g.name for g in scan_models([folder], cache=again).groups}
    again.save()

    # A store an older version wrote with such a failure in it is not believed either.
    document = json.loads(store.read_text())
    entry = document["entries"][os.path.realpath(refused)]
    document["entries"][os.path.realpath(refused)] = {
        "id": entry["id"],
        "error": "cannot read: Permission denied",
    }
    store.write_text(json.dumps(document))
    assert "Small" in {g.name for g in scan_models([folder], cache=HeaderCache(store)).groups}
    # An answer about the file's content is still remembered.
    document["entries"][os.path.realpath(refused)]["error"] = "not a GGUF file"
    store.write_text(json.dumps(document))
    assert "Small" not in {g.name for g in scan_models([folder], cache=HeaderCache(store)).groups}

"""Finding GGUF files and grouping them into models with quantization variants."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter, LlamaFileType
from gguf_model_writer import ModelSpec, write_model

from lollma_tui.core.models.catalog import (
    HeaderCache,
    build_catalog,
    default_model_dirs,
    find_gguf_files,
    parameter_label,
    scan_models,
)

Q = GGMLQuantizationType


def test_default_dirs_follow_hf_home_and_home(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    dirs = default_model_dirs(env={"HF_HOME": str(tmp_path / "hf")}, home=home, data_dir=data)
    assert dirs == (
        data / "models",
        home / "models",
        tmp_path / "hf" / "hub",
        home / ".lmstudio" / "models",
        home / ".cache" / "lm-studio" / "models",
    )
    plain = default_model_dirs(env={}, home=home, data_dir=data)
    assert plain[2] == home / ".cache" / "huggingface" / "hub"


def test_default_data_dir_comes_from_app_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOLLMA_DATA_DIR", str(tmp_path / "appdata"))
    assert default_model_dirs(env={}, home=tmp_path)[0] == tmp_path / "appdata" / "models"


def _hf_snapshot(hub: Path, model_file: Path) -> Path:
    """Lay a file out the way huggingface_hub does: blob + snapshot symlink."""
    repo = hub / "models--someone--tiny-GGUF"
    blob = repo / "blobs" / "0123abcd"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(model_file.read_bytes())
    snapshot = repo / "snapshots" / "rev1"
    snapshot.mkdir(parents=True)
    link = snapshot / "tiny-Q8_0.gguf"
    link.symlink_to(os.path.relpath(blob, snapshot))
    (hub / ".locks").mkdir()
    (hub / ".locks" / "hidden.gguf").write_bytes(b"")
    return link


def test_find_follows_symlinks_skips_hidden_and_duplicates(model_factory: Any, tmp_path: Path) -> None:
    source = model_factory("src/one.gguf")
    hub = tmp_path / "hub"
    link = _hf_snapshot(hub, source)
    models = tmp_path / "models"
    (models / "nested" / "deeper").mkdir(parents=True)
    deep = models / "nested" / "deeper" / "deep.GGUF"
    deep.write_bytes(source.read_bytes())
    (models / "notes.txt").write_text("not a model")
    (models / "again.gguf").symlink_to(link)  # the same blob reached a second way
    (models / "loop").symlink_to(models)  # a cycle must not hang the walk

    found = find_gguf_files([models, hub, tmp_path / "absent"])
    assert sorted(found) == sorted([deep, models / "again.gguf"])
    assert all(".locks" not in p.parts for p in found)


def test_quant_variants_group_together(model_factory: Any, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    f16 = model_factory("Tiny-F16.gguf", folder, name="Tiny Chat")
    q8 = model_factory(
        "Tiny-Q8_0.gguf",
        folder,
        name="Tiny Chat",
        weight_type=Q.Q8_0,
        file_type=int(LlamaFileType.MOSTLY_Q8_0),
    )
    other = model_factory("Other.gguf", folder, name="Other Model")
    bigger = model_factory("Tiny-big.gguf", folder, name="Tiny Chat", n_layer=3)

    catalog = scan_models([folder])
    assert catalog.unreadable == ()
    by_paths = {tuple(v.paths): g for g in catalog.groups for v in g.variants}
    tiny = by_paths[(f16,)]
    assert by_paths[(q8,)] is tiny
    assert tiny.quants == ("Q8_0", "F16")  # smallest first
    assert by_paths[(other,)] is not tiny
    assert by_paths[(bigger,)] is not tiny  # same name, different parameter count
    assert tiny.name == "Tiny Chat"
    assert tiny.architecture == "llama"
    variant = tiny.variant("q8_0")
    assert variant is not None
    assert variant.size_bytes == q8.stat().st_size
    assert variant.header is not None
    assert variant.header.quantization == "Q8_0"


def test_lookup_by_path_and_quant(model_factory: Any, tmp_path: Path) -> None:
    f16 = model_factory("a/Tiny-F16.gguf", name="Tiny")
    q8 = model_factory("b/Tiny-Q8_0.gguf", name="Tiny", weight_type=Q.Q8_0, file_type=7)
    catalog = build_catalog([f16, q8])
    same = catalog.same_model_in_quant(f16, "Q8_0")
    assert same is not None
    assert same.paths == (q8,)
    assert catalog.same_model_in_quant(q8, "fp16") is not None
    assert catalog.same_model_in_quant(f16, "Q4_K_M") is None
    assert catalog.variant_for_path(str(q8)) is same
    assert catalog.variant_for_path(tmp_path / "unknown.gguf") is None


def test_names_without_metadata_come_from_file_names(model_factory: Any, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    f16 = model_factory("Mystery-7B-f16.gguf", folder, name=None)
    q8 = model_factory("Mystery-7B-Q8_0.gguf", folder, name=None, weight_type=Q.Q8_0, file_type=7)
    catalog = build_catalog([f16, q8])
    assert len(catalog.groups) == 1
    assert catalog.groups[0].name == "Mystery-7B"


def test_split_files_are_one_variant(tmp_path: Path) -> None:
    folder = tmp_path / "split"
    folder.mkdir()
    split_spec = ModelSpec(name="Big", n_layer=3, split_max_tensors=8, weight_type=Q.Q8_0, file_type=7)
    parts = write_model(folder / "Big-Q8_0.gguf", split_spec)
    assert len(parts) > 2
    single = write_model(folder / "Big-F16.gguf", ModelSpec(name="Big", n_layer=3))[0]

    catalog = scan_models([folder])
    assert catalog.unreadable == ()
    assert len(catalog.groups) == 1
    group = catalog.groups[0]
    split_variant = group.variant("Q8_0")
    assert split_variant is not None
    assert split_variant.paths == tuple(parts)
    assert group.quants == ("Q8_0", "F16")
    assert split_variant.size_bytes == sum(p.stat().st_size for p in parts)
    assert split_variant.header is not None
    single_header = build_catalog([single]).groups[0].variants[0].header
    assert single_header is not None
    # Same tensors, same element count; only the Q8_0 matrices are smaller.
    assert split_variant.header.parameter_count == single_header.parameter_count
    assert split_variant.header.tensor_count == single_header.tensor_count
    # Any part finds the model.
    assert catalog.variant_for_path(parts[-1]) is split_variant


def test_missing_split_part_is_unreadable(tmp_path: Path) -> None:
    parts = write_model(tmp_path / "Big.gguf", ModelSpec(n_layer=3, split_max_tensors=8))
    parts[1].unlink()
    catalog = scan_models([tmp_path])
    assert catalog.groups == ()
    assert [u.path for u in catalog.unreadable] == [parts[0]]
    assert f"missing part 2 of {len(parts)}" in catalog.unreadable[0].reason


def test_broken_files_are_listed_not_fatal(model_factory: Any, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    good = model_factory("good.gguf", folder)
    (folder / "empty.gguf").write_bytes(b"")
    (folder / "cut.gguf").write_bytes(good.read_bytes()[:5000])
    (folder / "text.gguf").write_text("hello")
    (folder / "dangling.gguf").symlink_to(folder / "gone.gguf")
    dir_model = tmp_path / "dir.gguf"
    dir_model.mkdir()

    catalog = scan_models([folder], extra_paths=[dir_model])
    assert [v.paths for g in catalog.groups for v in g.variants] == [(good,)]
    reasons = {u.path.name: u.reason for u in catalog.unreadable}
    assert set(reasons) == {"empty.gguf", "cut.gguf", "text.gguf", "dangling.gguf", "dir.gguf"}
    assert "empty file" in reasons["empty.gguf"]
    assert "truncated" in reasons["cut.gguf"]
    assert "not a GGUF file" in reasons["text.gguf"]
    assert reasons["dangling.gguf"] == "file not found"
    assert "is a directory" in reasons["dir.gguf"]


def test_extra_paths_come_first_and_are_not_repeated(model_factory: Any, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    demo = model_factory("demo.gguf", folder, name="Demo")
    catalog = scan_models([folder], extra_paths=[demo])
    assert [v.paths for g in catalog.groups for v in g.variants] == [(demo,)]
    # The demo model in use is named twice, as the model in use and as a demo model (once
    # through a link): /bench offered its one file as two quantizations.
    link = tmp_path / "linked.gguf"
    link.symlink_to(demo)
    catalog = scan_models([folder], extra_paths=[demo, link, demo])
    assert [v.paths for g in catalog.groups for v in g.variants] == [(demo,)]


def test_projectors_are_kept_apart(model_factory: Any, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    model_factory("mmproj-tiny-f16.gguf", folder, arch="clip")
    chat = model_factory("tiny.gguf", folder)
    catalog = scan_models([folder])
    assert [v.paths for g in catalog.groups for v in g.variants] == [(chat,)]
    assert [p.name for p in catalog.projectors] == ["mmproj-tiny-f16.gguf"]


def test_adapters_and_vocabulary_files_are_not_chat_models(model_factory: Any, tmp_path: Path) -> None:
    # Each became a "test-model" group of its own: /model test-model then "matched 3 models:
    # test-model, test-model, test-model", and /model lora loaded the adapter, which failed.
    folder = tmp_path / "m"
    chat = model_factory("tiny.gguf", folder)
    adapter = {
        "general.type": ("adapter", GGUFValueType.STRING),
        "adapter.type": ("lora", GGUFValueType.STRING),
    }
    model_factory("tiny-lora.gguf", folder, extra_kv=adapter)
    writer = GGUFWriter(str(folder / "ggml-vocab-llama.gguf"), "llama")
    writer.add_name("test-model")
    writer.add_tokenizer_model("llama")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    catalog = scan_models([folder])
    assert [v.paths for g in catalog.groups for v in g.variants] == [(chat,)]
    reasons = {u.path.name: u.reason for u in catalog.unreadable}
    assert reasons == {
        "tiny-lora.gguf": "a LoRA adapter, not a model on its own",
        "ggml-vocab-llama.gguf": "a vocabulary only, no weights",
    }


def test_a_symlink_that_points_at_itself_is_listed_not_fatal(model_factory: Any, tmp_path: Path) -> None:
    # Path.resolve() raises RuntimeError for a loop on Python 3.11 and 3.12: the scan died.
    folder = tmp_path / "m"
    chat = model_factory("tiny.gguf", folder)
    (folder / "loop.gguf").symlink_to(folder / "loop.gguf")
    catalog = scan_models([folder], extra_paths=[folder / "loop.gguf"])
    assert [v.paths for g in catalog.groups for v in g.variants] == [(chat,)]
    assert [u.path.name for u in catalog.unreadable] == ["loop.gguf"]


def test_header_cache_rereads_only_changed_files(
    model_factory: Any, tmp_path: Path, reads: list[Path]
) -> None:
    folder = tmp_path / "m"
    first = model_factory("a.gguf", folder, name="A")
    model_factory("b.gguf", folder, name="B")
    cache = HeaderCache()
    scan_models([folder], cache=cache)
    scan_models([folder], cache=cache)
    assert len(reads) == 2
    write_model(first, ModelSpec(name="A", n_layer=3))
    catalog = scan_models([folder], cache=cache)
    assert reads[2:] == [first]
    assert {g.name for g in catalog.groups} == {"A", "B"}


@pytest.mark.parametrize(
    ("count", "label"),
    [
        (268_098_176, "268.10M"),
        (494_032_768, "494.03M"),
        (1_235_814_432, "1.2B"),
        (8_030_261_248, "8.0B"),
        (70_553_706_496, "70.6B"),
        (7_000_000_000, "7B"),
        (999, "999"),
    ],
)
def test_parameter_label(count: int, label: str) -> None:
    assert parameter_label(count) == label

"""Hostile GGUF files cost a bounded amount of work, fail alone with a reason, and never crash.

Each bomb here broke the app before the reader had limits: a RecursionError or ValueError that
emptied the catalog, a scan busy for hours, a MemoryError in fit planning, a SIGBUS.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gguf_bytes import (
    ARRAY,
    BOOL,
    STRING,
    UINT8,
    UINT32,
    gguf_file,
    gguf_string,
    kv,
    kv_array,
    nested_array_kv,
    small_model,
    tensor_info,
)

from lollma_tui.core.models.catalog import build_catalog
from lollma_tui.core.models.fit import memory_profile
from lollma_tui.core.models.gguf_header import GGUFError, GGUFHeader, read_gguf_header
from lollma_tui.core.models.gguf_limits import (
    MAX_ARRAY_DEPTH,
    MAX_HEADER_BYTES,
    MAX_ITEMS,
    MAX_LAYERS,
    MAX_NESTED_ELEMENTS,
    MAX_STRING_BYTES,
)


def write(path: Path, data: bytes, *, sparse_size: int | None = None) -> Path:
    path.write_bytes(data)
    if sparse_size is not None:
        os.truncate(path, sparse_size)  # a hole: no disk used, reads as zeros
    return path


def reason(path: Path) -> str:
    with pytest.raises(GGUFError) as caught:
        read_gguf_header(path)
    return caught.value.reason


def read_in_child(path: Path, prelude: str = "", timeout: float = 120.0) -> str:
    """Read the header in a fresh interpreter: a hang or a signal fails the test, not the suite."""
    script = textwrap.dedent(prelude) + textwrap.dedent(
        f"""
        from lollma_tui.core.models.gguf_header import GGUFError, read_gguf_header
        try:
            read_gguf_header({str(path)!r})
            print("read")
        except GGUFError as error:
            print("GGUFError:", error.reason)
        """
    )
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path.name} was still busy after {timeout:.0f} s")
    assert done.returncode == 0, f"the reader died (status {done.returncode}): {done.stderr[-2000:]}"
    return done.stdout.strip()


def test_deeply_nested_arrays_fail_with_a_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.gguf", gguf_file([nested_array_kv("x.deep", 2000)]))
    assert f"nested more than {MAX_ARRAY_DEPTH} deep" in reason(path)
    shallow = write(tmp_path / "shallow.gguf", gguf_file([nested_array_kv("x.ok", MAX_ARRAY_DEPTH)]))
    assert read_gguf_header(shallow).get("x.ok") is not None


def test_a_sparse_file_of_empty_nested_arrays_is_refused_at_once(tmp_path: Path) -> None:
    # One array claiming 2**32 empty inner arrays; the hole reads as (uint8, length 0) each.
    head = gguf_file([gguf_string("x.bomb") + struct.pack("<IIQ", ARRAY, ARRAY, 1 << 32)])
    path = write(tmp_path / "sparse.gguf", head, sparse_size=64 << 30)
    outcome = read_in_child(path)
    assert outcome.startswith("GGUFError:") and f"{MAX_NESTED_ELEMENTS} elements in nested arrays" in outcome


def test_a_string_array_past_the_work_budget_is_refused(tmp_path: Path) -> None:
    head = gguf_file([gguf_string("x.strings") + struct.pack("<IIQ", ARRAY, STRING, MAX_ITEMS + 1)])
    path = write(tmp_path / "many.gguf", head, sparse_size=len(head) + 8 * (MAX_ITEMS + 2))
    assert f"more than {MAX_ITEMS} keys, tensors and array items" in reason(path)


def test_a_huge_string_is_refused_before_it_is_read(tmp_path: Path) -> None:
    head = gguf_file([gguf_string("x.big") + struct.pack("<IQ", STRING, 1 << 40)])
    path = write(tmp_path / "string.gguf", head, sparse_size=(1 << 40) + 4096)
    outcome = read_in_child(path)
    assert outcome.startswith("GGUFError:") and f"(at most {MAX_STRING_BYTES})" in outcome


def test_a_header_past_the_size_cap_is_refused(tmp_path: Path) -> None:
    # A numeric array is jumped over, not read; the key after it lies past the cap.
    body = gguf_string("x.bytes") + struct.pack("<IIQ", ARRAY, UINT8, MAX_HEADER_BYTES)
    path = write(tmp_path / "huge.gguf", gguf_file([body], n_kv=2), sparse_size=MAX_HEADER_BYTES + (1 << 20))
    assert f"header larger than {MAX_HEADER_BYTES >> 20} MiB" in reason(path)


def test_superscript_digits_are_not_a_layer_index(tmp_path: Path) -> None:
    # "²".isdigit() is true and int("²") raises: the file must read, the tensor belongs to no layer.
    names = ("blk.0.attn_q.weight", "blk.².attn_q.weight", "blk.1.attn_q.weight")
    path = write(tmp_path / "super.gguf", small_model(tensor_names=names, file_type=None))
    header = read_gguf_header(path)
    assert [t.layer for t in header.tensors] == [0, None, 1]
    assert header.quantization == "F32"
    assert memory_profile(header).n_layer == 2
    catalog = build_catalog([path])
    assert [g.name for g in catalog.groups] == ["Small"]


def test_a_layer_index_beyond_the_limit_does_not_size_the_tables(tmp_path: Path) -> None:
    names = ("blk.0.attn_q.weight", f"blk.{10**15}.attn_q.weight", f"blk.{MAX_LAYERS}.x.weight")
    header = read_gguf_header(write(tmp_path / "far.gguf", small_model(tensor_names=names)))
    assert [t.layer for t in header.tensors] == [0, None, None]
    assert len(header.layer_weight_bytes) == 2
    profile = memory_profile(header)
    assert len(profile.layer_bytes) == 2
    assert header.other_weight_bytes == 2 * 128


def test_an_implausible_block_count_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "layers.gguf", small_model(block_count=10**12))
    assert "implausible llama.block_count 1000000000000" in reason(path)
    assert build_catalog([path]).unreadable[0].reason == reason(path)


def test_a_header_from_elsewhere_with_a_huge_block_count_plans_as_unknown(tmp_path: Path) -> None:
    good = read_gguf_header(write(tmp_path / "ok.gguf", small_model()))
    forged = GGUFHeader(
        path=good.path,
        version=3,
        kv={**good.kv, "llama.block_count": 10**12},
        tensors=good.tensors,
        alignment=good.alignment,
        data_offset=good.data_offset,
        file_size=good.file_size,
    )
    assert forged.block_count == 0
    assert forged.head_count_per_layer() == ()
    assert memory_profile(forged).n_layer == 0


def test_per_layer_arrays_of_the_wrong_kind_mean_unknown(tmp_path: Path) -> None:
    extra = [
        kv_array("llama.feed_forward_length", STRING, ["a", "b"]),
        kv_array("llama.attention.head_count_kv", UINT32, []),
    ]
    header = read_gguf_header(write(tmp_path / "odd.gguf", small_model(extra_kvs=extra)))
    assert header.feed_forward_length is None
    assert header.head_count_kv == 4  # falls back to head_count
    assert memory_profile(header).n_ff == 0


def test_truncation_while_the_header_is_read_is_an_error_not_a_signal(tmp_path: Path) -> None:
    tokens = [f"token-{i}" for i in range(6000)]
    data = gguf_file(
        [kv("general.architecture", STRING, "llama"), kv_array("tokenizer.ggml.tokens", STRING, tokens)],
        [tensor_info("output.weight", (32,))],
        data=b"\0" * 128,
    )
    path = write(tmp_path / "shrinking.gguf", data)
    # The first digest of the vocabulary happens mid-parse: the file is cut right then, as
    # another program truncating it would.
    prelude = f"""
        import hashlib, os
        real = hashlib.sha256
        def cutting(*args):
            hashlib.sha256 = real
            os.truncate({str(path)!r}, 64)
            return real(*args)
        hashlib.sha256 = cutting
        """
    outcome = read_in_child(path, prelude)
    assert outcome.startswith("GGUFError:") and "shrank" in outcome


def test_a_fifo_or_a_device_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    assert "FIFO" in reason(fifo)
    zero = tmp_path / "zero.gguf"
    zero.symlink_to("/dev/zero")
    assert "character device" in reason(zero)


def test_one_bad_file_leaves_the_rest_of_the_scan(tmp_path: Path) -> None:
    good = write(tmp_path / "good.gguf", small_model(name="Good"))
    bombs = {
        "deep.gguf": gguf_file([nested_array_kv("x.deep", 2000)]),
        "super.gguf": small_model(name="Super", tensor_names=("blk.².x",), file_type=None),
        "far.gguf": small_model(name="Far", tensor_names=(f"blk.{10**15}.x",), file_type=None),
        "wide.gguf": gguf_file([kv_array("x.strings", STRING, [], length=1 << 40)]),
    }
    paths = [write(tmp_path / name, data) for name, data in bombs.items()]
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    catalog = build_catalog([*paths, fifo, good])
    assert {g.name for g in catalog.groups} == {"Good", "Super", "Far"}
    reasons = {u.path.name: u.reason for u in catalog.unreadable}
    assert set(reasons) == {"deep.gguf", "wide.gguf", "pipe.gguf"}
    assert "nested" in reasons["deep.gguf"]
    assert "truncated" in reasons["wide.gguf"]
    assert "FIFO" in reasons["pipe.gguf"]


# Found by the fuzzer (tests/fuzz/test_fuzz_gguf.py) ----------------------------------------


def test_a_per_layer_head_count_without_a_block_count_plans(tmp_path: Path) -> None:
    # memory_profile zipped per-layer tables of different lengths: a ValueError in fit planning.
    extra = [kv_array("llama.attention.head_count_kv", UINT32, [0])]
    path = write(tmp_path / "nolayers.gguf", small_model(block_count=None, extra_kvs=extra))
    header = read_gguf_header(path)
    assert header.block_count == 0
    assert header.head_count_kv_per_layer() == ()
    assert memory_profile(header).n_layer == 0


def test_a_boolean_alignment_is_refused(tmp_path: Path) -> None:
    # True passed as alignment 1, and the header store then refused the header it had written.
    path = write(tmp_path / "align.gguf", small_model(extra_kvs=[kv("general.alignment", BOOL, True)]))
    assert "invalid general.alignment True" in reason(path)

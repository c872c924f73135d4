"""GGUF files for the model tests, written with the `gguf` package.

`write_model` covers what the shared tiny-llama factory does not: quantized tensors, per-layer
KV head counts, sliding windows, tied embeddings, missing metadata, split files, big-endian.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFEndian, GGUFWriter, LlamaFileType
from gguf.quants import quantize

Q = GGMLQuantizationType


@dataclass(frozen=True)
class ModelSpec:
    arch: str = "llama"
    name: str | None = "test-model"
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int | tuple[int, ...] = 2
    n_ff: int = 128
    n_vocab: int = 300
    ctx_train: int = 2048
    weight_type: GGMLQuantizationType = Q.F16
    file_type: int | None = int(LlamaFileType.MOSTLY_F16)
    tied: bool = False
    sliding_window: int | None = None
    key_length: int | None = None
    chat_template: str | None = "{{ messages }}"
    parameter_count: int | None = None
    finetune: str | None = None
    split_max_tensors: int = 0
    endian: GGUFEndian = GGUFEndian.LITTLE
    merges: int = 0
    last_token_suffix: str = ""
    """Appended to the last token: a vocabulary of the same size whose bytes differ."""
    extra_kv: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


def _matrix(rng: np.random.Generator, rows: int, cols: int, qtype: GGMLQuantizationType) -> np.ndarray:
    data = (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)
    try:
        return quantize(data, qtype)
    except NotImplementedError:
        # No reference quantizer in gguf-py for this type: random bytes of the right size.
        block, size = GGML_QUANT_SIZES[qtype]
        return rng.integers(0, 255, (rows, cols // block * size), dtype=np.uint8)


def write_model(path: Path, spec: ModelSpec = ModelSpec()) -> list[Path]:
    """Write `spec` to `path` (or to ``stem-0000N-of-0000M.gguf`` shards); return the files."""
    rng = np.random.default_rng(spec.seed)
    writer = GGUFWriter(str(path), spec.arch, endianess=spec.endian, split_max_tensors=spec.split_max_tensors)
    if spec.name is not None:
        writer.add_name(spec.name)
    if spec.finetune is not None:
        writer.add_string("general.finetune", spec.finetune)
    writer.add_context_length(spec.ctx_train)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layer)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    if isinstance(spec.n_head_kv, tuple):
        writer.add_head_count_kv(list(spec.n_head_kv))
    else:
        writer.add_head_count_kv(spec.n_head_kv)
    if spec.key_length is not None:
        writer.add_key_length(spec.key_length)
        writer.add_value_length(spec.key_length)
    if spec.sliding_window is not None:
        writer.add_sliding_window(spec.sliding_window)
    if spec.file_type is not None:
        writer.add_file_type(spec.file_type)
    if spec.parameter_count is not None:
        writer.add_uint64("general.parameter_count", spec.parameter_count)
    writer.add_tokenizer_model("llama")
    tokens = [f"tok{i}" for i in range(spec.n_vocab)]
    tokens[-1] += spec.last_token_suffix
    writer.add_token_list(tokens)
    writer.add_token_scores([-float(i) for i in range(spec.n_vocab)])
    writer.add_token_types([1] * spec.n_vocab)
    if spec.merges:
        writer.add_token_merges([f"t{i} o{i}" for i in range(spec.merges)])
    if spec.chat_template is not None:
        writer.add_chat_template(spec.chat_template)
    for key, value in spec.extra_kv.items():
        writer.add_key_value(key, value[0], value[1])

    head_dim = spec.key_length or spec.n_embd // spec.n_head
    kv_heads = spec.n_head_kv if isinstance(spec.n_head_kv, tuple) else (spec.n_head_kv,) * spec.n_layer
    norm = np.ones(spec.n_embd, dtype=np.float32)
    writer.add_tensor(
        "token_embd.weight",
        _matrix(rng, spec.n_vocab, spec.n_embd, spec.weight_type),
        raw_dtype=spec.weight_type,
    )
    for i in range(spec.n_layer):
        wt = spec.weight_type
        writer.add_tensor(f"blk.{i}.attn_norm.weight", norm)
        writer.add_tensor(
            f"blk.{i}.attn_q.weight", _matrix(rng, spec.n_head * head_dim, spec.n_embd, wt), raw_dtype=wt
        )
        if kv_heads[i]:
            kv = kv_heads[i] * head_dim
            writer.add_tensor(f"blk.{i}.attn_k.weight", _matrix(rng, kv, spec.n_embd, wt), raw_dtype=wt)
            writer.add_tensor(f"blk.{i}.attn_v.weight", _matrix(rng, kv, spec.n_embd, wt), raw_dtype=wt)
        writer.add_tensor(
            f"blk.{i}.attn_output.weight", _matrix(rng, spec.n_embd, spec.n_head * head_dim, wt), raw_dtype=wt
        )
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", norm)
        writer.add_tensor(f"blk.{i}.ffn_up.weight", _matrix(rng, spec.n_ff, spec.n_embd, wt), raw_dtype=wt)
        writer.add_tensor(f"blk.{i}.ffn_down.weight", _matrix(rng, spec.n_embd, spec.n_ff, wt), raw_dtype=wt)
    writer.add_tensor("output_norm.weight", norm)
    if not spec.tied:
        writer.add_tensor(
            "output.weight",
            _matrix(rng, spec.n_vocab, spec.n_embd, spec.weight_type),
            raw_dtype=spec.weight_type,
        )

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    files = writer.format_shard_names(path)
    writer.close()
    return files

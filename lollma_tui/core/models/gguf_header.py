"""Read a GGUF file's header: metadata, tensor table and the sizes derived from them.

`GGUFHeader` is the parsed header with its derived views (architecture, hyperparameters,
quantization, per-layer sizes); the byte-level walk that fills it is in `gguf_header_reader`,
whose public names are re-exported here. Like the reader, this module imports nothing heavier
than the standard library, because it runs on the app's start-up path.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from lollma_tui.core.models.gguf_header_reader import (
    DEFAULT_ALIGNMENT,
    MAGIC,
    SMALL_ARRAY_LIMIT,
    SUPPORTED_VERSIONS,
    T_ARRAY,
    T_BOOL,
    T_FLOAT32,
    T_FLOAT64,
    T_INT8,
    T_INT16,
    T_INT32,
    T_INT64,
    T_STRING,
    T_UINT8,
    T_UINT16,
    T_UINT32,
    T_UINT64,
    VALUE_TYPE_NAMES,
    ArrayInfo,
    GGUFError,
    KVValue,
    Scalar,
    TensorInfo,
    quick_check,
    read_raw_header,
)
from lollma_tui.core.models.gguf_limits import MAX_LAYERS
from lollma_tui.core.models.quant_types import FILE_TYPE_NAMES, ggml_type_name

__all__ = [
    "DEFAULT_ALIGNMENT",
    "MAGIC",
    "MAX_LAYERS",
    "SMALL_ARRAY_LIMIT",
    "SUPPORTED_VERSIONS",
    "T_ARRAY",
    "T_BOOL",
    "T_FLOAT32",
    "T_FLOAT64",
    "T_INT8",
    "T_INT16",
    "T_INT32",
    "T_INT64",
    "T_STRING",
    "T_UINT8",
    "T_UINT16",
    "T_UINT32",
    "T_UINT64",
    "VALUE_TYPE_NAMES",
    "ArrayInfo",
    "GGUFError",
    "GGUFHeader",
    "KVValue",
    "Scalar",
    "TensorInfo",
    "merge_split_headers",
    "quick_check",
    "read_gguf_header",
]


@dataclass(frozen=True, eq=False)
class GGUFHeader:
    """A parsed header. Compared by identity, so it can key caches."""

    path: Path
    version: int
    kv: Mapping[str, KVValue]
    tensors: tuple[TensorInfo, ...]
    alignment: int
    data_offset: int
    """Where tensor data starts (in the first file, for split models)."""
    file_size: int
    """Bytes on disk, summed over all parts for split models."""
    big_endian: bool = False
    parts: tuple[Path, ...] = ()
    """All files of a split model, first part first; empty for a single file."""

    # --- raw access -----------------------------------------------------------------------

    @property
    def tensor_count(self) -> int:
        return len(self.tensors)

    def get(self, key: str, default: KVValue | None = None) -> KVValue | None:
        return self.kv.get(key, default)

    def arch_get(self, suffix: str) -> KVValue | None:
        """The value of ``{architecture}.{suffix}``."""
        arch = self.architecture
        return self.kv.get(f"{arch}.{suffix}") if arch else None

    def _int(self, value: KVValue | None) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _str(self, key: str) -> str | None:
        value = self.kv.get(key)
        return value if isinstance(value, str) else None

    def _int_or_layers(self, suffix: str) -> int | tuple[int, ...] | None:
        value = self.arch_get(suffix)
        if isinstance(value, tuple):
            # Anything but a non-empty list of integers means the file does not say.
            if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                return tuple(int(v) for v in value)
            return None
        return self._int(value)

    # --- identity -------------------------------------------------------------------------

    @property
    def architecture(self) -> str | None:
        return self._str("general.architecture")

    @property
    def name(self) -> str | None:
        return self._str("general.name")

    @property
    def basename(self) -> str | None:
        return self._str("general.basename")

    @property
    def finetune(self) -> str | None:
        return self._str("general.finetune")

    @property
    def size_label(self) -> str | None:
        return self._str("general.size_label")

    @property
    def file_type(self) -> int | None:
        return self._int(self.kv.get("general.file_type"))

    @property
    def split_index(self) -> int:
        return self._int(self.kv.get("split.no")) or 0

    @property
    def split_count(self) -> int:
        return self._int(self.kv.get("split.count")) or 1

    @cached_property
    def quantization(self) -> str:
        """The quantization as people write it: "Q4_K_M", "Q8_0", "F16", "BF16", "IQ4_XS"..."""
        file_type = self.file_type
        if file_type is not None and file_type in FILE_TYPE_NAMES:
            return FILE_TYPE_NAMES[file_type]
        return self._guessed_quantization

    @property
    def quantization_guessed(self) -> bool:
        """True when general.file_type is missing or unknown and the name comes from tensor types."""
        file_type = self.file_type
        return file_type is None or file_type not in FILE_TYPE_NAMES

    @cached_property
    def _guessed_quantization(self) -> str:
        # Weighted by elements over the matrices of the repeating layers: the embedding and
        # output matrices are often kept at a different type, and norms are always F32.
        counts: Counter[int] = Counter()
        for tensor in self.tensors:
            if tensor.layer is not None and len(tensor.shape) >= 2:
                counts[tensor.ggml_type] += tensor.n_elements
        if not counts:
            for tensor in self.tensors:
                counts[tensor.ggml_type] += tensor.n_elements
        if not counts:
            return "unknown"
        return ggml_type_name(counts.most_common(1)[0][0])

    # --- hyperparameters ------------------------------------------------------------------

    @property
    def block_count(self) -> int:
        """Number of repeating layers (n_layer); 0 when the file does not say (or says nonsense:
        the reader refuses such files, and per-layer tables must stay small)."""
        count = self._int(self.arch_get("block_count")) or 0
        return count if 0 <= count <= MAX_LAYERS else 0

    @property
    def context_length(self) -> int | None:
        return self._int(self.arch_get("context_length"))

    @property
    def embedding_length(self) -> int | None:
        return self._int(self.arch_get("embedding_length"))

    @property
    def feed_forward_length(self) -> int | tuple[int, ...] | None:
        return self._int_or_layers("feed_forward_length")

    @property
    def head_count(self) -> int | tuple[int, ...] | None:
        return self._int_or_layers("attention.head_count")

    @property
    def head_count_kv(self) -> int | tuple[int, ...] | None:
        """An int, or one value per layer for models that vary it (0 marks a recurrent layer)."""
        value = self._int_or_layers("attention.head_count_kv")
        return self.head_count if value is None else value

    def head_count_per_layer(self) -> tuple[int, ...]:
        return _per_layer(self.head_count, self.block_count)

    def head_count_kv_per_layer(self) -> tuple[int, ...]:
        return _per_layer(self.head_count_kv, self.block_count)

    @property
    def key_length(self) -> int | None:
        """Head dimension of K; defaults to embedding_length / head_count."""
        return self._int(self.arch_get("attention.key_length")) or self._default_head_dim

    @property
    def value_length(self) -> int | None:
        """Head dimension of V; defaults to embedding_length / head_count."""
        return self._int(self.arch_get("attention.value_length")) or self._default_head_dim

    @property
    def _default_head_dim(self) -> int | None:
        heads = self.head_count
        n_embd = self.embedding_length
        n_head = max(heads, default=0) if isinstance(heads, tuple) else (heads or 0)
        return n_embd // n_head if n_embd and n_head else None

    @property
    def sliding_window(self) -> int | None:
        return self._int(self.arch_get("attention.sliding_window"))

    @property
    def sliding_window_pattern(self) -> int | tuple[bool, ...] | None:
        """A period (every n-th layer is full attention) or one flag per layer (True = windowed)."""
        value = self.arch_get("attention.sliding_window_pattern")
        if isinstance(value, tuple):
            return tuple(bool(v) for v in value)
        return self._int(value)

    @property
    def expert_count(self) -> int | None:
        return self._int(self.arch_get("expert_count"))

    @property
    def expert_used_count(self) -> int | None:
        return self._int(self.arch_get("expert_used_count"))

    @property
    def vocab_size(self) -> int | None:
        tokens = self.kv.get("tokenizer.ggml.tokens")
        if isinstance(tokens, ArrayInfo):
            return tokens.length
        if isinstance(tokens, tuple):
            return len(tokens)
        embd = self.tensor("token_embd.weight")
        return embd.shape[1] if embd is not None and len(embd.shape) >= 2 else None

    @property
    def merges_count(self) -> int:
        merges = self.kv.get("tokenizer.ggml.merges")
        if isinstance(merges, ArrayInfo):
            return merges.length
        return len(merges) if isinstance(merges, tuple) else 0

    @property
    def chat_template(self) -> str | None:
        return self._str("tokenizer.chat_template")

    @property
    def has_chat_template(self) -> bool:
        return self.chat_template is not None

    # --- tensors and sizes ----------------------------------------------------------------

    def tensor(self, name: str) -> TensorInfo | None:
        return self._tensors_by_name.get(name)

    @cached_property
    def _tensors_by_name(self) -> dict[str, TensorInfo]:
        return {t.name: t for t in self.tensors}

    @cached_property
    def parameter_count(self) -> int:
        """general.parameter_count, or the number of elements over all tensors."""
        stored = self._int(self.kv.get("general.parameter_count"))
        return stored if stored else sum(t.n_elements for t in self.tensors)

    @cached_property
    def weight_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    @cached_property
    def layer_weight_bytes(self) -> tuple[int, ...]:
        """Bytes of ``blk.N.*`` tensors per layer, index N."""
        sizes = [0] * self.block_count
        for tensor in self.tensors:
            layer = tensor.layer
            if layer is None:
                continue
            if layer >= len(sizes):
                sizes.extend([0] * (layer + 1 - len(sizes)))
            sizes[layer] += tensor.n_bytes
        return tuple(sizes)

    @property
    def tied_embeddings(self) -> bool:
        """True when there is no output.weight and the output head reuses token_embd.weight."""
        return self.tensor("output.weight") is None and self.tensor("token_embd.weight") is not None

    @cached_property
    def output_norm_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors if t.name.startswith("output_norm."))

    @cached_property
    def output_head_bytes(self) -> int:
        """output.weight (or token_embd.weight when tied) plus the final norm."""
        own = sum(t.n_bytes for t in self.tensors if t.name.startswith("output."))
        if self.tied_embeddings:
            own += self.token_embedding_bytes
        return own + self.output_norm_bytes

    @cached_property
    def token_embedding_bytes(self) -> int:
        embd = self.tensor("token_embd.weight")
        return embd.n_bytes if embd is not None else 0

    @cached_property
    def other_weight_bytes(self) -> int:
        """Tensors outside the layers, the output head and the token embedding."""
        head = sum(t.n_bytes for t in self.tensors if t.name.startswith(("output.", "output_norm.")))
        return self.weight_bytes - sum(self.layer_weight_bytes) - head - self.token_embedding_bytes


def _per_layer(value: int | tuple[int, ...] | None, n_layer: int) -> tuple[int, ...]:
    """Exactly `n_layer` values: a shorter list repeats its last value, a longer one is cut (its
    callers zip it with other per-layer tables)."""
    if isinstance(value, tuple):
        padded = value + (value[-1] if value else 0,) * max(0, n_layer - len(value))
        return padded[:n_layer]
    return (value or 0,) * n_layer


def read_gguf_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """Parse the header of the GGUF file at `path`. Raises GGUFError with a one-line reason."""
    raw = read_raw_header(path)
    return GGUFHeader(
        path=raw.path,
        version=raw.version,
        kv=raw.kv,
        tensors=raw.tensors,
        alignment=raw.alignment,
        data_offset=raw.data_offset,
        file_size=raw.file_size,
        big_endian=raw.big_endian,
    )


SPLIT_NAME = re.compile(r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
"""llama.cpp's names for the parts of a split model (``…-00001-of-00004.gguf``)."""


def split_parts(path: Path) -> tuple[Path, ...]:
    """Every file of the split model `path` names a part of, by those names; `(path,)` for a
    model in one file."""
    match = SPLIT_NAME.match(path.name)
    if match is None:
        return (path,)
    count = int(match["count"])
    return tuple(path.with_name(f"{match['base']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1))


def merge_split_headers(parts: Sequence[GGUFHeader]) -> GGUFHeader:
    """One header for a model split over several files (``*-00001-of-0000N.gguf``).

    Metadata comes from the first part; tensors from all parts (each tagged with its part index,
    offsets stay relative to its own file); file_size is the total.
    """
    if not parts:
        raise ValueError("no parts to merge")
    ordered = sorted(parts, key=lambda h: h.split_index)
    tensors = tuple(
        TensorInfo(t.name, t.ggml_type, t.shape, t.n_elements, t.n_bytes, t.offset, part=index)
        for index, header in enumerate(ordered)
        for t in header.tensors
    )
    first = ordered[0]
    return GGUFHeader(
        path=first.path,
        version=first.version,
        kv=first.kv,
        tensors=tensors,
        alignment=first.alignment,
        data_offset=first.data_offset,
        file_size=sum(h.file_size for h in ordered),
        big_endian=first.big_endian,
        parts=tuple(h.path for h in ordered),
    )

"""Which ggml type llama.cpp gives each tensor of a quantization, and so how big the file gets.

A port of llama.cpp's type choice (``src/llama-quant.cpp`` of the llama.cpp that
llama-cpp-python 0.3.36 vendors; line numbers below are that file's) for the file types
`quantize.TARGETS` offers, without an importance matrix or per-tensor overrides, as the
quantize worker runs it. The point is the rows that do not fit a type's block: llama.cpp
writes those matrices in another type (``tensor_type_fallback``), so a "Q6_K" file of a model
with 576-wide rows is really Q8_0, and its size is Q8_0's. Guessing average bits per weight
hid both.

Left out, because they concern rare models and small tensors: the GLM5-next and 70B-llama
exceptions, and the branches of file types that need an importance matrix (refused earlier).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from lollma_tui.core.models.gguf_header import GGUFHeader
from lollma_tui.core.models.gguf_header_reader import TensorInfo
from lollma_tui.core.models.gguf_limits import layer_index
from lollma_tui.core.models.quant_types import GGML_TYPE_IDS, GGML_TYPES

DEFAULT_TYPE: dict[str, str] = {
    "F32": "F32",
    "F16": "F16",
    "BF16": "BF16",
    "Q8_0": "Q8_0",
    "Q6_K": "Q6_K",
    "Q5_K_M": "Q5_K",
    "Q5_K_S": "Q5_K",
    "Q5_1": "Q5_1",
    "Q5_0": "Q5_0",
    "Q4_K_M": "Q4_K",
    "Q4_K_S": "Q4_K",
    "Q4_1": "Q4_1",
    "Q4_0": "Q4_0",
    "IQ4_NL": "IQ4_NL",
    "IQ4_XS": "IQ4_XS",
    "Q3_K_L": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_S": "Q3_K",
    "IQ3_M": "IQ3_S",
    "IQ3_S": "IQ3_S",
    "Q2_K": "Q2_K",
}
"""File type -> the tensor type most matrices get (``llama_ftype_get_default_type``, 881-924)."""

FALLBACK: dict[str, str] = {
    "IQ1_S": "IQ4_NL",
    "IQ1_M": "IQ4_NL",
    "IQ2_XXS": "IQ4_NL",
    "IQ2_XS": "IQ4_NL",
    "IQ2_S": "IQ4_NL",
    "IQ3_XXS": "IQ4_NL",
    "IQ3_S": "IQ4_NL",
    "IQ4_XS": "IQ4_NL",
    "Q2_K": "Q4_0",
    "Q3_K": "Q4_0",
    "TQ1_0": "Q4_0",
    "TQ2_0": "Q4_0",
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}
"""A matrix whose rows are not a multiple of its type's block gets this type instead
(``tensor_type_fallback``, 390-443: the switch at 401-428). A type of 32-element blocks keeps
its type; then, if the rows do not fit the result's block either, F16 (429-439)."""

# llama.cpp leaves these as they are (``tensor_allows_quantization``, 287-383): the ones a
# GGUF of a text model can hold, matched as the C++ does (substrings, or whole names).
_NOT_QUANTIZED_PARTS = (
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_",
    "attn_rel_b.weight",
    ".position_embd",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
)
_NOT_QUANTIZED_NAMES = frozenset({"position_embd.weight", "token_types.weight"})
_VERSION_KEY = "general.quantization_version"
_VERSION_KEY_BYTES = 8 + len(_VERSION_KEY) + 4 + 4  # name length, name, value type, uint32


@dataclass(frozen=True, slots=True)
class OutputEstimate:
    n_bytes: int
    types: dict[str, str]
    """Tensor name -> the ggml type llama.cpp writes it in."""
    matrices: int
    """Tensors llama.cpp quantizes."""
    misfits: Counter[str]
    """Written type -> how many matrices whose rows do not fit the target's block get it."""
    misfit_rows: tuple[int, ...]


def _n_dims(tensor: TensorInfo) -> int:
    # ggml_n_dims: trailing dimensions of 1 do not count.
    dims = len(tensor.shape)
    while dims > 1 and tensor.shape[dims - 1] == 1:
        dims -= 1
    return dims


def _quantized(name: str, n_dims: int) -> bool:
    if n_dims < 2 or not name.endswith("weight") or name in _NOT_QUANTIZED_NAMES:
        return False
    return not any(part in name for part in _NOT_QUANTIZED_PARTS)


def _category(name: str) -> str:
    """``tensor_get_category`` (119-154); attn_qkv and attn_kv_b act as attn_v (157-161)."""
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    if any(part in name for part in ("attn_qkv.weight", "attn_kv_b.weight", "attn_v.weight")):
        return "attn_v"
    for part in ("attn_k.weight", "attn_q.weight", "attn_output.weight", "ffn_up", "ffn_gate", "ffn_down"):
        if part in name:
            return part.removesuffix(".weight")
    return "other"


def _block(type_name: str) -> int:
    return GGML_TYPES[GGML_TYPE_IDS[type_name]].block_size


def _more_bits(i_layer: int, n_layers: int) -> bool:
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


class _Chooser:
    """``llama_tensor_get_type_impl`` (446-714) for the offered file types, no imatrix."""

    def __init__(self, header: GGUFHeader, ftype: str, tensors: list[TensorInfo]) -> None:
        self.ftype = ftype
        self.falcon = header.architecture == "falcon"
        heads, kv_heads = header.head_count_per_layer()[:1], header.head_count_kv_per_layer()[:1]
        self.n_gqa = heads[0] // kv_heads[0] if heads and kv_heads and kv_heads[0] else 0
        self.n_expert = header.expert_count or 0
        self.tied = all(t.name != "output.weight" for t in tensors)  # 936-938
        self.n_wv = sum(_category(t.name) == "attn_v" for t in tensors)
        self.n_layer = header.block_count  # n_ffn_down = n_layer_all (940)
        self.i_wv = 0
        self.i_down = 0

    def choose(self, tensor: TensorInfo, new_type: str) -> str:
        category, ftype, row = _category(tensor.name), self.ftype, tensor.shape[0]
        if category == "output" or (self.tied and category == "token_embd"):
            if self.falcon or row % _block(new_type):
                return "Q8_0"
            return new_type if new_type == "Q8_0" else "Q6_K"
        if category == "attn_v":
            if ftype == "Q2_K":
                new_type = "Q4_K" if self.n_gqa >= 4 else "Q3_K"
            elif (ftype == "IQ3_S" and self.n_gqa >= 4) or ftype == "IQ3_M":
                new_type = "Q4_K"
            elif ftype == "Q3_K_M":
                new_type = "Q5_K" if self.i_wv < 2 else "Q4_K"
            elif ftype == "Q3_K_L" or (ftype in ("IQ4_NL", "IQ4_XS") and self.n_gqa >= 4):
                new_type = "Q5_K"
            elif ftype in ("Q4_K_M", "Q5_K_M") and _more_bits(self.i_wv, self.n_wv):
                new_type = "Q6_K"
            elif ftype == "Q4_K_S" and self.i_wv < 4:
                new_type = "Q5_K"
            if self.n_expert == 8:
                new_type = "Q8_0"
            self.i_wv += 1
        elif category == "attn_k" and self.n_expert == 8:
            new_type = "Q8_0"
        elif category == "ffn_down":
            new_type = self._ffn_down(tensor, new_type)
        elif category == "attn_output":
            if not self.falcon and self.n_expert == 8:
                eight = ("Q2_K", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S", "IQ3_M", "IQ4_XS")
                new_type = "Q5_K" if ftype in eight else new_type
            elif not self.falcon:
                mix = {"Q2_K": "Q3_K", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K", "IQ3_M": "Q4_K"}
                new_type = mix.get(ftype, new_type)
            elif ftype == "Q3_K_L":
                new_type = "Q4_K"
        return new_type

    def _ffn_down(self, tensor: TensorInfo, new_type: str) -> str:
        ftype, n = self.ftype, self.n_layer
        # layer_info: the counter, or the name's layer for mixtures of experts.
        i = (layer_index(tensor.name) or 0) if self.n_expert > 1 else self.i_down
        self.i_down += 1
        if ftype == "Q2_K":
            return "Q3_K"
        if ftype == "Q3_K_M":
            if i < n // 16:
                return "Q5_K"
            return "Q4_K" if not self.falcon or _more_bits(i, n) else "Q3_K"
        if ftype == "IQ3_M" and (i < n // 8 or (self.n_expert == 8 and _more_bits(i, n))):
            return "Q4_K"
        if ftype == "Q3_K_L":
            return "Q4_K" if self.falcon else "Q5_K"
        if ftype == "Q4_K_M":
            if self.falcon:
                return "Q6_K" if i < n // 16 else "Q5_K" if _more_bits(i, n) else "Q4_K"
            return "Q6_K" if _more_bits(i, n) else new_type
        if i < n // 8 and ftype in ("IQ4_NL", "IQ4_XS"):
            return "Q5_K"
        if ftype == "Q5_K_M" and _more_bits(i, n):
            return "Q6_K"
        if ftype == "Q4_K_S" and not self.falcon and i < n // 8:
            return "Q5_K"
        return new_type


def fallback(type_name: str, row: int) -> str:
    """What llama.cpp writes a matrix of `row`-long rows in when asked for `type_name`."""
    if row % _block(type_name) == 0:
        return type_name
    chosen = FALLBACK.get(type_name, type_name)
    return chosen if row % _block(chosen) == 0 else "F16"


def _sort_key(tensor: TensorInfo) -> tuple[int, str]:
    # llama.cpp walks the weights by layer, then name (llama-model-loader.h:54-65, 126); the
    # attn_v and ffn_down counters depend on that order.
    layer = layer_index(tensor.name)
    return (-1 if layer is None else layer, tensor.name)


def estimate_output(header: GGUFHeader, target: str) -> OutputEstimate:
    """The types and size of what llama.cpp writes for `target` (a key of `DEFAULT_TYPE`)."""
    default = DEFAULT_TYPE[target]
    block = _block(default)
    tensors = sorted(header.tensors, key=_sort_key)
    chooser = _Chooser(header, target, tensors)
    mixed = default not in ("F32", "F16", "BF16")  # only quantized types mix (745)
    align = max(1, header.alignment)
    total = header.data_offset
    if _VERSION_KEY not in header.kv:
        # llama.cpp adds this key (1025): the metadata grows by it, padded to the alignment.
        total += -(-_VERSION_KEY_BYTES // align) * align
    types: dict[str, str] = {}
    misfits: Counter[str] = Counter()
    rows: set[int] = set()
    matrices = 0
    for tensor in tensors:
        if tensor.n_elements < 1 or not _quantized(tensor.name, _n_dims(tensor)):
            total += -(-tensor.n_bytes // align) * align
            continue
        matrices += 1
        row = tensor.shape[0]
        chosen = fallback(chooser.choose(tensor, default), row) if mixed else default
        types[tensor.name] = chosen
        if row % block:
            misfits[chosen] += 1
            rows.add(row)
        layout = GGML_TYPES[GGML_TYPE_IDS[chosen]]
        n_bytes = tensor.n_elements // layout.block_size * layout.type_size
        total += -(-n_bytes // align) * align  # each tensor padded to the alignment (1368)
    return OutputEstimate(total, types, matrices, misfits, tuple(sorted(rows)))


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def fallback_warning(estimate: OutputEstimate, target: str) -> str | None:
    """One line on the matrices that cannot be `target`, or None when every row fits."""
    if not estimate.misfits:
        return None
    count = sum(estimate.misfits.values())
    written = estimate.misfits.most_common()
    as_types = written[0][0] if len(written) == 1 else _and([f"{name} ({n})" for name, n in written])
    rows = _and([str(row) for row in estimate.misfit_rows])
    return (
        f"{count} of {estimate.matrices} matrices cannot be {target} (rows of {rows} are not a "
        f"multiple of {_block(DEFAULT_TYPE[target])}): llama.cpp writes them as {as_types}"
    )

"""What the fit estimator needs from a GGUF header, gathered in one pass over the tensor table.

A `MemoryProfile` is built once per header (and cached per header object), so every estimate
after that is O(n_layer) and can run on each keypress of a slider. Byte spans of the tensors that
stay on the CPU are kept per layer, because with mmap llama.cpp keeps resident only the span of
the mapped file those tensors cover (see `fit_estimate`).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Final

from lollma_tui.core.models.gguf_header import GGUFHeader
from lollma_tui.core.models.quant_types import GGML_TYPE_IDS

_REPACK_TYPES: Final = frozenset(GGML_TYPE_IDS[name] for name in ("Q4_0", "Q4_K", "IQ4_NL"))

# Architectures whose loader in llama.cpp sets a sliding-window pattern when the GGUF has none:
# (period, dense_first). Period n means every n-th layer uses full attention.
_SWA_PATTERNS: Final[dict[str, tuple[int, bool]]] = {
    "gemma2": (2, False),
    "gpt-oss": (2, False),
    "cohere2": (4, False),
    "exaone4": (4, False),
    "gemma3n": (5, False),
    "gemma3": (6, False),
    "gemma-embedding": (6, False),
    "smallthinker": (4, True),
}
_RECURRENT_ARCHS: Final = frozenset({"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"})


@dataclass(frozen=True, slots=True)
class _Span:
    part: int
    start: int
    end: int


@dataclass(frozen=True)
class MemoryProfile:
    """What the estimator needs from a header, precomputed once."""

    architecture: str
    n_layer: int
    layer_bytes: tuple[int, ...]
    layer_repack_bytes: tuple[int, ...]
    head_bytes: int
    """output (or the tied token embedding) + output norm."""
    head_repack_bytes: int
    head_matrix_bytes: int
    token_embd_bytes: int
    other_bytes: int
    tied_embeddings: bool
    largest_layer_matrix: int
    kv_k_elems: tuple[int, ...]
    """Per layer: K elements per cell (n_head_kv × key_length)."""
    kv_v_elems: tuple[int, ...]
    swa_layers: tuple[bool, ...]
    n_swa: int
    n_embd: int
    n_head: int
    head_dim: int
    n_ff: int
    n_vocab: int
    n_merges: int
    n_ctx_train: int | None
    recurrent: bool
    latent_attention: bool
    """DeepSeek-style MLA: the cache holds a compressed latent, not K and V."""
    layer_spans: tuple[tuple[_Span, ...], ...] = field(repr=False)
    """Per layer: byte spans (one per part) of its tensors that stay mapped on the CPU."""
    embd_spans: tuple[_Span, ...] = field(repr=False)
    head_spans: tuple[_Span, ...] = field(repr=False)
    other_spans: tuple[_Span, ...] = field(repr=False)

    @classmethod
    def from_header(cls, header: GGUFHeader) -> MemoryProfile:
        return _profile(header)


_PROFILES: weakref.WeakKeyDictionary[GGUFHeader, MemoryProfile] = weakref.WeakKeyDictionary()


def memory_profile(model: GGUFHeader | MemoryProfile) -> MemoryProfile:
    """The profile for `model`, built once per header object."""
    if isinstance(model, MemoryProfile):
        return model
    profile = _PROFILES.get(model)
    if profile is None:
        profile = _PROFILES[model] = _profile(model)
    return profile


def swa_layer_flags(header: GGUFHeader) -> tuple[bool, ...]:
    """Which layers use sliding-window attention, the way llama.cpp decides it."""
    n_layer = header.block_count
    window = header.sliding_window
    if not window:
        return (False,) * n_layer
    pattern = header.sliding_window_pattern
    if isinstance(pattern, tuple):
        return (pattern + (False,) * n_layer)[:n_layer]
    dense_first = False
    if pattern is None:
        known = _SWA_PATTERNS.get(header.architecture or "")
        if known is None:
            # llama.cpp ignores the window for architectures it has no pattern for (Phi-3,
            # Mistral): count them as full attention, which can only overestimate.
            return (False,) * n_layer
        pattern, dense_first = known
    if pattern == 0:
        return (True,) * n_layer
    if dense_first:
        return tuple(il % pattern != 0 for il in range(n_layer))
    return tuple(il % pattern < pattern - 1 for il in range(n_layer))


def _merge_spans(spans: list[_Span]) -> tuple[_Span, ...]:
    by_part: dict[int, _Span] = {}
    for span in spans:
        seen = by_part.get(span.part)
        if seen is None:
            by_part[span.part] = span
        else:
            by_part[span.part] = _Span(span.part, min(seen.start, span.start), max(seen.end, span.end))
    return tuple(by_part.values())


def _profile(header: GGUFHeader) -> MemoryProfile:
    n_layer = header.block_count
    layer_bytes = list(header.layer_weight_bytes[:n_layer]) + [0] * max(
        0, n_layer - len(header.layer_weight_bytes)
    )
    layer_repack = [0] * n_layer
    layer_span_lists: list[list[_Span]] = [[] for _ in range(n_layer)]
    embd_spans: list[_Span] = []
    head_spans: list[_Span] = []
    other_spans: list[_Span] = []
    head_repack = head_matrix = largest_matrix = 0
    for tensor in header.tensors:
        is_matrix = len(tensor.shape) >= 2 and tensor.shape[1] > 1
        repack = is_matrix and tensor.ggml_type in _REPACK_TYPES and tensor.shape[1] % 8 == 0
        span = _Span(tensor.part, tensor.offset, tensor.offset + tensor.n_bytes)
        layer = tensor.layer
        if layer is not None and layer < n_layer:
            if repack:
                layer_repack[layer] += tensor.n_bytes
            else:
                layer_span_lists[layer].append(span)
            if is_matrix:
                largest_matrix = max(largest_matrix, tensor.n_bytes)
        elif tensor.name.startswith("token_embd."):
            embd_spans.append(span)
        elif tensor.name.startswith(("output.", "output_norm.")):
            if tensor.name == "output.weight":
                head_matrix = tensor.n_bytes
                if repack:
                    head_repack = tensor.n_bytes
                    continue
            head_spans.append(span)
        else:
            other_spans.append(span)
    if header.tied_embeddings:
        head_matrix = header.token_embedding_bytes

    head_kv = header.head_count_kv_per_layer()
    swa = swa_layer_flags(header)
    key_length = header.key_length or 0
    value_length = header.value_length or 0
    key_length_swa = _int(header.arch_get("attention.key_length_swa")) or key_length
    value_length_swa = _int(header.arch_get("attention.value_length_swa")) or value_length
    kv_k = tuple(h * (key_length_swa if s else key_length) for h, s in zip(head_kv, swa, strict=True))
    kv_v = tuple(h * (value_length_swa if s else value_length) for h, s in zip(head_kv, swa, strict=True))

    feed_forward = header.feed_forward_length
    n_ff = max(feed_forward) if isinstance(feed_forward, tuple) else (feed_forward or 0)
    expert_ff = _int(header.arch_get("expert_feed_forward_length"))
    if header.expert_count and expert_ff:
        n_ff = max(n_ff, expert_ff * (header.expert_used_count or 1))
    heads = header.head_count_per_layer()
    architecture = header.architecture or ""
    return MemoryProfile(
        architecture=architecture,
        n_layer=n_layer,
        layer_bytes=tuple(layer_bytes),
        layer_repack_bytes=tuple(layer_repack),
        head_bytes=header.output_head_bytes,
        head_repack_bytes=head_repack,
        head_matrix_bytes=head_matrix,
        token_embd_bytes=header.token_embedding_bytes,
        other_bytes=header.other_weight_bytes,
        tied_embeddings=header.tied_embeddings,
        largest_layer_matrix=largest_matrix,
        kv_k_elems=kv_k,
        kv_v_elems=kv_v,
        swa_layers=swa,
        n_swa=header.sliding_window or 0,
        n_embd=header.embedding_length or 0,
        n_head=max(heads, default=0),
        head_dim=key_length,
        n_ff=n_ff,
        n_vocab=header.vocab_size or 0,
        n_merges=header.merges_count,
        n_ctx_train=header.context_length,
        recurrent=_is_recurrent(header, architecture),
        latent_attention=header.arch_get("attention.kv_lora_rank") is not None,
        layer_spans=tuple(_merge_spans(spans) for spans in layer_span_lists),
        embd_spans=_merge_spans(embd_spans),
        head_spans=_merge_spans(head_spans),
        other_spans=_merge_spans(other_spans),
    )


def _is_recurrent(header: GGUFHeader, architecture: str) -> bool:
    return architecture in _RECURRENT_ARCHS or any(k.startswith(f"{architecture}.ssm.") for k in header.kv)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def mapped_bytes(p: MemoryProfile, first_gpu_layer: int, head_on_gpu: bool) -> int:
    """Resident bytes of the mapped file(s) with layers from `first_gpu_layer` on (and the head
    when `head_on_gpu`) offloaded: the span of what stays on the CPU."""
    spans: list[_Span] = list(p.embd_spans) + list(p.other_spans)
    for layer in range(first_gpu_layer):
        spans.extend(p.layer_spans[layer])
    if not head_on_gpu:
        spans.extend(p.head_spans)
    return sum(s.end - s.start for s in _merge_spans(spans))

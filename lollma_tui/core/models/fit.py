"""Will this model fit? Memory estimates for llama.cpp loads, from the GGUF header alone.

Pure and cheap: a `MemoryProfile` is built once per header (a pass over the tensor table) and
every estimate after that is O(n_layer), so it can run on each keypress of a slider.

What is exact and what is approximate (calibrated against llama-cpp-python 0.3.36, CPU build,
by reading the buffer sizes llama.cpp logs and the worker's RSS):

* Weights: exact per tensor. ``-ngl N`` puts the LAST N repeating layers on the GPU; the output
  head follows only when N > n_layer. The token embedding always stays in host memory; with tied
  embeddings an offloaded head is a second (GPU) copy of it.
* Mapped weights (mmap): llama.cpp maps each file, prefaults it, then unmaps everything outside
  the byte span of the tensors that stay in host memory. So the resident part is that span,
  header excluded; with full offload only the token embedding's span is left.
* CPU repack: on AVX2/NEON builds llama.cpp copies Q4_0/Q4_K/IQ4_NL matrices of CPU layers into
  an interleaved layout. That copy is extra anonymous memory (the mapped pages stay as well).
* KV cache: exact (matches llama.cpp's log to the byte): cells × Σ_layers n_head_kv × head_dim ×
  bytes(type), n_ctx rounded up to 256. Sliding-window layers keep PAD256(window + n_ubatch) cells
  unless ``swa_full``, which is llama.cpp's library default and what llama-cpp-python uses unless
  told otherwise (llama-server and Ollama turn it off).
* Compute buffer: a fitted model of llama.cpp's worst-case graph (CPU backend; it reproduced the
  logged sizes of the test models within 0.02 MiB):
  ``max(masks + max(attention, ffn), output)`` where masks = T × cells × (4 B, 2 B with flash
  attention) per cache, attention = n_head × cells × T × 4 B (not with flash attention) +
  3 × T × (n_embd + n_head × head_dim) × 4 B, ffn = 4 × T × n_ff × 4 B, output = rows × n_vocab ×
  4 B + 2 × T × n_embd × 4 B, with T = n_ubatch. llama.cpp reserves output rows = T, but a chat
  only ever computes logits for one row and untouched pages never count, so RAM uses rows = 1
  while VRAM (really allocated) uses rows = T. The CPU figure adds the backend's scratch for one
  evaluation (activations converted for quantized dot products, f16 scores without flash
  attention). GPU-side sizes use the same model, untested on a GPU; partial offload adds the
  largest host-side matrix, which the GPU borrows for big batches (an assumption).
* RSS after load and a chat matched within 2 MiB (load) and 1.3% (after a 400-token prompt) on
  the demo model in five configurations; see `estimate_memory`'s usage arguments.
* Fixed costs: a GPU overhead for the CUDA context and workspaces (default 512 MiB; Ollama used
  457 MiB), the worker process itself (Python + llama_cpp, 45 MiB measured), and llama.cpp's
  vocabulary structures (about 160 B per token, measured on a 262k-token vocabulary).
* Not modelled (flagged in `notes` where detectable): recurrent/SSM state, MLA (DeepSeek)
  latent caches, multimodal projectors, several parallel sequences, BPE merge tables (guessed).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from lollma_tui.core.models.gguf_header import GGUFHeader
from lollma_tui.core.models.quant_types import GGML_TYPE_IDS, GGML_TYPES
from lollma_tui.core.settings import AUTO

if TYPE_CHECKING:
    from lollma_tui.core.settings import LoadSettings

MiB: Final = 1 << 20
GiB: Final = 1 << 30

DEFAULT_GPU_OVERHEAD: Final = 512 * MiB
DEFAULT_PROCESS_OVERHEAD: Final = 45 * MiB
"""RSS of the worker process before the model loads (Python, numpy, llama_cpp), as measured."""
LLAMA_FIXED_OVERHEAD: Final = 4 * MiB
"""Backend and thread-pool allocations seen in RSS beyond the buffers llama.cpp reports."""
FIRST_EVAL_OVERHEAD: Final = 4 * MiB
"""RSS that appears with the first evaluation (library code pages, thread stacks, one logits row)."""
VOCAB_BYTES_PER_TOKEN: Final = 160
MERGE_BYTES: Final = 120
"""Per BPE merge rule: a guess (two strings and a map node), not measured."""

KV_CACHE_TYPES: Final[dict[str, int]] = {
    "f32": GGML_TYPE_IDS["F32"],
    "f16": GGML_TYPE_IDS["F16"],
    "bf16": GGML_TYPE_IDS["BF16"],
    "q8_0": GGML_TYPE_IDS["Q8_0"],
    "q5_1": GGML_TYPE_IDS["Q5_1"],
    "q5_0": GGML_TYPE_IDS["Q5_0"],
    "q4_1": GGML_TYPE_IDS["Q4_1"],
    "q4_0": GGML_TYPE_IDS["Q4_0"],
    "iq4_nl": GGML_TYPE_IDS["IQ4_NL"],
}
_UNQUANTIZED_KV: Final = frozenset({"f32", "f16", "bf16"})
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


def pad_ctx(n_ctx: int) -> int:
    """llama.cpp rounds the context up to a multiple of 256 (300 → 512)."""
    return -(-max(n_ctx, 1) // 256) * 256


def format_bytes(n: int) -> str:
    if abs(n) >= GiB:
        return f"{n / GiB:.1f} GiB"
    if abs(n) >= MiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n / 1024:.0f} KiB"


@dataclass(frozen=True, slots=True)
class FitParams:
    """Load settings that change memory use (llama-cpp-python's names and defaults where it has them)."""

    n_gpu_layers: int = 0
    """Offloaded repeating layers; n_layer + 1 (or -1) also offloads the output head."""
    n_ctx: int = 4096
    n_batch: int = 512
    n_ubatch: int = 512
    kv_cache_type: str = "f16"
    flash_attn: bool = False
    use_mmap: bool = True
    swa_full: bool = True
    offload_kqv: bool = True
    cpu_repack: bool = True
    gpu_overhead: int = DEFAULT_GPU_OVERHEAD
    process_overhead: int = DEFAULT_PROCESS_OVERHEAD

    @classmethod
    def from_settings(cls, settings: LoadSettings, **overrides: Any) -> FitParams:
        """Params for the app's load settings; "auto" GPU layers asks for all of them, so that
        `check_fit` answers with the count that fits."""
        layers = settings.n_gpu_layers
        values: dict[str, Any] = {
            "n_gpu_layers": -1 if layers == AUTO else layers,
            "n_ctx": settings.n_ctx,
            "n_batch": settings.n_batch,
            "kv_cache_type": settings.kv_cache_type,
            "flash_attn": settings.flash_attn,
            "use_mmap": settings.use_mmap,
        }
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        if self.kv_cache_type not in KV_CACHE_TYPES:
            allowed = ", ".join(KV_CACHE_TYPES)
            raise ValueError(f"kv_cache_type must be one of {allowed}, not {self.kv_cache_type!r}")
        if self.n_ctx < 1 or self.n_batch < 1 or self.n_ubatch < 1:
            raise ValueError("n_ctx, n_batch and n_ubatch must be positive")


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


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Predicted memory for one set of load settings, in bytes, by component."""

    n_layer: int
    n_gpu_layers: int
    """Effective value, 0 … n_layer + 1."""
    n_ctx: int
    """After rounding up to a multiple of 256."""
    n_ubatch: int
    kv_cells: int
    kv_cells_swa: int
    gpu_weights: int
    gpu_kv: int
    gpu_compute: int
    gpu_overhead: int
    cpu_weights_mapped: int
    """Resident pages of the mapped file (mmap); counts toward RSS."""
    cpu_weights_loaded: int
    """Weights copied into anonymous memory: everything without mmap, repacked matrices with it."""
    cpu_kv: int
    cpu_compute: int
    """Compute-buffer pages a chat touches (logits for one row)."""
    cpu_compute_reserved: int
    """What llama.cpp reserves and logs; most of it stays untouched on the CPU."""
    output_buffer: int
    llama_overhead: int
    """Vocabulary structures and backend allocations."""
    process_overhead: int
    notes: tuple[str, ...] = ()

    @property
    def vram_total(self) -> int:
        return self.gpu_weights + self.gpu_kv + self.gpu_compute + self.gpu_overhead

    @property
    def ram_total(self) -> int:
        """Expected RSS of the worker process after loading and chatting."""
        return (
            self.process_overhead
            + self.llama_overhead
            + self.cpu_weights_mapped
            + self.cpu_weights_loaded
            + self.cpu_kv
            + self.cpu_compute
            + self.output_buffer
        )

    @property
    def kv_total(self) -> int:
        return self.gpu_kv + self.cpu_kv

    @property
    def weights_total(self) -> int:
        return self.gpu_weights + self.cpu_weights_mapped + self.cpu_weights_loaded

    def components(self) -> dict[str, int]:
        """Every byte figure by name, for logs and for comparing with measured RSS."""
        names = (
            "gpu_weights",
            "gpu_kv",
            "gpu_compute",
            "gpu_overhead",
            "cpu_weights_mapped",
            "cpu_weights_loaded",
            "cpu_kv",
            "cpu_compute",
            "cpu_compute_reserved",
            "output_buffer",
            "llama_overhead",
            "process_overhead",
        )
        figures = {name: int(getattr(self, name)) for name in names}
        figures["vram_total"] = self.vram_total
        figures["ram_total"] = self.ram_total
        return figures


def _effective_layers(n_gpu_layers: int, n_layer: int) -> int:
    return n_layer + 1 if n_gpu_layers < 0 else min(n_gpu_layers, n_layer + 1)


def _compute_bytes(
    p: MemoryProfile, tokens: int, cells: int, cells_swa: int, out_rows: int, flash_attn: bool
) -> int:
    has_swa = any(p.swa_layers)
    has_full = not all(p.swa_layers) if p.swa_layers else True
    mask_elem = 2 if flash_attn else 4
    masks = tokens * mask_elem * ((cells if has_full else 0) + (cells_swa if has_swa else 0))
    widest = max(cells if has_full else 0, cells_swa if has_swa else 0)
    attention = 3 * tokens * (p.n_embd + p.n_head * p.head_dim) * 4
    if not flash_attn:
        attention += p.n_head * widest * tokens * 4
    ffn = 4 * tokens * p.n_ff * 4
    output = out_rows * p.n_vocab * 4 + 2 * tokens * p.n_embd * 4
    return max(masks + max(attention, ffn), output)


def _work_bytes(p: MemoryProfile, tokens: int, cells: int, flash_attn: bool) -> int:
    """The CPU backend's scratch for one evaluation: activations converted for quantized dot
    products (about 1 B per element), attention scores converted to f16 without flash attention."""
    if tokens <= 0:
        return 0
    scores = 0 if flash_attn else p.n_head * cells * tokens * 2
    return FIRST_EVAL_OVERHEAD + tokens * p.n_ff * 34 // 32 + scores


def _mapped_span(p: MemoryProfile, first_gpu_layer: int, head_on_gpu: bool) -> int:
    spans: list[_Span] = list(p.embd_spans) + list(p.other_spans)
    for layer in range(first_gpu_layer):
        spans.extend(p.layer_spans[layer])
    if not head_on_gpu:
        spans.extend(p.head_spans)
    return sum(s.end - s.start for s in _merge_spans(spans))


def _kv_split(p: MemoryProfile, params: FitParams, first_gpu_layer: int) -> tuple[int, int, int, int]:
    """(cells, swa cells, KV bytes on CPU, KV bytes on GPU)."""
    cells = pad_ctx(params.n_ctx)
    ubatch = _ubatch(params)
    cells_swa = cells if params.swa_full else min(cells, pad_ctx(p.n_swa + ubatch))
    layout = GGML_TYPES[KV_CACHE_TYPES[params.kv_cache_type]]
    cpu = gpu = 0
    for layer in range(p.n_layer):
        layer_cells = cells_swa if p.swa_layers[layer] else cells
        row = (p.kv_k_elems[layer] + p.kv_v_elems[layer]) * layout.type_size // layout.block_size
        size = layer_cells * row
        if params.offload_kqv and layer >= first_gpu_layer:
            gpu += size
        else:
            cpu += size
    return cells, cells_swa, cpu, gpu


def _ubatch(params: FitParams) -> int:
    # llama-cpp-python clamps n_batch to the requested n_ctx and n_ubatch to n_batch.
    return min(params.n_ubatch, params.n_batch, params.n_ctx)


def estimate_memory(
    model: GGUFHeader | MemoryProfile,
    params: FitParams,
    *,
    context_tokens: int | None = None,
    prompt_tokens: int | None = None,
) -> MemoryEstimate:
    """Predict VRAM and RAM use for loading `model` with `params`.

    By default the CPU compute pages are those of the worst case (a full n_ubatch chunk at full
    context), which is what a fit verdict needs. To compare with a measured RSS, pass the tokens
    held in the KV cache and the longest prompt evaluated so far (0 for "just loaded").
    """
    p = memory_profile(model)
    n_layer = p.n_layer
    ngl = _effective_layers(params.n_gpu_layers, n_layer)
    offloaded = min(ngl, n_layer)
    first_gpu_layer = n_layer - offloaded
    head_on_gpu = ngl > n_layer
    tokens = _ubatch(params)
    notes: list[str] = []

    gpu_weights = sum(p.layer_bytes[first_gpu_layer:]) + (p.head_bytes if head_on_gpu else 0)
    head_on_cpu = 0 if head_on_gpu else p.head_bytes - (p.token_embd_bytes if p.tied_embeddings else 0)
    cpu_weights = sum(p.layer_bytes[:first_gpu_layer]) + p.token_embd_bytes + p.other_bytes + head_on_cpu
    repack = 0
    if params.cpu_repack:
        repack = sum(p.layer_repack_bytes[:first_gpu_layer]) + (0 if head_on_gpu else p.head_repack_bytes)
    if params.use_mmap:
        mapped = _mapped_span(p, first_gpu_layer, head_on_gpu)
        loaded = repack
    else:
        mapped = 0
        loaded = cpu_weights

    cells, cells_swa, cpu_kv, gpu_kv = _kv_split(p, params, first_gpu_layer)

    reserved = _compute_bytes(p, tokens, cells, cells_swa, tokens, params.flash_attn)
    if context_tokens is None and prompt_tokens is None:
        touched = _compute_bytes(p, tokens, cells, cells_swa, 1, params.flash_attn)
        touched += _work_bytes(p, tokens, cells, params.flash_attn)
    elif not prompt_tokens:
        touched = 0
    else:
        # llama.cpp attends over the used cells rounded up to 256, not the whole cache.
        used = pad_ctx(max(context_tokens or 0, prompt_tokens))
        chunk = min(tokens, prompt_tokens)
        touched = _compute_bytes(p, chunk, min(used, cells), min(used, cells_swa), 1, params.flash_attn)
        touched += _work_bytes(p, chunk, min(used, cells), params.flash_attn)
    any_gpu = ngl > 0
    gpu_compute = 0
    if any_gpu:
        # The logits rows only live on the GPU when the output head does.
        rows = tokens if head_on_gpu else 1
        gpu_compute = _compute_bytes(p, tokens, cells, cells_swa, rows, params.flash_attn)
        if not head_on_gpu:
            gpu_compute += max(p.largest_layer_matrix if first_gpu_layer else 0, p.head_matrix_bytes)
    if head_on_gpu:
        # Only staging for inputs and the embedding lookup stays on the host.
        cpu_compute = cpu_reserved = tokens * p.n_embd * 4 + tokens * cells * 4
    else:
        cpu_compute, cpu_reserved = touched, reserved

    llama_overhead = LLAMA_FIXED_OVERHEAD + p.n_vocab * VOCAB_BYTES_PER_TOKEN + p.n_merges * MERGE_BYTES

    if params.kv_cache_type not in _UNQUANTIZED_KV and not params.flash_attn:
        notes.append("a quantized KV cache needs flash attention: llama.cpp will refuse to load")
    if p.n_ctx_train and params.n_ctx > p.n_ctx_train:
        notes.append(f"n_ctx {params.n_ctx} is beyond the training context {p.n_ctx_train}")
    if p.recurrent:
        notes.append("recurrent state of SSM/RWKV layers is not estimated")
    if p.latent_attention:
        notes.append("MLA latent KV cache not modelled: KV is overestimated")

    return MemoryEstimate(
        n_layer=n_layer,
        n_gpu_layers=ngl,
        n_ctx=cells,
        n_ubatch=tokens,
        kv_cells=cells,
        kv_cells_swa=cells_swa,
        gpu_weights=gpu_weights,
        gpu_kv=gpu_kv,
        gpu_compute=gpu_compute,
        gpu_overhead=params.gpu_overhead if any_gpu else 0,
        cpu_weights_mapped=mapped,
        cpu_weights_loaded=loaded,
        cpu_kv=cpu_kv,
        cpu_compute=cpu_compute,
        cpu_compute_reserved=cpu_reserved,
        output_buffer=p.n_vocab * 4,
        llama_overhead=llama_overhead,
        process_overhead=params.process_overhead,
        notes=tuple(notes),
    )


class FitStatus(StrEnum):
    FITS = "fits"
    FITS_WITH_LAYERS = "fits with another GPU layer count"
    DOES_NOT_FIT = "does not fit"


@dataclass(frozen=True, slots=True)
class FitVerdict:
    status: FitStatus
    gpu_layers: int
    """The layer count the verdict is about: the requested one, or the suggestion."""
    estimate: MemoryEstimate
    """Estimate for `gpu_layers`."""
    vram_short: int = 0
    """Bytes missing at the requested settings (0 when enough)."""
    ram_short: int = 0
    message: str = ""
    notes: tuple[str, ...] = ()


def _shortfalls(estimate: MemoryEstimate, free_vram: int | None, free_ram: int | None) -> tuple[int, int]:
    vram_short = 0 if free_vram is None else max(0, estimate.vram_total - free_vram)
    ram_short = 0 if free_ram is None else max(0, estimate.ram_total - free_ram)
    return vram_short, ram_short


def auto_gpu_layers(
    model: GGUFHeader | MemoryProfile,
    params: FitParams,
    free_vram: int | None,
    free_ram: int | None = None,
) -> int | None:
    """The most layers (0 … n_layer + 1, the latter meaning all) that fit; None if nothing fits.

    Without a GPU (free_vram None) the answer is 0 when the model fits in RAM.
    """
    p = memory_profile(model)

    def estimate(ngl: int) -> MemoryEstimate:
        return estimate_memory(p, replace(params, n_gpu_layers=ngl))

    def vram_fits(ngl: int) -> bool:
        return ngl == 0 or (free_vram is not None and estimate(ngl).vram_total <= free_vram)

    # VRAM grows with the layer count, so binary-search the largest count that fits it.
    best = 0
    if free_vram is not None:
        if vram_fits(p.n_layer + 1):
            best = p.n_layer + 1
        else:
            low, high = 0, p.n_layer
            while low < high:
                middle = (low + high + 1) // 2
                if vram_fits(middle):
                    low = middle
                else:
                    high = middle - 1
            best = low
    # RAM shrinks as layers move to the GPU: if the most that fit in VRAM leave too much in
    # RAM, fewer cannot help.
    if free_ram is not None and estimate(best).ram_total > free_ram:
        return None
    return best


def check_fit(
    model: GGUFHeader | MemoryProfile,
    params: FitParams,
    free_vram: int | None,
    free_ram: int | None,
) -> FitVerdict:
    """Verdict for the requested settings against free memory (free_vram None = no GPU)."""
    p = memory_profile(model)
    requested = params
    notes: tuple[str, ...] = ()
    if free_vram is None and params.n_gpu_layers != 0:
        requested = replace(params, n_gpu_layers=0)
        notes = ("no GPU: every layer runs on the CPU",)
    estimate = estimate_memory(p, requested)
    notes += estimate.notes
    vram_short, ram_short = _shortfalls(estimate, free_vram if estimate.n_gpu_layers else None, free_ram)
    if vram_short == 0 and ram_short == 0:
        return FitVerdict(FitStatus.FITS, estimate.n_gpu_layers, estimate, message="fits", notes=notes)

    best = auto_gpu_layers(p, requested, free_vram, free_ram)
    if best is not None:
        better = estimate_memory(p, replace(requested, n_gpu_layers=best))
        if best == 0:
            message = "fits on the CPU only (0 layers on GPU)"
        else:
            message = f"fits with {'all' if best > p.n_layer else best} of {p.n_layer + 1} layers on GPU"
        return FitVerdict(FitStatus.FITS_WITH_LAYERS, best, better, vram_short, ram_short, message, notes)
    reasons = []
    if vram_short:
        reasons.append(f"VRAM short by {format_bytes(vram_short)}")
    if ram_short:
        reasons.append(f"RAM short by {format_bytes(ram_short)}")
    return FitVerdict(
        FitStatus.DOES_NOT_FIT,
        estimate.n_gpu_layers,
        estimate,
        vram_short,
        ram_short,
        "does not fit: " + ", ".join(reasons),
        notes,
    )

"""Memory estimates for llama.cpp loads, from the GGUF header alone (via its `MemoryProfile`).

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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from lollma_tui.core.models.fit_profile import MemoryProfile, mapped_bytes, memory_profile
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


def pad_ctx(n_ctx: int) -> int:
    """llama.cpp rounds the context up to a multiple of 256 (300 → 512)."""
    return -(-max(n_ctx, 1) // 256) * 256


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
            # "auto" counts the repacked copies: the larger figure, and what runs where it works.
            "cpu_repack": settings.repack != "off",
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
        mapped = mapped_bytes(p, first_gpu_layer, head_on_gpu)
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

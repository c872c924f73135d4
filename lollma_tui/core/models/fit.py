"""Will this model fit? A verdict for load settings against free memory, and the GPU layer count
that fits when the requested one does not.

Pure and cheap: the work is in `fit_estimate.estimate_memory` over a `fit_profile.MemoryProfile`
built once per header, so a verdict can run on each keypress of a slider. Those modules say what
is exact and what is approximate; their public names are re-exported here, where the app, the
benchmarks and the tests import them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from lollma_tui.core import formatting as fmt
from lollma_tui.core.models.fit_estimate import (
    DEFAULT_GPU_OVERHEAD,
    DEFAULT_PROCESS_OVERHEAD,
    FIRST_EVAL_OVERHEAD,
    KV_CACHE_TYPES,
    LLAMA_FIXED_OVERHEAD,
    MERGE_BYTES,
    VOCAB_BYTES_PER_TOKEN,
    FitParams,
    GiB,
    MemoryEstimate,
    MiB,
    estimate_memory,
    pad_ctx,
)
from lollma_tui.core.models.fit_profile import MemoryProfile, memory_profile, swa_layer_flags
from lollma_tui.core.models.gguf_header import GGUFHeader

__all__ = [
    "DEFAULT_GPU_OVERHEAD",
    "DEFAULT_PROCESS_OVERHEAD",
    "FIRST_EVAL_OVERHEAD",
    "KV_CACHE_TYPES",
    "LLAMA_FIXED_OVERHEAD",
    "MERGE_BYTES",
    "VOCAB_BYTES_PER_TOKEN",
    "FitParams",
    "FitStatus",
    "FitVerdict",
    "GiB",
    "MemoryEstimate",
    "MemoryProfile",
    "MiB",
    "auto_gpu_layers",
    "check_fit",
    "estimate_memory",
    "memory_profile",
    "pad_ctx",
    "swa_layer_flags",
]


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
        reasons.append(f"VRAM short by {fmt.size(vram_short)}")
    if ram_short:
        reasons.append(f"RAM short by {fmt.size(ram_short)}")
    return FitVerdict(
        FitStatus.DOES_NOT_FIT,
        estimate.n_gpu_layers,
        estimate,
        vram_short,
        ram_short,
        "does not fit: " + ", ".join(reasons),
        notes,
    )

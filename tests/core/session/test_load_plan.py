"""The swap's first step, pure: fit checks and "auto" GPU layers against a given budget."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lollma_tui.core import formatting as fmt
from lollma_tui.core.backends.base import LoadedModel
from lollma_tui.core.hardware.snapshots import (
    GpuSnapshot,
    GpuState,
    GpuVendor,
    MemorySnapshot,
    SystemSnapshot,
)
from lollma_tui.core.models.fit import FitParams, estimate_memory
from lollma_tui.core.models.gguf_header import GGUFError, GGUFHeader, read_gguf_header
from lollma_tui.core.session import MemoryBudget, budget_from_snapshot, plan_load, reclaimable_memory
from lollma_tui.core.session.plan import CPU_ONLY_BUILD_NOTE
from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings

GiB = 1 << 30
PLENTY = 64 * GiB


@pytest.fixture
def header(tiny_f16: Path) -> GGUFHeader:
    return read_gguf_header(tiny_f16)


def settings(path: Path, **changes: object) -> LoadSettings:
    return LoadSettings(model=str(path), n_ctx=512).with_changes(**changes)


def vram_at(header: GGUFHeader, target: LoadSettings, layers: int) -> int:
    return estimate_memory(header, FitParams.from_settings(target, n_gpu_layers=layers)).vram_total


def test_auto_is_zero_without_a_gpu(header: GGUFHeader, tiny_f16: Path) -> None:
    plan = plan_load(settings(tiny_f16, n_gpu_layers=AUTO), header, MemoryBudget(PLENTY, None))
    assert plan.go and plan.settings.n_gpu_layers == 0
    assert plan.requested.n_gpu_layers == AUTO
    assert "auto GPU layers → 0 (no GPU)" in plan.notes


def test_auto_takes_as_many_layers_as_the_vram_holds(header: GGUFHeader, tiny_f16: Path) -> None:
    target = settings(tiny_f16, n_gpu_layers=AUTO)
    n_layer = header.block_count
    everything = plan_load(target, header, MemoryBudget(PLENTY, PLENTY))
    assert everything.settings.n_gpu_layers == n_layer + 1
    # Just enough VRAM for one layer but not two.
    between = vram_at(header, target, 1) + (vram_at(header, target, 2) - vram_at(header, target, 1)) // 2
    one = plan_load(target, header, MemoryBudget(PLENTY, between))
    assert one.go and one.settings.n_gpu_layers == 1
    assert one.estimate is not None and one.estimate.vram_total <= between
    assert any(f"1 of {n_layer + 1}" in note for note in one.notes)


def test_a_cpu_only_build_gets_zero_layers_and_a_note(header: GGUFHeader, tiny_f16: Path) -> None:
    budget = MemoryBudget(PLENTY, PLENTY)
    auto = plan_load(settings(tiny_f16, n_gpu_layers=AUTO), header, budget, gpu_offload=False)
    assert auto.go and auto.settings.n_gpu_layers == 0
    asked = plan_load(settings(tiny_f16, n_gpu_layers=2), header, budget, gpu_offload=False)
    # Not a failure: planned as what will load (0 layers, so nothing reloads for it alone),
    # and the user is told why.
    assert asked.go and asked.settings.n_gpu_layers == 0 and asked.requested.n_gpu_layers == 2
    assert CPU_ONLY_BUILD_NOTE in asked.notes
    assert asked.estimate is not None and asked.estimate.vram_total == 0


def test_too_many_layers_for_the_vram_is_refused_with_a_hint(header: GGUFHeader, tiny_f16: Path) -> None:
    target = settings(tiny_f16, n_gpu_layers=2)
    need = vram_at(header, target, 2)
    free = (vram_at(header, target, 1) + need) // 2
    plan = plan_load(target, header, MemoryBudget(PLENTY, free))
    assert not plan.go and plan.refusal is not None
    assert f"VRAM short by {fmt.size(need - free)} (needs {fmt.size(need)}" in plan.refusal
    assert "/ngl 1" in plan.refusal


def test_short_ram_is_refused_with_the_shortfall(header: GGUFHeader, tiny_f16: Path) -> None:
    target = settings(tiny_f16, n_ctx=4096)
    need = estimate_memory(header, FitParams.from_settings(target)).ram_total
    free = need - 50 * (1 << 20)
    plan = plan_load(target, header, MemoryBudget(free, None))
    assert plan.refusal is not None and plan.refusal.startswith(
        f"does not fit: RAM short by {fmt.size(need - free)} (needs {fmt.size(need)}, {fmt.size(free)} free)"
    )
    assert plan_load(target, header, MemoryBudget(need, None)).go
    auto = plan_load(target.with_changes(n_gpu_layers=AUTO), header, MemoryBudget(free, None))
    assert auto.refusal is not None and "RAM short by" in auto.refusal


def test_a_refusal_says_when_the_context_is_what_does_not_fit(header: GGUFHeader, tiny_f16: Path) -> None:
    # "RAM short by 183 GiB (needs 206 GiB)" for a 135M model, with nothing else said, read as a
    # broken estimate: it was the KV cache of the context asked for.
    huge = settings(tiny_f16, n_ctx=1 << 22)
    estimate = estimate_memory(header, FitParams.from_settings(huge))
    kv = estimate.cpu_kv + estimate.gpu_kv
    plan = plan_load(huge, header, MemoryBudget(estimate.ram_total // 2, None))
    assert plan.refusal is not None
    assert plan.refusal.endswith(
        f" · most of it is the KV cache for ctx {1 << 22} ({fmt.size(kv)}): /ctx N lowers it"
    )
    small = settings(tiny_f16, n_ctx=256)
    estimate = estimate_memory(header, FitParams.from_settings(small))
    assert estimate.cpu_kv < estimate.cpu_weights_mapped + estimate.cpu_weights_loaded
    plan = plan_load(small, header, MemoryBudget(estimate.ram_total // 2, None))
    assert plan.refusal is not None and "KV cache" not in plan.refusal


def test_without_a_budget_nothing_is_refused_and_auto_is_left_to_the_worker(
    header: GGUFHeader, tiny_f16: Path
) -> None:
    plan = plan_load(settings(tiny_f16, n_gpu_layers=AUTO), header, None)
    assert plan.go and plan.settings.n_gpu_layers == AUTO
    assert "free memory unknown: fit not checked" in plan.notes
    assert plan.estimate is not None and plan.estimate.ram_total > 0


def test_unreadable_files_and_wrong_targets_are_refused(tiny_f16: Path, tmp_path: Path) -> None:
    broken = GGUFError(tmp_path / "x.gguf", "not a GGUF file")
    assert plan_load(settings(tmp_path / "x.gguf"), broken, None).refusal == "x.gguf: not a GGUF file"
    assert "choose a GGUF file" in (plan_load(LoadSettings(), None, None).refusal or "")
    ollama = LoadSettings(backend=BackendKind.OLLAMA, model="tinyllama:1b")
    assert plan_load(ollama, None, MemoryBudget(1, None)).go  # the server fits its models itself
    as_file = ollama.with_changes(model=str(tiny_f16))
    assert "Use /backend llama.cpp" in (plan_load(as_file, None, None).refusal or "")


def test_quantized_kv_without_flash_attention_is_refused(header: GGUFHeader, tiny_f16: Path) -> None:
    plan = plan_load(settings(tiny_f16, kv_cache_type="q8_0"), header, None)
    assert plan.refusal is not None and "flash_attn" in plan.refusal
    assert plan_load(settings(tiny_f16, kv_cache_type="q8_0", flash_attn=True), header, None).go


def snapshot(memory_available: int, *gpus: GpuSnapshot) -> SystemSnapshot:
    memory = MemorySnapshot(
        total_bytes=4 * memory_available,
        available_bytes=memory_available,
        used_bytes=3 * memory_available,
        swap_used_bytes=None,
        swap_total_bytes=None,
    )
    now = time.monotonic()
    return SystemSnapshot(now, time.time(), 1.0, 1, None, memory, tuple(gpus))


def gpu(index: int, total: int | None, used: int | None, **kwargs: object) -> GpuSnapshot:
    return GpuSnapshot(
        index, f"gpu{index}", GpuVendor.NVIDIA, memory_total_bytes=total, memory_used_bytes=used, **kwargs
    )  # type: ignore[arg-type]


def test_budget_from_a_snapshot() -> None:
    assert budget_from_snapshot(snapshot(8 * GiB)) == MemoryBudget(8 * GiB, None)
    two = snapshot(8 * GiB, gpu(0, 24 * GiB, 4 * GiB), gpu(1, 16 * GiB, 1 * GiB))
    assert budget_from_snapshot(two) == MemoryBudget(8 * GiB, 35 * GiB)
    asleep = snapshot(8 * GiB, gpu(0, 24 * GiB, 4 * GiB, state=GpuState.ASLEEP))
    assert budget_from_snapshot(asleep).free_vram is None
    apple = snapshot(8 * GiB, gpu(0, None, None, unified_memory=True))
    assert budget_from_snapshot(apple) == MemoryBudget(8 * GiB, 8 * GiB)
    assert MemoryBudget(1, None).plus(10, 20) == MemoryBudget(11, None)


def loaded_model(target: LoadSettings) -> LoadedModel:
    return LoadedModel(
        settings=target,
        name="tiny",
        architecture="llama",
        quant="F16",
        n_layers=2,
        n_ctx=target.n_ctx,
        n_ctx_train=4096,
        n_gpu_layers=0,
        gpu_offload_supported=False,
        chat_format="chatml",
        chat_format_source="gguf",
        size_bytes=1,
        n_params=1,
        load_s=0.1,
    )


def test_only_a_llama_cpp_model_with_a_readable_header_frees_memory_on_unload(
    header: GGUFHeader, tiny_f16: Path
) -> None:
    on_llama = loaded_model(settings(tiny_f16))
    ram, vram = reclaimable_memory(header, on_llama)
    assert ram > 0 and vram == 0
    # Its file gone or broken: nothing is counted rather than a guess.
    assert reclaimable_memory(GGUFError(tiny_f16, "cannot read"), on_llama) == (0, 0)
    # A server's model is not ours to free (Ollama keeps it as long as it likes).
    on_ollama = loaded_model(LoadSettings(backend=BackendKind.OLLAMA, model="tinyllama:1b", n_ctx=512))
    assert reclaimable_memory(header, on_ollama) == (0, 0)

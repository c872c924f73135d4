"""GPU layer resolution ("auto") and the fit check that skips configurations that cannot fit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lollma_tui.core.bench import BenchProgress, BenchRun, BenchSession, SweepSpec, plan_sweep
from lollma_tui.core.bench.llama_run import ConfigSkipped, check_fits, resolve_gpu_layers
from lollma_tui.core.hardware.snapshots import CpuSnapshot, MemorySnapshot, SourceState
from lollma_tui.core.hardware.source import SampleContext, SourceReading, status
from lollma_tui.core.models.gguf_header import read_gguf_header

MIB = 1 << 20
SPEC = SweepSpec(models=("m",), n_prompt=(64,), n_gen=(16,))


def test_auto_is_zero_without_gpu_offload_and_the_most_that_fit_with_it(f16_source: Path) -> None:
    header = read_gguf_header(f16_source)
    layers = header.block_count
    common = {"spec": SPEC, "n_ctx": 80, "free_ram": 8 << 30}
    assert resolve_gpu_layers("auto", header, gpu_offload=False, free_vram=8 << 30, **common) == 0
    assert resolve_gpu_layers("auto", header, gpu_offload=True, free_vram=8 << 30, **common) == layers + 1
    assert resolve_gpu_layers("auto", header, gpu_offload=True, free_vram=0, **common) == 0
    assert resolve_gpu_layers(7, header, gpu_offload=False, free_vram=None, **common) == 7
    with pytest.raises(ConfigSkipped, match="does not fit"):
        resolve_gpu_layers("auto", header, spec=SPEC, n_ctx=80, gpu_offload=True, free_vram=0, free_ram=MIB)


def test_fit_check_refuses_what_free_ram_cannot_hold(f16_source: Path) -> None:
    header = read_gguf_header(f16_source)
    check_fits(header, spec=SPEC, n_gpu_layers=0, n_ctx=80, free_vram=None, free_ram=8 << 30)
    with pytest.raises(ConfigSkipped, match="RAM short"):
        check_fits(header, spec=SPEC, n_gpu_layers=0, n_ctx=80, free_vram=None, free_ram=MIB)
    unchecked = SweepSpec(models=("m",), check_fit=False)
    check_fits(header, spec=unchecked, n_gpu_layers=0, n_ctx=80, free_vram=None, free_ram=MIB)


class TinyRamSource:
    """A machine with 1 MiB of RAM free: nothing fits."""

    name = "tiny-ram"

    def sample(self, context: SampleContext) -> SourceReading:
        return SourceReading(
            status=status(self.name, SourceState.OK, "fake"),
            cpu=CpuSnapshot(None, (), None, None, None, 2, 2, "Fake CPU"),
            memory=MemorySnapshot(16 << 30, MIB, (16 << 30) - MIB, None, None),
        )

    def close(self) -> None:
        pass


def test_a_configuration_that_cannot_fit_is_skipped_with_the_reason(f16_source: Path, tmp_path: Path) -> None:
    spec = SweepSpec(models=(str(f16_source),), threads=(1,), n_prompt=(0,), n_gen=(4,), repetitions=2)
    progress: list[BenchProgress] = []

    async def go() -> BenchRun:
        plan = await plan_sweep(spec, search_dirs=())
        session = BenchSession(
            plan,
            on_progress=progress.append,
            log_path=tmp_path / "bench.log",
            hardware_sources=[TinyRamSource()],
        )
        return await session.run()

    run = asyncio.run(go())
    assert run.records == ()
    (failure,) = run.failures
    assert (
        "skipped" in failure.reason and "RAM short" in failure.reason and "--no-fit-check" in failure.reason
    )
    assert run.hardware.cpu_model == "Fake CPU"
    assert progress[-1].total == 0 and progress[-1].message is not None

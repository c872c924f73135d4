"""Compare a run with saved runs on the same hardware, and pick the best configuration."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from lollma_tui.core.bench.records import BenchRecord
from lollma_tui.core.settings import BackendKind, LoadSettings


@dataclass(frozen=True, slots=True)
class Comparison:
    record: BenchRecord
    previous: BenchRecord | None
    """The latest saved row with the same fingerprint and configuration, from another run."""

    @property
    def change(self) -> float | None:
        """Relative change of avg_ts: +0.12 is 12 % faster than before."""
        if self.previous is None or self.previous.avg_ts <= 0:
            return None
        return self.record.avg_ts / self.previous.avg_ts - 1.0

    @property
    def noise_known(self) -> bool:
        """Both runs timed more than once: a single run has no spread to judge a change by."""
        return (
            self.previous is not None and min(len(self.record.samples_ts), len(self.previous.samples_ts)) > 1
        )

    @property
    def significant(self) -> bool:
        """True when the gap is larger than both runs' spread (one stddev each, added)."""
        if self.previous is None or not self.noise_known:
            return False
        spread = self.record.stddev_ts + self.previous.stddev_ts
        return abs(self.record.avg_ts - self.previous.avg_ts) > spread


def compare_with_saved(records: Sequence[BenchRecord], saved: Iterable[BenchRecord]) -> list[Comparison]:
    """For each new row: the change against the last saved row measuring the same thing on the
    same hardware (rows of the new run itself are ignored, saved or not)."""
    run_ids = {r.run_id for r in records}
    latest: dict[tuple[str, tuple[object, ...]], BenchRecord] = {}
    for old in saved:
        if old.run_id in run_ids:
            continue
        # Saved order is time order; later rows replace earlier ones.
        latest[(old.fingerprint, old.config_key())] = old
    return [Comparison(r, latest.get((r.fingerprint, r.config_key()))) for r in records]


def best_configuration(
    records: Iterable[BenchRecord],
    *,
    kind: Literal["tg", "pp", "chat"] = "tg",
    ram_budget_bytes: int | None = None,
    vram_budget_bytes: int | None = None,
) -> BenchRecord | None:
    """The fastest row of `kind` whose measured peaks stay within the budgets (None: no limit).

    Generation speed ("tg") is what a chat feels like, hence the default. Ties go to fewer GPU
    layers (leaving VRAM for other work), then to the smaller file.
    """
    candidates = []
    for record in records:
        if record.kind != kind or record.avg_ts <= 0:
            continue
        if ram_budget_bytes is not None and (record.peak_rss_bytes or 0) > ram_budget_bytes:
            continue
        if vram_budget_bytes is not None and (record.peak_vram_bytes or 0) > vram_budget_bytes:
            continue
        candidates.append(record)
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.avg_ts, -r.n_gpu_layers, -r.model_size))


def load_settings_for(record: BenchRecord, base: LoadSettings | None = None) -> LoadSettings:
    """Settings that load the model the way `record` measured it (for an "apply" button)."""
    base = base or LoadSettings()
    if record.backend_impl == "ollama":
        return base.with_changes(
            backend=BackendKind.OLLAMA,
            model=record.model_filename,
            n_gpu_layers="auto" if record.n_gpu_layers_requested == "auto" else record.n_gpu_layers,
            n_threads=record.n_threads or None,
        )
    return base.with_changes(
        backend=BackendKind.LLAMA_CPP,
        model=record.model_filename,
        n_gpu_layers=record.n_gpu_layers,
        n_threads=record.n_threads or None,
        flash_attn=record.flash_attn,
        kv_cache_type=record.type_k
        if record.type_k in ("f16", "q8_0", "q4_0", "f32")
        else base.kv_cache_type,
    )

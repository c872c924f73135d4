"""llama-bench's statistics: the mean and sample standard deviation of per-run figures.

`avg_ts` is the mean of the per-run rates, not total tokens over total time, so a slow outlier
weighs as much as a fast run; that is what llama-bench prints and what people compare against.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def sample_stddev(values: Sequence[float]) -> float:
    """Standard deviation with n − 1 in the denominator; 0 for fewer than two values."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass(frozen=True, slots=True)
class Summary:
    samples_ns: tuple[int, ...]
    samples_ts: tuple[float, ...]
    avg_ns: int
    stddev_ns: int
    avg_ts: float
    stddev_ts: float


def summarize(samples_ns: Sequence[int], tokens: int | Sequence[int]) -> Summary:
    """Per-run durations and the tokens each run processed (one count, or one per run)."""
    counts = [tokens] * len(samples_ns) if isinstance(tokens, int) else list(tokens)
    if len(counts) != len(samples_ns):
        raise ValueError("one token count per sample is needed")
    durations = [int(ns) for ns in samples_ns]
    if any(ns <= 0 for ns in durations):
        raise ValueError("every sample needs a positive duration")
    rates = [1e9 * count / ns for count, ns in zip(counts, durations, strict=True)]
    return Summary(
        samples_ns=tuple(durations),
        samples_ts=tuple(rates),
        # llama-bench stores integer nanoseconds; rounding keeps the JSON identical in shape.
        avg_ns=round(mean(durations)),
        stddev_ns=round(sample_stddev(durations)),
        avg_ts=mean(rates),
        stddev_ts=sample_stddev(rates),
    )

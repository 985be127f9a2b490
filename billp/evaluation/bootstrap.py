"""Seeded bootstrap resampling as weight matrices, and the paired permutation test.

A bootstrap resample of ``n`` episodes is a row of counts (how often each episode was
drawn), so every statistic is a weighted statistic and all resamples are computed at once
with matrix products. Three schemes:

- **over episodes** (one run): each row is Multinomial(n, uniform) over the run's episodes;
- **over seeds** (several runs of one configuration): a two-level (hierarchical) bootstrap:
  draw the runs with replacement, then episodes within each drawn run. It carries both the
  between-seed and the within-run variation, which a bootstrap of the few per-seed means
  alone cannot (3 seeds give only 10 distinct resamples);
- **paired** (two runs on the same users and seeds): one set of episode-pair weights is used
  for both runs, so the difference is computed on matched pairs.

Intervals are percentile intervals at :data:`CONFIDENCE`; :data:`BOOTSTRAP_RESAMPLES`
resamples from a generator seeded with :data:`BOOTSTRAP_SEED` make every number reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from billp.summary.episodes import WeightedStatistic

BOOTSTRAP_RESAMPLES = 2000
"""Resamples per bootstrap interval."""
BOOTSTRAP_SEED = 20240
"""Seed of the resampling generator (same data, same intervals)."""
CONFIDENCE = 0.95
"""Coverage of the reported intervals."""
PERMUTATION_RESAMPLES = 2000
"""Random label swaps of the paired permutation test."""
_TIE_TOLERANCE = 1e-12
"""Relative slack so that permuted differences equal to the observed one count as extreme."""


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile interval (``nan`` where undefined)."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready form: ``nan`` becomes ``None``."""
        return {
            "mean": _finite_or_none(self.mean),
            "ci_low": _finite_or_none(self.low),
            "ci_high": _finite_or_none(self.high),
            "n": self.n,
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def make_rng(seed: int = BOOTSTRAP_SEED) -> np.random.Generator:
    """The resampling generator."""
    return np.random.default_rng(seed)


def episode_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap counts ``[resamples, n]`` over ``n`` episodes (each row sums to ``n``)."""
    if n == 0:
        return np.zeros((resamples, 0), dtype=np.float64)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def hierarchical_weights(
    sizes: Sequence[int], resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Two-level bootstrap counts ``[resamples, sum(sizes)]`` over runs, then episodes.

    ``sizes`` are the episode counts of the runs, whose episodes are concatenated in order.
    Drawing run ``r`` ``c`` times and ``n_r`` episodes each time is the same as drawing
    ``c * n_r`` episodes of run ``r`` at once (a sum of multinomials with the same
    probabilities), so each run's block is one multinomial draw per resample.
    """
    k = len(sizes)
    total = int(sum(sizes))
    weights = np.zeros((resamples, total), dtype=np.float64)
    if k == 0 or total == 0:
        return weights
    run_counts = rng.multinomial(k, np.full(k, 1.0 / k), size=resamples)
    start = 0
    for r, size in enumerate(sizes):
        if size:
            draws = run_counts[:, r] * size
            weights[:, start : start + size] = rng.multinomial(draws, np.full(size, 1.0 / size))
        start += size
    return weights


def percentile_interval(
    point: float, replicates: np.ndarray, n: int, confidence: float = CONFIDENCE
) -> Interval:
    """The percentile interval of ``replicates`` (``nan`` replicates are ignored)."""
    finite = replicates[np.isfinite(replicates)]
    if not np.isfinite(point) or finite.size == 0:
        return Interval(point, float("nan"), float("nan"), n)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return Interval(float(point), float(low), float(high), n)


def bias_corrected_interval(
    point: float,
    replicates: np.ndarray,
    n: int,
    bounds: tuple[float, float] = (0.0, 1.0),
    confidence: float = CONFIDENCE,
) -> Interval:
    """The percentile interval shifted by the bootstrap bias ``mean(replicates) - point``.

    For set statistics such as catalogue coverage, a resample repeats episodes and so
    counts fewer distinct items: the replicates sit below the estimate, and a plain
    percentile interval can miss it entirely. Shifting by the estimated bias re-centres
    the interval; it is then clipped to ``bounds``.
    """
    plain = percentile_interval(point, replicates, n, confidence)
    if not np.isfinite(plain.low):
        return plain
    bias = float(np.nanmean(replicates)) - point
    low = float(np.clip(plain.low - bias, *bounds))
    high = float(np.clip(plain.high - bias, *bounds))
    return Interval(point, low, high, n)


def bootstrap(
    statistic: WeightedStatistic,
    weights: np.ndarray,
    n: int,
    *,
    set_statistic: bool = False,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Point estimate (all weights 1) and interval of ``statistic`` over ``weights`` rows."""
    total = weights.shape[1]
    point = float(statistic(np.ones((1, total)))[0]) if total else float("nan")
    if total == 0:
        return Interval(point, float("nan"), float("nan"), n)
    replicates = statistic(weights)
    if set_statistic:
        return bias_corrected_interval(point, replicates, n, confidence=confidence)
    return percentile_interval(point, replicates, n, confidence)


@dataclass(frozen=True)
class PairedResult:
    """Paired difference ``B - A`` of a statistic with its interval and p-value."""

    a: float
    b: float
    difference: Interval
    p_value: float
    pairs: int

    def as_dict(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {
            "a": _finite_or_none(self.a),
            "b": _finite_or_none(self.b),
        }
        diff = self.difference.as_dict()
        out["diff"] = diff["mean"]
        out["diff_ci_low"] = diff["ci_low"]
        out["diff_ci_high"] = diff["ci_high"]
        out["pairs"] = self.pairs
        out["p_value"] = _finite_or_none(self.p_value)
        return out


def paired_comparison(
    joint: WeightedStatistic,
    pairs: int,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    permutations: int = PERMUTATION_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> PairedResult:
    """Paired difference ``stat(B) - stat(A)`` over ``pairs`` matched episodes.

    ``joint`` is a weighted statistic over ``2 * pairs`` episodes: run A's first, then
    run B's, pair ``i`` being columns ``i`` and ``pairs + i``. The interval resamples
    pairs (the same weights for both runs). The two-sided p-value comes from a paired
    permutation test: under "no difference" the two episodes of a pair are exchangeable,
    so each pair's labels are swapped with probability 1/2 and the difference recomputed;
    ``p = (1 + #{|d*| >= |d|}) / (1 + permutations)``.
    """
    nan = float("nan")
    if pairs == 0:
        return PairedResult(nan, nan, Interval(nan, nan, nan, 0), nan, 0)
    rng = make_rng(seed)

    def on_a(weights: np.ndarray) -> np.ndarray:
        return joint(np.concatenate([weights, np.zeros_like(weights)], axis=1))

    def on_b(weights: np.ndarray) -> np.ndarray:
        return joint(np.concatenate([np.zeros_like(weights), weights], axis=1))

    ones = np.ones((1, pairs))
    a = float(on_a(ones)[0])
    b = float(on_b(ones)[0])
    observed = b - a
    weights = episode_weights(pairs, resamples, rng)
    interval = percentile_interval(observed, on_b(weights) - on_a(weights), pairs, confidence)
    swaps = rng.integers(0, 2, size=(permutations, pairs)).astype(np.float64)
    keep = 1.0 - swaps
    permuted = joint(np.concatenate([swaps, keep], axis=1)) - joint(
        np.concatenate([keep, swaps], axis=1)
    )
    if not np.isfinite(observed):
        return PairedResult(a, b, interval, nan, pairs)
    tolerance = _TIE_TOLERANCE * max(1.0, abs(observed))
    extreme = int(np.sum(np.abs(permuted[np.isfinite(permuted)]) >= abs(observed) - tolerance))
    p_value = (1 + extreme) / (1 + permutations)
    return PairedResult(a, b, interval, float(p_value), pairs)

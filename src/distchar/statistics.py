"""Statistics shared by the studies: seed intervals, paired comparisons, multiple testing.

- ``seed_interval``: the mean over seeds with a Student-t interval (with 2 seeds the t quantile is
  12.7, and the interval is as wide as it should be).
- ``paired_comparison``: A against B on (seeds, examples) arrays of per-example scores, oriented
  so that positive favours A: a two-level bootstrap (seeds, then examples, the same draws for both)
  with its percentile interval and two-sided p; the Wilcoxon signed-rank test on the per-example
  differences averaged over seeds; the effect size d_z.
- ``holm``: Holm-Bonferroni adjusted p-values; ``verdict``: yes / no / inconclusive from a
  difference and its adjusted p.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from distchar.errors import DistcharError


def seed_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval over seeds; the bounds are NaN with one seed."""
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


@dataclass
class Comparison:
    """A against B on per-example scores (positive difference: A better)."""

    difference: float
    low: float
    high: float
    p_bootstrap: float
    p_wilcoxon: float
    effect_size: float
    seeds: int
    examples: int

    def as_dict(self) -> dict:
        return asdict(self)


def paired_comparison(
    a: np.ndarray, b: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Comparison:
    """Two-level paired bootstrap of mean(a - b) over seeds (rows) and examples (columns).

    ``a`` and ``b`` are (seeds, examples) arrays of scores oriented so that larger is better,
    row s of both from seed s and column i from test example i."""
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.size == 0:
        raise DistcharError(
            f"A paired comparison needs two (seeds, examples) arrays of one shape, not {a.shape} and {b.shape}."
        )
    difference = a - b
    n_seeds, n_examples = difference.shape
    rng = np.random.default_rng(seed)
    per_seed_examples = np.empty(reps)
    for r in range(reps):
        rows = rng.integers(0, n_seeds, n_seeds)
        cols = rng.integers(0, n_examples, n_examples)
        per_seed_examples[r] = difference[np.ix_(rows, cols)].mean()
    tail = (1 - confidence) / 2
    low, high = np.quantile(per_seed_examples, [tail, 1 - tail])
    below, above = (per_seed_examples <= 0).mean(), (per_seed_examples >= 0).mean()
    p_boot = float(min(1.0, 2 * min(below, above)))
    per_example = difference.mean(axis=0)
    if np.allclose(per_example, 0):
        p_wil = 1.0
    else:
        p_wil = float(wilcoxon(per_example, zero_method="zsplit").pvalue)
    sd = per_example.std(ddof=1) if n_examples > 1 else math.nan
    effect = float(per_example.mean() / sd) if sd and np.isfinite(sd) and sd > 0 else 0.0
    return Comparison(float(difference.mean()), float(low), float(high), p_boot, p_wil, effect, n_seeds, n_examples)


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, (len(p) - rank) * p[index])
        adjusted[index] = min(1.0, running)
    return adjusted


def verdict(difference: float, p_adjusted: float, confidence: float = 0.95) -> str:
    """yes (A better, significant), no (B better, significant) or inconclusive."""
    if p_adjusted < 1 - confidence:
        return "yes" if difference > 0 else "no"
    return "inconclusive"

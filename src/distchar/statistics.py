"""Statistics shared by the studies: inference at the level of the unit that varies.

Claims about an init or a loss are claims about training runs, so a comparison's unit is the
training seed, not the test example: examples scored by one trained model share that model's
luck, and thousands of them say nothing about how a second training run would come out.

- ``seed_interval``: the mean over seeds with a Student-t interval (with 2 seeds the t quantile
  is 12.7, and the interval is as wide as it should be).
- ``paired_comparison``: A against B on (seeds, examples) arrays of per-example scores, oriented
  so that positive favours A, paired by seed (every init of a seed shares the data order and
  start). Each seed gives one difference, the mean over its examples; the verdict's p is the
  exact sign-flip permutation test over those per-seed differences (two-sided; exact up to 16
  seeds, Monte Carlo beyond), the interval a Student-t interval over them, the effect size d_z
  their mean over their standard deviation. Its false-positive rate is right however large the
  between-seed variance (simulated: ``tests/test_comparisons.py``). With n seeds the smallest p
  it can give is 2 / 2^n: 6 seeds are needed for p < 0.05, more under Holm; below that the verdict
  is ``underpowered (n seeds)``. The example-level spread is kept only as a precision figure:
  ``example_se``, the mean over seeds of the standard error of one seed's mean difference.
- ``detectable_effect``: the smallest true difference a design detects at 80% power, from the
  observed spread of the per-seed differences (the power analysis of a run's claims).
- ``holm``: Holm-Bonferroni adjusted p-values; ``verdict``: yes / no / inconclusive /
  underpowered from a difference, its adjusted p and the smallest adjusted p the design allows.
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
    """A against B over seeds (positive difference: A better); see the module docstring."""

    difference: float
    low: float
    high: float
    p: float
    p_min: float
    effect_size: float
    example_se: float
    seeds: int
    examples: int
    seed_sd: float = math.nan
    """Standard deviation of the per-seed differences (what ``detectable_effect`` needs)."""

    def as_dict(self) -> dict:
        return asdict(self)


EXACT_SEEDS = 16
"""Up to this many seeds the sign-flip test enumerates every sign pattern (2^16 = 65,536)."""


def sign_flip_p(differences, reps: int = 20000, seed: int = 0) -> tuple[float, float]:
    """Two-sided sign-flip permutation p of mean(differences) = 0, and the smallest p possible.

    Under no effect each per-seed difference is as likely positive as negative: p is the share of
    sign patterns whose mean is at least as far from 0 as the observed one."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n == 0:
        return math.nan, math.nan
    observed = abs(d.mean()) - 1e-12 * max(1.0, float(np.abs(d).max()))
    if n <= EXACT_SEEDS:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        p = float((np.abs(signs @ d / n) >= observed).mean())
        return p, 2.0 / 2**n
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(reps, n))
    return float(((np.abs(signs @ d / n) >= observed).sum() + 1) / (reps + 1)), 1.0 / (reps + 1)


def paired_comparison(
    a: np.ndarray, b: np.ndarray, reps: int = 20000, confidence: float = 0.95, seed: int = 0
) -> Comparison:
    """A against B at the seed level; see the module docstring.

    ``a`` and ``b`` are (seeds, examples) arrays of scores oriented so that larger is better,
    row s of both from seed s and column i from test example i (NaN: no score, left out)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.size == 0:
        raise DistcharError(
            f"A paired comparison needs two (seeds, examples) arrays of one shape, not {a.shape} and {b.shape}."
        )
    difference = a - b
    per_seed = np.nanmean(difference, axis=1)
    mean, low, high = seed_interval(per_seed, confidence)
    p, p_min = sign_flip_p(per_seed, reps, seed)
    sd = per_seed.std(ddof=1) if len(per_seed) > 1 else math.nan
    effect = float(per_seed.mean() / sd) if np.isfinite(sd) and sd > 0 else 0.0
    counts = np.isfinite(difference).sum(axis=1)
    example_se = (
        float(np.mean(np.nanstd(difference, axis=1, ddof=1) / np.sqrt(counts))) if counts.min() > 1 else math.nan
    )
    return Comparison(mean, low, high, p, p_min, effect, example_se, len(per_seed), difference.shape[1], float(sd))


def detectable_effect(seed_sd: float, seeds: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a design of ``seeds`` seeds detects with probability
    ``power`` at two-sided level ``alpha``, given the per-seed differences' standard deviation
    ``seed_sd``: the paired t test's power from the noncentral t distribution (the sign-flip test
    over seeds has about the same power at these sizes). NaN with fewer than 2 seeds."""
    from scipy.optimize import brentq
    from scipy.stats import nct, t

    if seeds < 2 or not np.isfinite(seed_sd):
        return math.nan
    df, critical = seeds - 1, float(t.ppf(1 - alpha / 2, seeds - 1))

    def shortfall(effect: float) -> float:  # power at standardized effect ``effect`` minus the target
        shift = effect * math.sqrt(seeds)
        other_tail = float(nct.cdf(-critical, df, shift))  # NaN where it underflows: 0
        return float(nct.sf(critical, df, shift)) + (0.0 if math.isnan(other_tail) else other_tail) - power

    return float(brentq(shortfall, 1e-9, 100.0)) * seed_sd


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


def attainable(p_min: float, comparisons: int, confidence: float = 0.95) -> bool:
    """Whether a design whose smallest p is ``p_min`` can reach significance after Holm over
    ``comparisons`` tests (the smallest adjusted p is ``comparisons * p_min``)."""
    return comparisons * p_min < 1 - confidence


def verdict(difference: float, p_adjusted: float, confidence: float = 0.95, *, seeds: int | None = None,
            reachable: bool = True) -> str:  # fmt: skip
    """yes (A better, significant), no (B better, significant), inconclusive, or ``underpowered
    (n seeds)`` when the design cannot reach significance whatever the data."""
    if not reachable:
        return f"underpowered ({seeds} seeds)"
    if p_adjusted < 1 - confidence:
        return "yes" if difference > 0 else "no"
    return "inconclusive"

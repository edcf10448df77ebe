"""Continuous power-law fits with xmin chosen by the KS method of Clauset, Shalizi, Newman (2009).

The estimator, named so results can be compared: for every distinct value as a candidate xmin
(leaving at least ``min_tail`` points above it), alpha is the continuous maximum-likelihood
estimate ``1 + n / sum(log(x / xmin))`` and D the Kolmogorov-Smirnov distance between the tail's
empirical CDF (``arange(n) / n``, as the ``powerlaw`` package defines it) and the fitted CDF; the
candidate with the smallest D wins. All candidates are scored at once with numpy (the approach of
WeightWatcher's fitter), which is what makes bootstrap p-values affordable. Above
``MAX_CANDIDATES`` distinct values, that many candidates evenly spaced in rank are scored instead
of all (xmin then lies within n / MAX_CANDIDATES ranks of the full scan's); the bootstrap refits
use the same rule, so its p-value tests the estimator actually used.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

_CHUNK = 256
MAX_CANDIDATES = 512
"""Most xmin candidates scored in one fit; the full scan below it."""


@dataclass(frozen=True)
class PowerLawFit:
    """One fit. ``sufficient`` is False, with a ``reason``, when there were too few points.

    Args:
        alpha: the exponent of p(x) ~ x^-alpha above xmin.
        xmin: where the power-law tail starts.
        sigma: the standard error of alpha, (alpha - 1) / sqrt(n_tail).
        n_tail: points at or above xmin.
        n: points fitted in all.
        D: the KS distance of the tail.
    """

    alpha: float
    xmin: float
    sigma: float
    n_tail: int
    n: int
    D: float
    sufficient: bool = True
    reason: str = ""

    @property
    def tail_share(self) -> float:
        """The fraction of all points in the power-law tail."""
        return self.n_tail / self.n if self.n else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "tail_share": self.tail_share}


def insufficient(n: int, reason: str) -> PowerLawFit:
    """A fit that could not be made, saying why."""
    nan = float("nan")
    return PowerLawFit(nan, nan, nan, 0, n, nan, sufficient=False, reason=reason)


def _scan(x: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """alpha and D for each candidate start index into the ascending array x."""
    n = x.size
    logs = np.log(x)
    suffix = np.cumsum(logs[::-1])[::-1]  # sum of logs from index i to the end
    n_tail = n - candidates
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 + n_tail / (suffix[candidates] - n_tail * logs[candidates])
    distance = np.full(candidates.size, np.inf)
    for start in range(0, candidates.size, _CHUNK):
        idx = candidates[start : start + _CHUNK]
        first = idx[0]  # candidates ascend: no tail in this chunk starts before it
        a = alpha[start : start + _CHUNK, None]
        offset = np.arange(first, n)[None, :] - idx[:, None]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            fitted = 1.0 - np.exp((1.0 - a) * (logs[None, first:] - logs[idx][:, None]))
            empirical = offset / n_tail[start : start + _CHUNK, None]
            gap = np.where(offset >= 0, np.abs(empirical - fitted), 0.0)
        distance[start : start + _CHUNK] = gap.max(axis=1)
    bad = ~np.isfinite(alpha) | (alpha <= 1.0)
    distance[bad] = np.inf
    return alpha, distance


def fit_power_law(values: np.ndarray, min_tail: int = 10, xmin: float | None = None) -> PowerLawFit:
    """Fit a continuous power law to the positive finite ``values`` (any shape).

    Args:
        values: the data; zeros, negatives, NaN and Inf are dropped.
        min_tail: fewest points a tail may have; with fewer data the fit is marked insufficient.
        xmin: fix xmin instead of choosing it by the KS method.
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    x = x[np.isfinite(x) & (x > 0)]
    n = x.size
    if n < min_tail:
        return insufficient(n, f"{n} positive values, fewer than min_tail = {min_tail}")
    if xmin is None:
        starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
        starts = starts[n - starts >= min_tail]
        if starts.size > MAX_CANDIDATES:
            starts = starts[np.unique(np.linspace(0, starts.size - 1, MAX_CANDIDATES).round().astype(int))]
    else:
        starts = np.array([np.searchsorted(x, xmin)])
        if n - starts[0] < min_tail:
            return insufficient(n, f"{n - starts[0]} values at or above xmin = {xmin:g}, fewer than {min_tail}")
    if starts.size == 0:
        return insufficient(n, f"no candidate xmin leaves {min_tail} values above it")
    alpha, distance = _scan(x, starts)
    best = int(np.argmin(distance))
    if not np.isfinite(distance[best]):
        return insufficient(n, "every candidate tail is constant")
    n_tail = int(n - starts[best])
    a = float(alpha[best])
    return PowerLawFit(a, float(x[starts[best]]), float((a - 1.0) / np.sqrt(n_tail)), n_tail, n, float(distance[best]))


def sample_power_law(alpha: float, xmin: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draws from the continuous power law p(x) ~ x^-alpha, x >= xmin (inverse transform)."""
    return xmin * (1.0 - rng.random(size)) ** (-1.0 / (alpha - 1.0))


def bootstrap_p_value(
    values: np.ndarray, fit: PowerLawFit, repetitions: int, rng: np.random.Generator, min_tail: int = 10
) -> float:
    """The goodness-of-fit p-value of Clauset, Shalizi, Newman (2009), section 4.1.

    Each repetition draws n points: with probability n_tail / n from the fitted power law, else
    uniformly from the observed values below xmin; refits them with xmin chosen afresh; p is the
    share of repetitions whose D is at least the observed D. p < 0.1 rules the power law out.
    The test assumes independent points, which cosine distances among L rows are not: see
    ``distchar.stages.powerlaw``.
    """
    if not fit.sufficient or repetitions <= 0:
        return float("nan")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x) & (x > 0)]
    body = x[x < fit.xmin]

    def one_repetition(seed: np.random.SeedSequence) -> bool:
        local = np.random.default_rng(seed)
        from_tail = local.random(x.size) < fit.tail_share
        n_tail = int(from_tail.sum())
        from_body = local.choice(body, x.size - n_tail) if body.size else []
        synthetic = np.concatenate([sample_power_law(fit.alpha, fit.xmin, n_tail, local), from_body])
        refit = fit_power_law(synthetic, min_tail=min_tail)
        return bool(refit.sufficient and refit.D >= fit.D)

    # one seed per repetition: the same p whatever the number of threads; numpy releases the GIL
    seeds = np.random.SeedSequence(int(rng.integers(2**63))).spawn(repetitions)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        worse = sum(pool.map(one_repetition, seeds))
    return worse / repetitions

"""Continuous power-law fits with xmin chosen by the KS method of Clauset, Shalizi, Newman (2009).

The estimator, named so results can be compared. The positive finite values are sorted; a
candidate xmin u is a distinct value with at least ``min_tail`` points at or above it; its tail T
holds the n_T points x >= u (repeated values with their multiplicity). For each candidate:

- alpha(u) = 1 + n_T / sum_{x in T} log(x / u), the continuous maximum-likelihood estimate;
- D(u) = max over the distinct values v in T of |S(v) - F(v)|, with F(v) = 1 - (v / u)^(1 - alpha)
  the fitted CDF and S(v) = #{x in T : x < v} / n_T the tail's empirical CDF just below v: a value
  repeated m times is one step of m / n_T, compared once. This is the ``powerlaw`` package's D
  (2.0.0: ``statistics.cdf``, ``searchsorted(side='left')`` at the unique values, rescaled above
  xmin by ``compute_distance_metrics``); without ties S is ``arange(n_T) / n_T``, as in plfit and
  WeightWatcher. Only these left limits are compared, as there: D is not the supremum distance,
  which would also take the right limits #{x in T : x <= v} / n_T.

The xmin is the candidate with the smallest D among those with alpha > 1. xmin, alpha and D then
equal ``powerlaw.Fit(x, xmin=(x.min(), hi), parameter_ranges={"alpha": [1, None]})``, where ``hi``
(the second distinct value above x[n - min_tail]) gives it our candidates: tested with and without
ties, to 1e-10. With its defaults ``powerlaw.Fit`` differs in two rules, not in the arithmetic:
it has no ``min_tail`` (it scans every distinct value but the two largest: its xmin range is
[min, max) and it drops the last candidate), and its alpha range (0, 3) discards every candidate
whose alpha is 3 or more, which heavy-tailed eigenvalue spectra often have (on 190 of SmolLM2's
210 matrices it moves the fit). Two finer differences remain with the widened range:
outside (1.5, 3] it maximises the likelihood numerically (Nelder-Mead started from the closed
form, which stays there: about 1e-15 apart where checked), and it rejects alpha below 1.01 as too
close to its bound, where ours accepts any alpha above 1.

All candidates are scored at once with numpy, in chunks of candidates against the tail's distinct
values, which is what makes bootstrap p-values affordable. Above ``max_candidates`` candidates
(``MAX_CANDIDATES`` = 512 by default), only that many, evenly spaced in rank among the candidates
(``round(linspace(0, c - 1, max_candidates))``), are scored and the best of them is reported:
every skipped candidate lies within about c / max_candidates ranks of a scored one, but the best of
the subset need not neighbour the best of the full scan. The bootstrap refits use the same rule,
so its p-value tests the estimator actually used; ``max_candidates=None`` scores every candidate
(the per-matrix ESD fit does, as WeightWatcher does).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from distchar.progress import each

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


def xmin_candidates(x: np.ndarray, min_tail: int, max_candidates: int | None = MAX_CANDIDATES) -> np.ndarray:
    """Start indices into the ascending array ``x`` of the candidate xmins (see the module docstring).

    The first position of every distinct value with at least ``min_tail`` points at or above it;
    above ``max_candidates`` of them, that many evenly spaced in rank (None: all of them).
    """
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    starts = starts[x.size - starts >= min_tail]
    if max_candidates is not None and starts.size > max_candidates:
        starts = starts[np.unique(np.linspace(0, starts.size - 1, max_candidates).round().astype(int))]
    return starts


def _scan(x: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """alpha and D for each candidate: ascending start indices into the ascending array x, each the
    first position of its value. D compares the tail's empirical CDF just below each of its
    distinct values (the points of the tail below it, over n_tail) with the fitted CDF there."""
    n = x.size
    logs = np.log(x)
    suffix = np.cumsum(logs[::-1])[::-1]  # sum of logs from index i to the end
    n_tail = n - candidates
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 + n_tail / (suffix[candidates] - n_tail * logs[candidates])
    below = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])  # points below each distinct value
    distinct_logs = logs[below]
    rank = np.searchsorted(below, candidates)  # each candidate's place among the distinct values
    distance = np.full(candidates.size, np.inf)
    for start in range(0, candidates.size, _CHUNK):
        chunk = slice(start, start + _CHUNK)
        first = rank[start]  # candidates ascend: no tail in this chunk starts before it
        a = alpha[chunk, None]
        inside = below[None, first:] - candidates[chunk, None]  # tail points below v; < 0: v outside
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            fitted = 1.0 - np.exp((1.0 - a) * (distinct_logs[None, first:] - distinct_logs[rank[chunk], None]))
            empirical = inside / n_tail[chunk, None]
            gap = np.where(inside >= 0, np.abs(empirical - fitted), 0.0)
        distance[chunk] = gap.max(axis=1)
    bad = ~np.isfinite(alpha) | (alpha <= 1.0)
    distance[bad] = np.inf
    return alpha, distance


def fit_power_law(
    values: np.ndarray, min_tail: int = 10, xmin: float | None = None, max_candidates: int | None = MAX_CANDIDATES
) -> PowerLawFit:
    """Fit a continuous power law to the positive finite ``values`` (any shape).

    Args:
        values: the data; zeros, negatives, NaN and Inf are dropped.
        min_tail: fewest points a tail may have; with fewer data the fit is marked insufficient.
        xmin: fix xmin instead of choosing it by the KS method (the tail starts at the first value
            at or above it).
        max_candidates: most candidate xmins scored (evenly spaced in rank); None scores all.
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    x = x[np.isfinite(x) & (x > 0)]
    n = x.size
    if n < min_tail:
        return insufficient(n, f"{n} positive values, fewer than min_tail = {min_tail}")
    if xmin is None:
        starts = xmin_candidates(x, min_tail, max_candidates)
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
        worse = sum(each(pool.map(one_repetition, seeds), desc="bootstrap", unit="fit", total=repetitions))
    return worse / repetitions

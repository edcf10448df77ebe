"""Synthetic singular-value matrices (layers x k): a Gaussian copula with Pareto marginals.

What we chose, and why:

- **Latent field.** Z(l, j) over layer l and singular index j is a zero-mean Gaussian process with
  a separable squared-exponential kernel, K = K_layer (x) K_index, unit variance, plus an
  independent "nugget" share: Z = sqrt(1 - nugget) A_L E A_k^T + sqrt(nugget) E', with A the
  Cholesky factors of the two small kernels and E, E' standard normal. Separability is what makes
  sampling cheap: two Cholesky factorisations (L^3 + k^3) and two products instead of a
  factorisation of the (L k) x (L k) kernel. ``layer_length`` is the correlation length over
  depth (neighbouring layers look alike, distance grows with gap, as stage 03 finds),
  ``index_length`` over the singular index (how alike the values inside one profile are).
- **Marginal.** Each value is Pareto: x = xmin (1 - Phi(Z))^(-1 / (alpha - 1)), density ~ x^-alpha
  above xmin: heavy-tailed magnitudes, whose tail exponent is the generator's alpha.
- **Profiles.** Each row is sorted in descending order, as singular values are.
- **Outlier layers.** Each row l is then tilted, x(l, j) exp(tau_l h(j)) with h running linearly
  from +1/2 (largest value) to -1/2 (smallest), and re-sorted: tau_l > 0 makes a profile steeper,
  tau_l < 0 flatter. tau_l = +-tilt_scale (U^(-1/tilt_alpha) - 1) with a random sign, a Lomax
  (Pareto II) magnitude: most layers barely tilt, a few tilt a lot. Why: on SmolLM2 the heavy
  tail of the distance distribution comes from one or two layers whose profile shape differs
  (q: layer 0, whose top value is 11 times its 64th against 2.4 times elsewhere; up: layers 27
  and 28), not from the smooth variation a stationary process gives; without this term the
  synthetic distances have no such tail. With tilt_scale = 0 the generator is the plain copula.

``estimate`` gives starting values from a real S_t: alpha and xmin by maximum likelihood
(xmin = the smallest value); the correlation lengths by least squares from the correlations at
lags 1 to 32 of the rank-based normal scores (the copula's own estimate, free of any error in
alpha) along depth and along the index, against the kernel's rho(h) = (1 - nugget)
exp(-h^2 / (2 length^2)) (one lag alone is too sensitive for long lengths). On real, sorted rows
the index length comes out long (sorting makes neighbours alike); it is only a start. NSGA-II
then tunes them (``distchar.generator.tuning``).

Why a copula and not a GP on log values: the copula fixes the marginal exactly (Pareto with the
tuned alpha) whatever the correlation, so the two properties the study describes (tail exponent,
smoothness over depth) are separate knobs.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special, stats

JITTER = 1e-6


@dataclass(frozen=True)
class GeneratorParams:
    """alpha (> 1), xmin (> 0), layer_length and index_length (> 0, in layers / indices), nugget in
    [0, 1), tilt_scale (>= 0) and tilt_alpha (> 0) of the outlier layers."""

    alpha: float
    xmin: float
    layer_length: float
    index_length: float
    nugget: float = 0.1
    tilt_scale: float = 0.0
    tilt_alpha: float = 2.0

    def as_dict(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}


@functools.lru_cache(maxsize=64)
def _kernel_factor(n: int, length: float) -> np.ndarray:
    """Cholesky factor of the n x n squared-exponential kernel (cached: every draw of a candidate
    reuses it; callers never write into it)."""
    t = np.arange(n, dtype=np.float64)
    kernel = np.exp(-((t[:, None] - t[None, :]) ** 2) / (2.0 * max(length, 1e-3) ** 2))
    return np.linalg.cholesky(kernel + JITTER * np.eye(n))


def sample_latent(params: GeneratorParams, n_layers: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """The Gaussian field Z (n_layers x k), unit variance, by the Kronecker factorisation."""
    smooth = _kernel_factor(n_layers, params.layer_length) @ rng.standard_normal((n_layers, k))
    smooth = smooth @ _kernel_factor(k, params.index_length).T
    return np.sqrt(1.0 - params.nugget) * smooth + np.sqrt(params.nugget) * rng.standard_normal((n_layers, k))


def pareto_quantile(u: np.ndarray, alpha: float, xmin: float) -> np.ndarray:
    return xmin * (1.0 - u) ** (-1.0 / (alpha - 1.0))


def profile_position(k: int) -> np.ndarray:
    """h(j): +1/2 at the largest value of a profile down to -1/2 at the smallest."""
    return 0.5 - np.arange(k) / max(k - 1, 1)


def sample(params: GeneratorParams, n_layers: int, k: int, rng: np.random.Generator, sort: bool = True) -> np.ndarray:
    """A synthetic S (n_layers x k), rows sorted in descending order and tilted; with ``sort`` False,
    the copula's values before the profile steps (no sorting, no tilt)."""
    u = special.ndtr(sample_latent(params, n_layers, k, rng))
    x = pareto_quantile(np.clip(u, 0.0, 1.0 - 1e-12), params.alpha, params.xmin)
    tilt_u, sign = rng.random(n_layers), rng.choice([-1.0, 1.0], n_layers)  # drawn always: common random numbers
    if not sort:
        return x
    x = -np.sort(-x, axis=1)
    if params.tilt_scale > 0:
        tau = sign * params.tilt_scale * (np.maximum(tilt_u, 1e-12) ** (-1.0 / params.tilt_alpha) - 1.0)
        x = -np.sort(-(x * np.exp(np.clip(tau[:, None] * profile_position(k)[None, :], -50, 50))), axis=1)
    return x


def autocorrelation(z: np.ndarray, max_lag: int) -> np.ndarray:
    """Correlation along axis 0 at lags 1..max_lag of standard normal scores (mean 0 and variance 1
    by construction, so no per-column centring, which biases short series downwards)."""
    variance = float(np.mean(z**2))
    return np.array([float(np.mean(z[:-h] * z[h:])) / variance for h in range(1, max_lag + 1)])


def fit_length(rho: np.ndarray, nugget: float, longest: float) -> float:
    """The squared-exponential length whose correlations (1 - nugget) exp(-h^2 / (2 length^2)) at lags
    h = 1, 2, ... are closest (least squares) to ``rho``; searched on a log grid up to ``longest``."""
    lags = np.arange(1, len(rho) + 1, dtype=np.float64)
    grid = np.geomspace(0.1, max(longest, 0.2), 400)
    model = (1.0 - nugget) * np.exp(-(lags[None, :] ** 2) / (2.0 * grid[:, None] ** 2))
    return float(grid[np.argmin(((model - rho[None, :]) ** 2).sum(1))])


def _length_along(z: np.ndarray, nugget: float) -> float:
    n = z.shape[0]
    if n <= 2:
        return 1.0
    return fit_length(autocorrelation(z, max(1, min(n // 4, 32))), nugget, longest=3.0 * n)


def estimate(S: np.ndarray, nugget: float = 0.1) -> GeneratorParams:
    """Starting parameters from a real (layers x k) singular-value matrix; see the module docstring."""
    x = np.asarray(S, dtype=np.float64)
    values = x[np.isfinite(x) & (x > 0)]
    if values.size < 2 or np.ptp(values) == 0:
        raise ValueError("needs at least two distinct positive values")
    xmin = float(values.min())
    alpha = 1.0 + values.size / float(np.log(values / xmin).sum())
    z = special.ndtri(stats.rankdata(np.nan_to_num(x, nan=xmin)).reshape(x.shape) / (x.size + 1.0))
    return GeneratorParams(
        alpha=alpha,
        xmin=xmin,
        layer_length=_length_along(z, nugget),
        index_length=_length_along(z.T, nugget),
        nugget=nugget,
        tilt_scale=_tilt_scale(x),
        tilt_alpha=2.0,
    )


def _tilt_scale(x: np.ndarray) -> float:
    """Start for tilt_scale: the median absolute deviation of the rows' log-slopes against h(j),
    divided by the Lomax median factor 2^(1/2) - 1 (tilt_alpha = 2)."""
    rows = x[np.all(np.isfinite(x) & (x > 0), axis=1)]
    if len(rows) < 3 or x.shape[1] < 2:
        return 0.0
    h = profile_position(x.shape[1])
    logs = np.log(rows)
    slopes = ((logs - logs.mean(1, keepdims=True)) @ (h - h.mean())) / float(((h - h.mean()) ** 2).sum())
    return float(np.median(np.abs(slopes - np.median(slopes))) / (np.sqrt(2.0) - 1.0))


def match_scale(generated: np.ndarray, real: np.ndarray, rank: int) -> np.ndarray:
    """Each generated row scaled so its first ``rank`` values have the Frobenius norm of the real
    row's first ``rank`` (the size of PiSSA's adapter for that layer); the shape is untouched."""
    generated, real = np.asarray(generated, dtype=np.float64), np.asarray(real, dtype=np.float64)
    if generated.shape[0] != real.shape[0] or min(generated.shape[1], real.shape[1]) < rank:
        raise ValueError(f"needs matching rows and at least {rank} values per row")
    target = np.linalg.norm(real[:, :rank], axis=1)
    current = np.linalg.norm(generated[:, :rank], axis=1)
    return generated * (target / current)[:, None]


def generated_profiles(
    chosen: dict[str, GeneratorParams], real: dict[str, np.ndarray], layers: dict[str, np.ndarray],
    n_layers: int, rank: int, seed: int,
) -> dict[str, np.ndarray]:  # fmt: skip
    """One synthetic row per layer 0..n_layers-1 and type, scaled to the real top-``rank`` norm of its layer."""
    rng = np.random.default_rng(seed)
    profiles = {}
    for kind, params in chosen.items():
        k = real[kind].shape[1]
        synthetic = sample(params, n_layers, k, rng)
        target = np.full((n_layers, k), np.nan)
        target[layers[kind]] = real[kind]
        missing = np.isnan(target[:, 0])
        target[missing] = np.median(real[kind], axis=0)
        profiles[kind] = match_scale(synthetic, target, min(rank, k))
    return profiles

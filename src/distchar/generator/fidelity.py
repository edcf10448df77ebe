"""How close synthetic singular-value matrices are to a real one.

- ``distance_ks``: two-sample KS statistic between the real and the synthetic cosine distances
  (upper triangles, stage 03's definition);
- ``alpha_gap``: |alpha_real - alpha_synthetic| of the power-law fits of those distances (stage 04's
  fitter), at most ``MAX_FIT_GAP``; ``FAILED_FIT_GAP``, worse than any fitted gap, where the
  synthetic fit is insufficient, so NSGA-II never prefers a generator whose distances cannot be
  fitted (where the real fit is insufficient every candidate gets it: no preference);
- ``spectrum_wasserstein``: Wasserstein-1 distance between the logarithms of all real and all
  synthetic values (scale-free: a ratio error counts the same at every magnitude).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from distchar.distances import cosine_distances, upper_triangle
from distchar.fits.power_law import fit_power_law
from distchar.generator.gp_pareto import GeneratorParams, sample

OBJECTIVES = ("distance_ks", "alpha_gap", "spectrum_wasserstein")
MAX_FIT_GAP = 50.0
"""The largest alpha gap a successful fit scores (real gaps are 0.7-3.9 on SmolLM2)."""
FAILED_FIT_GAP = 2 * MAX_FIT_GAP
"""The gap of a synthetic draw whose power law cannot be fitted: worse than every fitted one."""


def upper_distances(S: np.ndarray) -> np.ndarray:
    """The finite cosine distances between the rows of ``S``, each pair once."""
    values = upper_triangle(cosine_distances(S))
    return values[np.isfinite(values)]


def log_values(S: np.ndarray) -> np.ndarray:
    return np.log(S[np.isfinite(S) & (S > 0)])


@dataclass(frozen=True)
class Reference:
    """What every comparison with one real matrix needs, computed once (tuning compares thousands)."""

    distances: np.ndarray
    log_values: np.ndarray
    alpha: float | None  # None where the real distances have no sufficient fit


def reference(real: np.ndarray, min_tail: int = 10, alpha: float | None = None) -> Reference:
    """The real matrix's distances, log values and (unless given) fitted distance exponent."""
    distances = upper_distances(real)
    if alpha is None:
        fit = fit_power_law(distances, min_tail)
        alpha = fit.alpha if fit.sufficient else None
    return Reference(distances, log_values(real), alpha)


def fidelity(real: np.ndarray | Reference, synthetic: np.ndarray, min_tail: int = 10) -> dict:
    """The three measures of the module docstring for one synthetic matrix."""
    ref = real if isinstance(real, Reference) else reference(real, min_tail)
    d_syn = upper_distances(synthetic)
    ks = float(stats.ks_2samp(ref.distances, d_syn).statistic) if ref.distances.size and d_syn.size else 1.0
    fit_syn = fit_power_law(d_syn, min_tail)
    fitted = ref.alpha is not None and fit_syn.sufficient
    gap = min(abs(ref.alpha - fit_syn.alpha), MAX_FIT_GAP) if fitted else FAILED_FIT_GAP
    wasserstein = float(stats.wasserstein_distance(ref.log_values, log_values(synthetic)))
    return {"distance_ks": ks, "alpha_gap": float(gap), "spectrum_wasserstein": wasserstein}


def check_fidelity(
    real: np.ndarray, chosen: GeneratorParams, draws: int, seed: int, alpha: float
) -> tuple[dict, list[np.ndarray]]:
    """Mean and standard deviation of every objective over ``draws`` fresh synthetic matrices, and the matrices."""
    rng, ref = np.random.default_rng(seed), reference(real, alpha=alpha)
    matrices = [sample(chosen, *real.shape, rng) for _ in range(draws)]
    scores = [fidelity(ref, matrix) for matrix in matrices]
    summary = {name: {"mean": float(np.mean([s[name] for s in scores])), "sd": float(np.std([s[name] for s in scores]))}
               for name in OBJECTIVES}  # fmt: skip
    return summary, matrices

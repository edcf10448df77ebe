"""How close synthetic singular-value matrices are to a real one.

- ``distance_ks``: two-sample KS statistic between the real and the synthetic cosine distances
  (upper triangles, stage 03's definition);
- ``alpha_gap``: |alpha_real - alpha_synthetic| of the power-law fits of those distances (stage 04's
  fitter); 1.0 where either fit is insufficient, so a failed fit is never a good score;
- ``spectrum_wasserstein``: Wasserstein-1 distance between the logarithms of all real and all
  synthetic values (scale-free: a ratio error counts the same at every magnitude).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from distchar.distances import cosine_distances
from distchar.fits.power_law import fit_power_law

OBJECTIVES = ("distance_ks", "alpha_gap", "spectrum_wasserstein")
FAILED_FIT_GAP = 1.0


def upper_distances(S: np.ndarray) -> np.ndarray:
    d = cosine_distances(S)
    i, j = np.triu_indices(d.shape[0], k=1)
    values = d[i, j]
    return values[np.isfinite(values)]


def fidelity(real: np.ndarray, synthetic: np.ndarray, min_tail: int = 10, real_alpha: float | None = None) -> dict:
    """The three measures of the module docstring for one synthetic matrix."""
    d_real, d_syn = upper_distances(real), upper_distances(synthetic)
    ks = float(stats.ks_2samp(d_real, d_syn).statistic) if d_real.size and d_syn.size else 1.0
    if real_alpha is None:
        fit = fit_power_law(d_real, min_tail)
        real_alpha = fit.alpha if fit.sufficient else None
    fit_syn = fit_power_law(d_syn, min_tail)
    gap = abs(real_alpha - fit_syn.alpha) if real_alpha is not None and fit_syn.sufficient else FAILED_FIT_GAP
    r = np.log(real[np.isfinite(real) & (real > 0)])
    s = np.log(synthetic[np.isfinite(synthetic) & (synthetic > 0)])
    return {"distance_ks": ks, "alpha_gap": float(gap), "spectrum_wasserstein": float(stats.wasserstein_distance(r, s))}

"""Per-matrix spectral summaries from singular values: spectral norm, stable rank, ESD alpha."""

from __future__ import annotations

import numpy as np

from distchar.fits.power_law import fit_power_law


def spectral_summary(singular_values: np.ndarray, frobenius_norm: float, min_tail: int = 10) -> dict[str, float | int]:
    """Summaries of one matrix.

    Args:
        singular_values: the values computed for it, descending (all of them, or the top k).
        frobenius_norm: its Frobenius norm (from the whole matrix, so exact even with top-k values).
        min_tail: fewest eigenvalues a power-law tail may have.

    Returns:
        spectral_norm (largest singular value); stable_rank (||W||_F^2 / ||W||_2^2); esd_alpha,
        esd_xmin, esd_D, esd_n_tail: the power-law fit of the eigenvalues ``s**2`` of ``W^T W``
        above xmin, as WeightWatcher's ``alpha`` (NaN if too few values); n_values used.
    """
    s = np.asarray(singular_values, dtype=np.float64)
    spectral_norm = float(s[0]) if s.size else float("nan")
    fit = fit_power_law(s[s > 0] ** 2, min_tail=min_tail)
    return {
        "spectral_norm": spectral_norm,
        "stable_rank": float(frobenius_norm**2 / spectral_norm**2) if spectral_norm > 0 else float("nan"),
        "esd_alpha": fit.alpha,
        "esd_xmin": fit.xmin,
        "esd_D": fit.D,
        "esd_n_tail": fit.n_tail,
        "n_values": int(s.size),
    }

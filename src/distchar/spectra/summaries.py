"""Per-matrix spectral summaries from singular values: spectral norm, stable rank, ESD alpha.

The ESD alpha is WeightWatcher's ``alpha``: the power law fitted to the eigenvalues ``s**2`` of
``W^T W`` by ``distchar.fits.power_law.fit_power_law`` with every candidate xmin scored (no
candidate cap; WeightWatcher 0.7.7 has none either: it scans every eigenvalue above 1e-5 but the
largest, in a Python loop). One rule differs: a tail must hold at least ``min_tail`` (10)
eigenvalues, where WeightWatcher accepts tails down to 2 eigenvalues (below 20 eigenvalues it
switches to a different, small-sample fit: a bias-corrected alpha and a penalised KS objective).
Where WeightWatcher's best tail has 10 or more eigenvalues the two alphas are equal (to about
1e-12, tested on SmolLM2's 576-wide matrices); where it is shorter (7 of SmolLM2-135M's 210
matrices, 2 of its 60 q and o: layer 23 o has alpha 16.0 from 8 eigenvalues there, 2.03 from 157
here), ours is the best tail of at least 10 eigenvalues.

The fit needs the whole spectrum: fitted to the top k values a randomized SVD returns, it would
describe only the largest eigenvalues (its xmin chosen among them, its tail cut at k), which is
not the quantity. So the ESD columns are NaN where only the top values were computed, and
``esd_note`` says why (and why any other fit is missing); it is empty where the fit was made.
"""

from __future__ import annotations

import numpy as np

from distchar.fits.power_law import fit_power_law, insufficient

TOP_K_ONLY = "only the top {k} singular values (randomized SVD): the ESD alpha needs every eigenvalue"
"""``esd_note`` where the summary saw the top k values only."""


def spectral_summary(
    singular_values: np.ndarray, frobenius_norm: float, min_tail: int = 10, full_spectrum: bool = True
) -> dict[str, float | int | str]:
    """Summaries of one matrix.

    Args:
        singular_values: the values computed for it, descending (all of them, or the top k).
        frobenius_norm: its Frobenius norm (from the whole matrix, so exact even with top-k values).
        min_tail: fewest eigenvalues a power-law tail may have.
        full_spectrum: whether ``singular_values`` holds every singular value of the matrix (the
            ESD fit is made only then).

    Returns:
        spectral_norm (largest singular value); stable_rank (||W||_F^2 / ||W||_2^2); esd_alpha,
        esd_xmin, esd_D, esd_n_tail: the power-law fit of the eigenvalues ``s**2`` of ``W^T W``
        (see the module docstring), NaN where it was not made; esd_note: "" where it was made, why
        not otherwise; n_values used.
    """
    s = np.asarray(singular_values, dtype=np.float64)
    spectral_norm = float(s[0]) if s.size else float("nan")
    if full_spectrum:
        fit = fit_power_law(s[s > 0] ** 2, min_tail=min_tail, max_candidates=None)
    else:
        fit = insufficient(s.size, TOP_K_ONLY.format(k=s.size))
    return {
        "spectral_norm": spectral_norm,
        "stable_rank": float(frobenius_norm**2 / spectral_norm**2) if spectral_norm > 0 else float("nan"),
        "esd_alpha": fit.alpha,
        "esd_xmin": fit.xmin,
        "esd_D": fit.D,
        "esd_n_tail": fit.n_tail if fit.sufficient else float("nan"),
        "esd_note": fit.reason,
        "n_values": int(s.size),
    }

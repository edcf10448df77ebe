"""Is it a power law? Likelihood-ratio tests against the usual heavy-tailed rivals.

The tests are those of Clauset, Shalizi, Newman (2009), run by the ``powerlaw`` package (2.0.0)
on the tail above our xmin, so that every candidate is fitted to the same points: the normalised
log-likelihood ratio R (positive favours the power law) and its p-value (Vuong's test; for the
nested truncated power law, the chi-squared test that ``powerlaw`` forces).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import numpy as np

from distchar.fits.power_law import PowerLawFit

ALTERNATIVES: tuple[str, ...] = ("lognormal", "exponential", "truncated_power_law", "stretched_exponential")
SIGNIFICANCE = 0.1
"""p below this counts as significant, the threshold Clauset, Shalizi, Newman use."""


def compare_alternatives(values: np.ndarray, fit: PowerLawFit) -> dict[str, dict[str, float]]:
    """R and p of every pair of families, on the tail above ``fit.xmin``.

    Keys are ``"A vs B"`` with A, B in ``power_law`` and ``ALTERNATIVES``; R > 0 favours A.
    """
    return fit_families(values, fit)[0]


def fit_families(values: np.ndarray, fit: PowerLawFit):
    """(the pairwise tests, the ``powerlaw.Fit`` holding every family fitted above ``fit.xmin``).

    The Fit is kept so that figures reuse the fitted candidates instead of fitting them again.
    """
    if not fit.sufficient:
        return {}, None
    import powerlaw

    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x) & (x > 0)]
    results = {}
    # powerlaw prints progress and warns about every numerical hiccup of its optimisers
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            model = powerlaw.Fit(x, xmin=fit.xmin, verbose=False)
            families = ("power_law", *ALTERNATIVES)
            for i, first in enumerate(families):
                for second in families[i + 1 :]:
                    r, p = model.distribution_compare(first, second, normalized_ratio=True)
                    results[f"{first} vs {second}"] = {"R": float(r), "p": float(p)}
        finally:
            logging.disable(logging.NOTSET)
    return results, model


def preferred_family(comparisons: dict[str, dict[str, float]], gof_p: float) -> str:
    """The family the tests favour: ``power_law``, an alternative's name, or ``inconclusive``.

    A family is out if another beats it significantly (p < 0.1 in their likelihood-ratio test);
    the power law is also out if the bootstrap rules it out (gof_p < 0.1). Of the families left,
    the one with the most significant wins is preferred; a tie is ``inconclusive``.
    """
    if not comparisons:
        return "insufficient"
    families = ("power_law", *ALTERNATIVES)
    wins = dict.fromkeys(families, 0)
    beaten = set()
    for pair, test in comparisons.items():
        first, second = pair.split(" vs ")
        if test["p"] < SIGNIFICANCE:
            winner, loser = (first, second) if test["R"] > 0 else (second, first)
            wins[winner] += 1
            beaten.add(loser)
    if gof_p < SIGNIFICANCE:
        beaten.add("power_law")
    standing = {f: wins[f] for f in families if f not in beaten}
    if not standing:
        return "inconclusive"
    best = max(standing.values())
    leaders = [f for f, w in standing.items() if w == best]
    return leaders[0] if len(leaders) == 1 else "inconclusive"


def power_law_versus(comparisons: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The power law's own tests, keyed by the alternative (R > 0 favours the power law)."""
    return {pair.split(" vs ")[1]: test for pair, test in comparisons.items() if pair.startswith("power_law vs ")}

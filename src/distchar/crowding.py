"""The improved crowding distance of Chu and Yu (2018) for NSGA-II, as a pymoo crowding function.

NSGA-II's crowding distance of a point n on a front sorted by objective m adds
``(f[n+1] - f[n-1]) / (f_max - f_min)``, the gap between both neighbours. The improved distance
adds only the gap to the next point, ``(f[n+1] - f[n]) / (f_max - f_min)``, so points that bulge
toward the ideal point (small f after the sort) rank higher. As in pymoo's ``cd``: the sum over
objectives is divided by their number; the first and last point of every objective with a range
are infinite; an objective whose values are all equal adds nothing; of identical points only the
first keeps a distance (computed among the distinct points), the others get 0 (found by one
lexicographic sort, O(n log n), not by pymoo's pairwise duplicate search).

Use: ``NSGA2(survival=RankAndCrowding(crowding_func=crowding_function("improved")))``; any of
pymoo's names ("cd", "pcd", "ce", "mnn", "2nn") passes through ``crowding_function`` unchanged.
"""

from __future__ import annotations

import numpy as np

from distchar.errors import DistcharError

PYMOO_BUILTINS = ("cd", "pcd", "ce", "mnn", "2nn")
CROWDING_CHOICES = (*PYMOO_BUILTINS, "improved")


def improved_crowding_distance(F: np.ndarray, **kwargs) -> np.ndarray:
    """Improved crowding distance of every row of ``F`` (points x objectives); see the module docstring."""
    F = np.asarray(F, dtype=float)
    rows = np.lexsort(F.T[::-1])
    repeated = np.all(F[rows[1:]] == F[rows[:-1]], axis=1)
    if repeated.any():  # compute on the distinct points; a repeat gets 0
        distance = np.zeros(len(F))
        first = np.sort(np.concatenate([rows[:1], rows[1:][~repeated]]))
        distance[first] = _improved(F[first])
        return distance
    return _improved(F)


def _improved(F: np.ndarray) -> np.ndarray:
    n, m = F.shape
    if n <= 2:
        return np.full(n, np.inf)
    order = np.argsort(F, axis=0, kind="mergesort")
    ranked = np.take_along_axis(F, order, axis=0)
    span = ranked[-1] - ranked[0]
    has_range = span > 0
    contribution = np.zeros((n, m))
    contribution[:-1] = np.divide(np.diff(ranked, axis=0), span, out=np.zeros((n - 1, m)), where=has_range)
    contribution[0, has_range] = np.inf
    contribution[-1, has_range] = np.inf
    per_objective = np.empty((n, m))
    np.put_along_axis(per_objective, order, contribution, axis=0)
    return per_objective.sum(axis=1) / m


def crowding_function(name: str):
    """What ``RankAndCrowding(crowding_func=...)`` takes for ``name``: pymoo's built-in names as they
    are, ``improved`` as a pymoo ``FunctionalDiversity`` of ``improved_crowding_distance``."""
    if name in PYMOO_BUILTINS:
        return name
    if name == "improved":
        from pymoo.operators.survival.rank_and_crowding.metrics import FunctionalDiversity

        return FunctionalDiversity(improved_crowding_distance, filter_out_duplicates=False)
    raise DistcharError(f"Unknown crowding function '{name}'; choose one of {', '.join(CROWDING_CHOICES)}.")

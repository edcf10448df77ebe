"""Quality of an obtained two-objective front against the true one: Deb's Upsilon and Delta, IGD, HV.

All four are computed on the non-dominated, distinct points of a population (what NSGA-II returns
as its optimum), against ``uniform_front(true_front(problem), 500)``: 500 points evenly spaced along
the true front, as in Deb et al. (2002).

- ``upsilon`` (convergence, lower is better): the mean distance from each obtained point to the
  nearest of the 500 points; pymoo's GD against them.
- ``delta`` (diversity, lower is better; 0 is an evenly spread front that reaches both extremes):
  ``(d_f + d_l + sum |d_i - mean d|) / (d_f + d_l + (N - 1) mean d)`` with d_i the distances
  between neighbours sorted by f1 and d_f, d_l the distances from the true front's extremes to the
  obtained ones. One obtained point gives 1.
- ``igd`` (both, lower is better): the mean distance from each of the 500 points to the nearest
  obtained one; pymoo's IGD. Upsilon and IGD come from one distance matrix (pymoo's GD alone takes
  4 ms a call, and the study scores every generation); a test holds them to pymoo's values.
- ``hv`` (both, higher is better): the hypervolume (pymoo's HV) dominated up to a reference point,
  divided by the true front's; the reference point is the true front's worst value of each
  objective plus 10% of its range, so 1 means as good as the true front.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from distchar.studies.nsga2.problems import non_dominated, true_front, uniform_front

METRICS = ("upsilon", "delta", "igd", "hv")
LOWER_IS_BETTER = {"upsilon": True, "delta": True, "igd": True, "hv": False}
REFERENCE_POINTS = 500


def delta(F: np.ndarray, front: np.ndarray) -> float:
    """Deb's diversity Delta of the non-dominated points ``F`` against the sorted true ``front``."""
    return _delta(non_dominated(F), front)


def _delta(F: np.ndarray, front: np.ndarray) -> float:
    """``delta`` of points already non-dominated, distinct and sorted by f1."""
    d_f = float(np.linalg.norm(F[0] - front[0]))
    d_l = float(np.linalg.norm(F[-1] - front[-1]))
    gaps = np.linalg.norm(np.diff(F, axis=0), axis=1)
    if len(gaps) == 0:
        return 1.0
    mean = gaps.mean()
    denominator = d_f + d_l + len(gaps) * mean
    return float((d_f + d_l + np.abs(gaps - mean).sum()) / denominator) if denominator > 0 else 0.0


class FrontQuality:
    """The four metrics of any population of one problem (the reference parts built once)."""

    def __init__(self, problem: str, front: np.ndarray | None = None):
        from pymoo.indicators.hv import HV

        self.front = true_front(problem) if front is None else np.asarray(front, dtype=float)
        self.reference = uniform_front(self.front, REFERENCE_POINTS)
        low, high = self.front.min(axis=0), self.front.max(axis=0)
        self.ref_point = high + 0.1 * (high - low)
        self._hv = HV(ref_point=self.ref_point)
        self.true_hv = float(self._hv(self.front))

    def __call__(self, F: np.ndarray) -> dict[str, float]:
        F = non_dominated(F)
        inside = F[np.all(F < self.ref_point, axis=1)]
        hv = float(self._hv(inside)) / self.true_hv if len(inside) else 0.0
        distances = cdist(F, self.reference)
        return {"upsilon": float(distances.min(axis=1).mean()), "delta": _delta(F, self.front),
                "igd": float(distances.min(axis=0).mean()), "hv": hv}  # fmt: skip

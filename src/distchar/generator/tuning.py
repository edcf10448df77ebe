"""Tuning the generator with NSGA-II (pymoo) on the fidelity objectives.

Decision variables: alpha in [1.05, 8], log10 of the two correlation lengths (layer: 0.3 to 3 L,
index: 0.3 to 3 k), the nugget in [0, 0.95], the outlier layers' tilt_scale in [0, 4] and
tilt_alpha in [0.5, 6]; xmin stays at its maximum-likelihood value (it
sets the scale, which cosine distances ignore and the log-Wasserstein measure sees directly).
Objectives: those of ``distchar.generator.fidelity.OBJECTIVES``, each averaged over
``draws`` synthetic matrices drawn with the same seeds for every candidate (common random
numbers, so two candidates differ by their parameters, not by luck). The crowding function of
NSGA-II's survival is a parameter (pymoo's built-ins or ``improved``, Chu and Yu 2018).

The chosen point is the knee: after scaling each objective of the front to [0, 1], the point
closest to the ideal point (0, ..., 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distchar.crowding import crowding_function
from distchar.generator.fidelity import OBJECTIVES, fidelity, reference
from distchar.generator.gp_pareto import GeneratorParams, estimate, sample
from distchar.progress import progress


@dataclass
class TuningResult:
    front_params: list[GeneratorParams]
    front_objectives: np.ndarray  # (n_front, n_objectives)
    knee: int
    evaluations: int

    @property
    def chosen(self) -> GeneratorParams:
        return self.front_params[self.knee]


def knee_index(F: np.ndarray) -> int:
    """The front point closest to the ideal point after scaling every objective to [0, 1]."""
    F = np.asarray(F, dtype=float)
    span = F.max(0) - F.min(0)
    scaled = np.divide(F - F.min(0), span, out=np.zeros_like(F), where=span > 0)
    return int(np.argmin(np.linalg.norm(scaled, axis=1)))


def _decode(x: np.ndarray, xmin: float) -> GeneratorParams:
    return GeneratorParams(alpha=float(x[0]), xmin=xmin, layer_length=float(10 ** x[1]),
                           index_length=float(10 ** x[2]), nugget=float(x[3]), tilt_scale=float(x[4]),
                           tilt_alpha=float(x[5]))  # fmt: skip


def reference_alpha(fits: dict, kind: str, fallback_alpha: float) -> tuple[float, str]:
    """The distance exponent the alpha gap of ``kind`` aims at, and where it comes from."""
    for group, origin in ((kind, "stage 04 fit"), ("pooled", "pooled fit (the type's fit is insufficient)")):
        fit = fits.get(group, {}).get("fit", {})
        if fit.get("sufficient") and np.isfinite(fit.get("alpha", np.nan)):
            return float(fit["alpha"]), origin
    return fallback_alpha, "generator.fallback_alpha (the type's and the pooled fits are insufficient)"


def start_params(S: np.ndarray, nugget: float, alpha: float) -> tuple[GeneratorParams, str]:
    """``estimate(S)``, or a documented default where S has fewer than two distinct positive values."""
    try:
        return estimate(S, nugget=nugget), "estimated from S"
    except ValueError:
        scale = float(np.nanmax(S)) if np.isfinite(S).any() and np.nanmax(S) > 0 else 1.0
        default = GeneratorParams(alpha=alpha, xmin=scale, layer_length=1.0, index_length=1.0, nugget=nugget)
        return default, "default (S has fewer than two distinct positive values)"


def tune(
    real: np.ndarray,
    start: GeneratorParams,
    *,
    population: int = 24,
    generations: int = 15,
    draws: int = 2,
    crowding: str = "cd",
    seed: int = 0,
    min_tail: int = 10,
    real_alpha: float | None = None,
    label: str = "",
) -> TuningResult:
    """NSGA-II over the generator's parameters for one real (layers x k) matrix; the alpha gap aims
    at ``real_alpha`` (default: the power-law fit of the real distances, when it is sufficient)."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.survival.rank_and_crowding import RankAndCrowding
    from pymoo.optimize import minimize

    n_layers, k = real.shape
    ref = reference(real, min_tail, real_alpha)
    seeds = [int(s) for s in np.random.default_rng(seed).integers(0, 2**31, draws)]

    def objectives(x: np.ndarray) -> list[float]:
        params = _decode(x, start.xmin)
        scores = [fidelity(ref, sample(params, n_layers, k, np.random.default_rng(s)), min_tail) for s in seeds]
        return [float(np.mean([s[name] for s in scores])) for name in OBJECTIVES]

    lower = np.array([1.05, np.log10(0.3), np.log10(0.3), 0.0, 0.0, 0.5])
    upper = np.array([8.0, np.log10(3 * n_layers), np.log10(3 * k), 0.95, 4.0, 6.0])

    class GeneratorProblem(Problem):
        def __init__(self):
            super().__init__(n_var=len(lower), n_obj=len(OBJECTIVES), xl=lower, xu=upper)

        def _evaluate(self, X, out, *args, **kwargs):
            out["F"] = np.array([objectives(x) for x in X])
            bar.update()  # pymoo evaluates one population per generation

    start_x = np.clip([start.alpha, np.log10(start.layer_length), np.log10(start.index_length), start.nugget,
                       start.tilt_scale, start.tilt_alpha], lower, upper)  # fmt: skip
    rng = np.random.default_rng(seed)
    initial = np.vstack([start_x, rng.uniform(lower, upper, (population - 1, len(lower)))])
    algorithm = NSGA2(pop_size=population, sampling=initial,
                      survival=RankAndCrowding(crowding_func=crowding_function(crowding)))  # fmt: skip
    with progress(desc=f"tune {label}".rstrip(), unit="generation", total=generations, leave=False) as bar:
        result = minimize(GeneratorProblem(), algorithm, ("n_gen", generations), seed=seed, verbose=False)
    X, F = np.atleast_2d(result.X), np.atleast_2d(result.F)
    order = np.lexsort(F.T[::-1])
    X, F = X[order], F[order]
    return TuningResult([_decode(x, start.xmin) for x in X], F, knee_index(F), population * generations)

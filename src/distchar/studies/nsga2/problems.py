"""The nine two-objective test problems of Deb et al. (2002), as pymoo problems with their true fronts.

SCH, FON and POL are written here (pymoo has none of them); KUR and the five ZDT problems are
pymoo's, with pymoo's variable counts and bounds, which are Deb's. Every problem is minimised.

True Pareto fronts (``true_front(name)``, dense and sorted by f1):
- SCH, FON and the ZDTs: analytic (the image of the known Pareto set; ZDT3 through pymoo's pieces).
- POL and KUR have no closed form, and pymoo downloads KUR's front at run time, which these
  machines cannot do. Both are computed, deterministically: the non-dominated points of a dense
  grid over the decision space together with the final populations of three long NSGA-II runs
  (population 300, 300 generations; seeds 0-2); a grid alone leaves KUR's front sparse (65 points).
  That takes about 80 s, so the result ships as ``resources/computed_fronts.npz``, written by
  ``python -m distchar.studies.nsga2.problems --write-fronts``; the tests check it against 200,000
  random points. ``python -m distchar.studies.nsga2.problems`` prints every front's size and range.

The metrics need the front as 500 points evenly spaced along it (Deb's convergence measure):
``uniform_front`` spaces them by arc length and skips the gaps of a disconnected front.
"""

from __future__ import annotations

import argparse
import functools
from importlib import resources

import numpy as np
from pymoo.core.problem import Problem

from distchar.errors import DistcharError

PROBLEMS = ("sch", "fon", "pol", "kur", "zdt1", "zdt2", "zdt3", "zdt4", "zdt6")
COMPUTED = {"pol": 1001, "kur": 161}
"""The problems whose fronts are computed, with the points per axis of their decision-space grid."""
COMPUTED_FRONTS = "computed_fronts.npz"
"""Their fronts, in ``distchar.resources``."""
LABELS = {name: name.upper() for name in PROBLEMS}


class SCH(Problem):
    """Schaffer's problem: f1 = x^2, f2 = (x - 2)^2, x in [-1000, 1000]; Pareto set x in [0, 2]."""

    def __init__(self):
        super().__init__(n_var=1, n_obj=2, xl=-1000.0, xu=1000.0, vtype=float)

    def _evaluate(self, x, out, *args, **kwargs):
        out["F"] = np.column_stack([x[:, 0] ** 2, (x[:, 0] - 2) ** 2])


class FON(Problem):
    """Fonseca and Fleming: f1,2 = 1 - exp(-sum (x_i -/+ 1/sqrt 3)^2), x in [-4, 4]^3; Pareto set
    x1 = x2 = x3 in [-1/sqrt 3, 1/sqrt 3]."""

    def __init__(self):
        super().__init__(n_var=3, n_obj=2, xl=-4.0, xu=4.0, vtype=float)

    def _evaluate(self, x, out, *args, **kwargs):
        c = 1 / np.sqrt(3)
        out["F"] = np.column_stack([1 - np.exp(-((x - c) ** 2).sum(1)), 1 - np.exp(-((x + c) ** 2).sum(1))])


class POL(Problem):
    """Poloni's problem, x in [-pi, pi]^2; a disconnected front."""

    def __init__(self):
        super().__init__(n_var=2, n_obj=2, xl=-np.pi, xu=np.pi, vtype=float)

    def _evaluate(self, x, out, *args, **kwargs):
        a1 = 0.5 * np.sin(1) - 2 * np.cos(1) + np.sin(2) - 1.5 * np.cos(2)
        a2 = 1.5 * np.sin(1) - np.cos(1) + 2 * np.sin(2) - 0.5 * np.cos(2)
        x1, x2 = x[:, 0], x[:, 1]
        b1 = 0.5 * np.sin(x1) - 2 * np.cos(x1) + np.sin(x2) - 1.5 * np.cos(x2)
        b2 = 1.5 * np.sin(x1) - np.cos(x1) + 2 * np.sin(x2) - 0.5 * np.cos(x2)
        out["F"] = np.column_stack([1 + (a1 - b1) ** 2 + (a2 - b2) ** 2, (x1 + 3) ** 2 + (x2 + 1) ** 2])


def get_problem(name: str) -> Problem:
    """The pymoo problem ``name`` (one of ``PROBLEMS``)."""
    if name not in PROBLEMS:
        raise DistcharError(f"Unknown test problem '{name}'; choose one of {', '.join(PROBLEMS)}.")
    if name in ("sch", "fon", "pol"):
        return {"sch": SCH, "fon": FON, "pol": POL}[name]()
    from pymoo.problems import get_problem as pymoo_problem

    return pymoo_problem("kursawe" if name == "kur" else name)


def non_dominated(F: np.ndarray) -> np.ndarray:
    """The non-dominated rows of a two-objective ``F``, sorted by f1 (duplicates kept once)."""
    F = np.unique(np.asarray(F, dtype=float), axis=0)  # sorted by f1, then f2
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], F[:-1, 1]]))
    return F[F[:, 1] < best_before]


@functools.cache
def true_front(name: str) -> np.ndarray:
    """A dense true Pareto front of ``name`` (points x 2, sorted by f1); read-only."""
    problem = get_problem(name)  # an unknown name stops here
    if name == "sch":
        x = np.linspace(0, 2, 5001)[:, None]
        front = problem.evaluate(x)
    elif name == "fon":
        c = 1 / np.sqrt(3)
        x = np.repeat(np.linspace(-c, c, 5001)[:, None], 3, axis=1)
        front = problem.evaluate(x)
    elif name.startswith("zdt"):
        front = problem.pareto_front(5000)
    else:
        with resources.files("distchar.resources").joinpath(COMPUTED_FRONTS).open("rb") as handle:
            front = np.load(handle)[name]
    front = non_dominated(front)
    front.setflags(write=False)
    return front


def _computed_front(problem: Problem, grid: int, runs: int = 3, population: int = 300, generations: int = 300):
    """The non-dominated points of a grid over the decision space and of the final populations of
    ``runs`` long NSGA-II runs (seeds 0, 1, ...), together (see the module docstring)."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.optimize import minimize

    axes = [np.linspace(low, high, grid) for low, high in zip(problem.xl, problem.xu, strict=True)]
    rest = np.stack(np.meshgrid(*axes[1:], indexing="ij"), axis=-1).reshape(-1, problem.n_var - 1)
    fronts = []
    for first in axes[0]:  # one slab at a time: a whole 3-D grid would not fit in memory at once
        fronts.append(non_dominated(problem.evaluate(np.column_stack([np.full(len(rest), first), rest]))))
    for seed in range(runs):
        result = minimize(problem, NSGA2(pop_size=population), ("n_gen", generations), seed=seed)
        fronts.append(result.pop.get("F"))
    return np.concatenate(fronts)


def uniform_front(front: np.ndarray, n: int = 500, gap_factor: float = 20.0) -> np.ndarray:
    """``n`` points evenly spaced by arc length along a sorted front, not across its gaps.

    A step between neighbours longer than ``gap_factor`` times the median step is a gap between two
    pieces of a disconnected front; it adds no length, so no point is placed in empty space."""
    front = np.asarray(front, dtype=float)
    steps = np.linalg.norm(np.diff(front, axis=0), axis=1)
    steps = np.where(steps > gap_factor * np.median(steps), 0.0, steps)
    length = np.concatenate([[0.0], np.cumsum(steps)])
    targets = np.linspace(0, length[-1], n)
    index = np.clip(np.searchsorted(length, targets, side="right") - 1, 0, len(front) - 2)
    within = np.divide(targets - length[index], steps[index], out=np.zeros(n), where=steps[index] > 0)
    return front[index] + within[:, None] * (front[index + 1] - front[index])


def write_computed_fronts(path, grids: dict[str, int] = COMPUTED, **runs) -> None:
    """Compute the fronts of ``grids`` (problem -> grid points per axis; about 80 s at the defaults)
    and save them to ``path`` (npz, one array each); ``runs``: ``_computed_front``'s run settings."""
    fronts = {name: non_dominated(_computed_front(get_problem(name), grid, **runs)) for name, grid in grids.items()}
    np.savez_compressed(path, **fronts)


def main() -> None:
    parser = argparse.ArgumentParser(description="Print every true front's size and range.")
    parser.add_argument(
        "--write-fronts",
        action="store_true",
        help=f"first recompute the fronts of {', '.join(COMPUTED)} into resources/{COMPUTED_FRONTS}",
    )
    if parser.parse_args().write_fronts:
        write_computed_fronts(resources.files("distchar.resources").joinpath(COMPUTED_FRONTS))
    for name in PROBLEMS:
        front = true_front(name)
        print(f"{LABELS[name]:5s} {len(front):6d} points, f1 [{front[0, 0]:.4g}, {front[-1, 0]:.4g}], "
              f"f2 [{front[:, 1].min():.4g}, {front[:, 1].max():.4g}]")  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark: a whole NSGA-II run with the improved crowding distance against pymoo's default.

- ``ratio``: wall time of ``minimize(ZDT1, NSGA2(pop_size=100, survival=RankAndCrowding(
  crowding_func=crowding_function("improved"))), 250 generations)`` divided by that of pymoo's
  default ``NSGA2(pop_size=100)`` (its survival is ``RankAndCrowding`` with ``cd``), same seed, no
  callback, no metrics. Goal <= 1.05.

The two alternate (A B A B ...), ``REPEATS`` runs each after one warm-up run of each, all in one
process; the figures are medians. Seeds vary over the repeats (the same seeds for both), so a
difference in how many duplicates either run meets is averaged out, not measured once.

Results: benchmarks/results/nsga2_run.json. Run: python benchmarks/nsga2_run.py
"""

from __future__ import annotations

import statistics
import time

from common import write_results

from distchar.crowding import crowding_function

REPEATS = 9
POPULATION, GENERATIONS = 100, 250


def one_run(variant: str, seed: int) -> float:
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.operators.survival.rank_and_crowding import RankAndCrowding
    from pymoo.optimize import minimize
    from pymoo.problems import get_problem

    if variant == "pymoo_default":
        algorithm = NSGA2(pop_size=POPULATION)
    else:
        algorithm = NSGA2(pop_size=POPULATION, survival=RankAndCrowding(crowding_func=crowding_function(variant)))
    problem = get_problem("zdt1")
    started = time.perf_counter()
    minimize(problem, algorithm, ("n_gen", GENERATIONS), seed=seed)
    return time.perf_counter() - started


def main() -> None:
    variants = ("improved", "pymoo_default")
    for variant in variants:
        one_run(variant, seed=100)  # warm-up: imports, caches
    times: dict[str, list[float]] = {v: [] for v in variants}
    for seed in range(REPEATS):
        for variant in variants if seed % 2 == 0 else variants[::-1]:
            times[variant].append(one_run(variant, seed))
    median = {v: statistics.median(t) for v, t in times.items()}
    write_results("nsga2_run", {
        "ratio": round(median["improved"] / median["pymoo_default"], 4),
        "seconds": {v: round(s, 3) for v, s in median.items()},
        "seconds_all": {v: [round(s, 3) for s in t] for v, t in times.items()},
        "problem": "zdt1", "population": POPULATION, "generations": GENERATIONS, "repeats": REPEATS,
    })  # fmt: skip


if __name__ == "__main__":
    main()

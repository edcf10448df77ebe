"""The nine-problem study: NSGA-II with each crowding function, metrics per generation, tests against cd.

One run is NSGA-II (pymoo's defaults: SBX eta 15 p 0.9, polynomial mutation eta 20 p 1/n) on one
problem with one crowding function and one seed; the seed is pymoo's, so a variant's seed s and
cd's seed s start from the same population. After every generation the non-dominated set is scored
(``FrontQuality``), so convergence is seen, not only the end.

Comparisons: per problem, metric and variant, the variant's values over seeds against cd's by a
two-sided Mann-Whitney U test (unpaired, as in the paper), with the difference of medians and
A12 = P(variant better than cd) + P(tie)/2 (Vargha and Delaney) as effect size; p-values are
Holm-adjusted over the nine problems within each (variant, metric), and a verdict reads
``better`` / ``worse`` (adjusted p below 1 - confidence) or ``inconclusive``. With 5 seeds the
smallest possible two-sided p is 2/252 = 0.008, which Holm over nine problems (0.05/9 = 0.0056)
can never reach: the default profile shows directions and raw p; the full profile (30 seeds)
decides.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from distchar.crowding import crowding_function
from distchar.progress import each
from distchar.statistics import holm
from distchar.studies.nsga2.metrics import LOWER_IS_BETTER, METRICS, FrontQuality
from distchar.studies.nsga2.problems import get_problem, true_front

log = logging.getLogger(__name__)


def run_nsga2(problem: str, variant: str, seed: int, population: int = 100, generations: int = 250, front=None):
    """One NSGA-II run: (metrics of every generation as a frame, the final non-dominated objectives).

    ``front`` is the problem's true front (computed when not given; pass it to worker processes so
    that a computed front is not recomputed in each)."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.operators.survival.rank_and_crowding import RankAndCrowding
    from pymoo.optimize import minimize

    quality = FrontQuality(problem, front)
    rows = []

    def score(algorithm):
        rows.append({"generation": algorithm.n_gen, **quality(algorithm.opt.get("F"))})

    algorithm = NSGA2(pop_size=population, survival=RankAndCrowding(crowding_func=crowding_function(variant)))
    result = minimize(get_problem(problem), algorithm, ("n_gen", generations), seed=seed, callback=score)
    curve = pd.DataFrame(rows).assign(problem=problem, variant=variant, seed=seed)
    return curve, np.asarray(result.opt.get("F"), dtype=float)


def _run(job):
    problem, variant, seed, population, generations, front = job
    start = time.perf_counter()
    curve, final = run_nsga2(problem, variant, seed, population, generations, front)
    return curve, final, time.perf_counter() - start


def run_all(problems, variants, seeds, population: int, generations: int, jobs: int = 1):
    """Every problem x variant x seed: (per-generation metrics of all runs, {(problem, variant, seed):
    final front}, seconds per run)."""
    fronts = {problem: np.array(true_front(problem)) for problem in problems}  # computed once, here
    work = [(p, v, s, population, generations, fronts[p]) for p in problems for v in variants for s in seeds]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            runs = pool.map(_run, work, chunksize=max(1, len(work) // (8 * jobs)))
            done = list(each(runs, desc="nsga2 runs", unit="run", total=len(work)))
    else:
        done = [_run(job) for job in each(work, desc="nsga2 runs", unit="run")]
    curves = pd.concat([curve for curve, _, _ in done], ignore_index=True)
    finals = {(job[0], job[1], job[2]): final for job, (_, final, _) in zip(work, done, strict=True)}
    seconds = np.array([s for _, _, s in done])
    log.info("%d runs, %.2f s each (median)", len(work), np.median(seconds))
    return curves, finals, seconds


def final_table(curves: pd.DataFrame, snapshots=()) -> pd.DataFrame:
    """One row per run: the metrics after the last generation, and IGD at each snapshot generation
    (columns ``igd_g<generation>``)."""
    keys = ["problem", "variant", "seed"]
    last = curves.loc[curves.groupby(keys)["generation"].idxmax(), [*keys, *METRICS]].reset_index(drop=True)
    for generation in snapshots:
        at = curves[curves["generation"] == generation][[*keys, "igd"]].rename(columns={"igd": f"igd_g{generation}"})
        last = last.merge(at, on=keys, how="left")
    return last


def lower_is_better(metric: str) -> bool:
    return LOWER_IS_BETTER[metric.split("_g")[0]]


def summary_table(finals: pd.DataFrame) -> pd.DataFrame:
    """Per problem, variant and metric: median, quartiles, mean, standard deviation, seeds."""
    metrics = [c for c in finals.columns if c not in ("problem", "variant", "seed")]
    long = finals.melt(id_vars=["problem", "variant", "seed"], value_vars=metrics, var_name="metric")
    grouped = long.groupby(["problem", "variant", "metric"], sort=False)["value"]
    return grouped.agg(median="median", q25=lambda v: v.quantile(0.25), q75=lambda v: v.quantile(0.75),
                       mean="mean", std="std", seeds="count").reset_index()  # fmt: skip


def a12(a, b) -> float:
    """Vargha-Delaney A: the probability that a draw of ``a`` exceeds one of ``b`` (ties count half)."""
    a, b = np.asarray(a, float)[:, None], np.asarray(b, float)[None, :]
    return float((a > b).mean() + 0.5 * (a == b).mean())


def compare_to_cd(finals: pd.DataFrame, confidence: float = 0.95, baseline: str = "cd") -> pd.DataFrame:
    """Every variant against ``baseline`` per problem and metric (see the module docstring)."""
    from scipy.stats import mannwhitneyu

    metrics = [c for c in finals.columns if c not in ("problem", "variant", "seed")]
    rows = []
    for (problem, variant), group in finals.groupby(["problem", "variant"], sort=False):
        if variant == baseline:
            continue
        base = finals[(finals["problem"] == problem) & (finals["variant"] == baseline)]
        for metric in metrics:
            ours, theirs = group[metric].to_numpy(), base[metric].to_numpy()
            p = mannwhitneyu(ours, theirs, alternative="two-sided").pvalue if np.ptp(np.r_[ours, theirs]) else 1.0
            better = a12(theirs, ours) if lower_is_better(metric) else a12(ours, theirs)
            rows.append({"problem": problem, "variant": variant, "metric": metric, "median": np.median(ours),
                         f"median_{baseline}": np.median(theirs), "difference": np.median(ours) - np.median(theirs),
                         "a12_better": better, "p": float(p), "seeds": len(ours)})  # fmt: skip
    table = pd.DataFrame(rows)
    table["p_holm"] = table.groupby(["variant", "metric"])["p"].transform(lambda p: holm(p.to_numpy()))
    alpha = 1 - confidence
    improves = np.where([lower_is_better(m) for m in table["metric"]], table["difference"] < 0, table["difference"] > 0)
    table["direction"] = np.where(table["difference"] == 0, "same", np.where(improves, "better", "worse"))
    table["verdict"] = np.where(table["p_holm"] < alpha, table["direction"], "inconclusive")
    table["significant_unadjusted"] = table["p"] < alpha
    return table

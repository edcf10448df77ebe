"""Study 10: the improved crowding distance (Chu and Yu 2018) against NSGA-II's own on nine problems.

Runs ``nsga2.variants`` x ``nsga2.problems`` x ``nsga2.seeds`` (``distchar.studies.nsga2.study``) and
writes, in ``results/10_nsga2/``:

- ``curves.csv``: Upsilon, Delta, IGD and HV of every run after every generation;
- ``finals.csv``: one row per run, the metrics at the end and IGD at each snapshot generation;
- ``summary.csv``: per problem, variant and metric the median, quartiles, mean, sd and seeds;
- ``comparisons.csv``: every variant against cd (Mann-Whitney, A12, Holm, verdict);
- ``table.md``: the nine-problem table, one block per metric, and where each variant helps or hurts;
- ``fronts.png``: the final front of each variant (the run of median IGD) on the true front;
- ``convergence.png``: IGD against generation, median and quartile band per variant;
- ``final_fronts.npz``: every run's final non-dominated objectives; ``metrics.json`` for ``dvc metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from distchar.atomic import atomic_directory
from distchar.config import Nsga2Params
from distchar.plots import save_figure, use_style
from distchar.studies.nsga2.metrics import METRICS
from distchar.studies.nsga2.problems import LABELS, true_front
from distchar.studies.nsga2.study import compare_to_cd, final_table, lower_is_better, run_all, summary_table
from distchar.timings import write_timings

NAMES = {"cd": "cd (NSGA-II)", "improved": "improved (Chu & Yu)", "pcd": "pcd (pruning)", "ce": "ce", "mnn": "mnn",
         "2nn": "2nn"}  # fmt: skip


def run_study(settings: Nsga2Params, out_dir: Path) -> dict:
    """Run the study and write every output (all or nothing); returns the metrics.json content."""
    seeds = list(range(settings.seeds))
    curves, fronts, seconds = run_all(settings.problems, settings.variants, seeds, settings.population,
                                      settings.generations, jobs=settings.jobs)  # fmt: skip
    finals = final_table(curves, settings.snapshots)
    summary = summary_table(finals)
    comparisons = compare_to_cd(finals, settings.confidence)
    metrics = study_metrics(settings, summary, comparisons)
    with atomic_directory(out_dir) as scratch:
        curves.to_csv(scratch / "curves.csv", index=False, float_format="%.6g")
        finals.to_csv(scratch / "finals.csv", index=False, float_format="%.6g")
        summary.to_csv(scratch / "summary.csv", index=False, float_format="%.6g")
        comparisons.to_csv(scratch / "comparisons.csv", index=False, float_format="%.6g")
        (scratch / "table.md").write_text(markdown_table(settings, summary, comparisons))
        np.savez_compressed(scratch / "final_fronts.npz", **{"/".join(map(str, k)): v for k, v in fronts.items()})
        save_figure(plot_fronts(finals, fronts, settings), scratch / "fronts.png")
        save_figure(plot_convergence(curves, settings), scratch / "convergence.png")
        (scratch / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_timings(out_dir, {"seconds_per_run": round(float(np.median(seconds)), 3), "runs": len(seconds)})
    return metrics


def study_metrics(settings: Nsga2Params, summary: pd.DataFrame, comparisons: pd.DataFrame) -> dict:
    """For ``dvc metrics``: the median final IGD per variant and problem, and per variant and final
    metric on how many problems it is better / worse than cd (and significantly, after Holm)."""
    igd = summary[summary["metric"] == "igd"]
    medians: dict = {}
    for row in igd.itertuples():
        medians.setdefault(row.variant, {})[row.problem] = round(float(row.median), 6)
    against_cd: dict = {}
    final = comparisons[comparisons["metric"].isin(METRICS)]
    for (variant, metric), group in final.groupby(["variant", "metric"], sort=False):
        against_cd.setdefault(variant, {})[metric] = {
            "better": int((group["direction"] == "better").sum()),
            "worse": int((group["direction"] == "worse").sum()),
            "significant": int((group["verdict"] != "inconclusive").sum()),
        }
    return {"seeds": settings.seeds, "generations": settings.generations, "population": settings.population,
            "median_igd": medians,
            "problems_vs_cd": against_cd}  # fmt: skip


def markdown_table(settings: Nsga2Params, summary: pd.DataFrame, comparisons: pd.DataFrame) -> str:
    """One table per metric: problems x variants, the median over seeds; each variant's cell also
    carries its change against cd and the Mann-Whitney p (* below the level after Holm)."""
    alpha = 1 - settings.confidence
    lines = [f"NSGA-II, population {settings.population}, {settings.generations} generations, {settings.seeds} seeds "
             f"per problem and variant; median over seeds; in brackets the change of the median against cd and the "
             f"two-sided Mann-Whitney p (* significant at {alpha:g} after Holm over the problems).", ""]  # fmt: skip
    metrics = list(dict.fromkeys(summary["metric"]))
    for metric in metrics:
        better = "lower" if lower_is_better(metric) else "higher"
        lines += [f"**{metric}** ({better} is better)", "",
                  "| problem | " + " | ".join(settings.variants) + " |",
                  "|---|" + "---|" * len(settings.variants)]  # fmt: skip
        for problem in settings.problems:
            cells = []
            for variant in settings.variants:
                value = summary.query("problem == @problem and variant == @variant and metric == @metric")["median"]
                cell = f"{value.iloc[0]:.4g}"
                if variant != "cd":
                    row = comparisons.query("problem == @problem and variant == @variant and metric == @metric").iloc[0]
                    base = row["median_cd"]
                    change = f"{100 * row['difference'] / abs(base):+.2g}%" if base else f"{row['difference']:+.3g}"
                    cell += f" ({change}, p {row['p']:.2g}{'*' if row['verdict'] != 'inconclusive' else ''})"
                cells.append(cell)
            lines.append(f"| {LABELS[problem]} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["**Against cd** (problems where the median is better / worse; significant after Holm in brackets)", "",
              "| variant | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]  # fmt: skip
    for variant in [v for v in settings.variants if v != "cd"]:
        cells = []
        for metric in metrics:
            group = comparisons[(comparisons["variant"] == variant) & (comparisons["metric"] == metric)]
            direction, verdict = group["direction"], group["verdict"]
            cells.append(f"{(direction == 'better').sum()} / {(direction == 'worse').sum()} "
                         f"({(verdict == 'better').sum()} / {(verdict == 'worse').sum()})")  # fmt: skip
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


COLOURS = {"cd": "tab:blue", "improved": "tab:red", "pcd": "tab:green", "ce": "tab:purple", "mnn": "tab:orange",
           "2nn": "tab:brown"}  # fmt: skip
"""One colour per crowding function, the same whatever variants a run compares."""


def _grid(n: int):
    import matplotlib.pyplot as plt

    columns = min(3, n)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), layout="constrained", squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_fronts(finals: pd.DataFrame, fronts: dict, settings: Nsga2Params):
    """Per problem, the true front and each variant's final front of its median-IGD run."""
    use_style()
    fig, axes = _grid(len(settings.problems))
    for ax, problem in zip(axes, settings.problems, strict=False):
        front = true_front(problem)
        ax.scatter(front[:, 0], front[:, 1], s=1, color="0.6", label="true front", rasterized=True)
        for variant in settings.variants:
            runs = finals[(finals["problem"] == problem) & (finals["variant"] == variant)].sort_values("igd")
            seed = int(runs.iloc[(len(runs) - 1) // 2]["seed"])
            F = fronts[(problem, variant, seed)]
            ax.scatter(F[:, 0], F[:, 1], s=9, facecolors="none", edgecolors=COLOURS[variant], linewidths=0.8,
                       label=f"{NAMES[variant]} (seed {seed})")  # fmt: skip
        ax.set(title=LABELS[problem], xlabel="f1", ylabel="f2")
        ax.legend(fontsize=6, loc="upper right")
    fig.suptitle(
        f"Final fronts after {settings.generations} generations: the run of median IGD per variant", fontsize=10
    )
    return fig


def plot_convergence(curves: pd.DataFrame, settings: Nsga2Params):
    """Per problem, IGD against generation: median over seeds and the quartile band per variant."""
    use_style()
    fig, axes = _grid(len(settings.problems))
    for ax, problem in zip(axes, settings.problems, strict=False):
        for variant in settings.variants:
            runs = curves[(curves["problem"] == problem) & (curves["variant"] == variant)]
            by_generation = runs.groupby("generation")["igd"]
            median, q25, q75 = by_generation.median(), by_generation.quantile(0.25), by_generation.quantile(0.75)
            ax.plot(median.index, median.to_numpy(), color=COLOURS[variant], lw=1.2, label=NAMES[variant])
            ax.fill_between(median.index, q25.to_numpy(), q75.to_numpy(), color=COLOURS[variant], alpha=0.2, lw=0)
        ax.set(title=LABELS[problem], xlabel="generation", ylabel="IGD", yscale="log")
        ax.legend(fontsize=6)
    fig.suptitle(f"IGD against generation: median and quartiles over {settings.seeds} seeds", fontsize=10)
    return fig

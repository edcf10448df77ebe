"""Study 09: the distribution-restrained softmax loss under strong attacks (Wang et al. 2023).

Trains ``robustness.architectures`` x losses (ce, DSL per coefficient, label smoothing) x seeds on
scikit-learn's digits, attacks every model (``distchar.studies.robustness``) and writes, in
``results/09_robustness/``:

- ``clean.csv`` (every test image of every model: correct or not) and ``attacked.csv`` (the
  attacked images: robust or not under each attack, CW's L2 distance, the non-target spreads);
- ``accuracy.csv``: per architecture, loss and measure the mean over seeds and its interval;
- ``comparisons.csv``: every loss against ce (clean, PGD, AutoAttack; sign-flip test over seeds, Holm);
- ``masking.csv``: Square and AutoAttack against PGD per model type (the gradient-masking check);
- ``spread.csv``: Spearman's rho of each non-target spread with PGD's success;
- ``table.md``: the robustness table and the three verdicts in words (seconds per model: ``distchar.timings``);
- ``robustness.png`` (accuracy against the radius) and ``spread.png`` (attack success against the
  spread of the non-target softmax); ``metrics.json`` for ``dvc metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from distchar.atomic import atomic_directory
from distchar.config import RobustnessParams
from distchar.plots import save_figure, use_style
from distchar.studies.robustness.study import (
    accuracy_table,
    compare_to_ce,
    loss_order,
    masking_check,
    run_all,
    spread_table,
)
from distchar.timings import write_timings

SUMMARY = ("clean", "fgsm", "pgd", "cw", "square", "autoattack")
"""The columns of the robustness table (FGSM and PGD at ``epsilon``)."""


def run_study(settings: RobustnessParams, out_dir: Path) -> dict:
    """Run the study and write every output (all or nothing); returns the metrics.json content."""
    clean, attacked, timings = run_all(settings)
    accuracy = accuracy_table(clean, attacked, settings)
    comparisons = compare_to_ce(clean, attacked, settings)
    masking = masking_check(attacked, settings)
    spreads = spread_table(attacked, settings)
    metrics = study_metrics(settings, accuracy, comparisons, masking, spreads)
    with atomic_directory(out_dir) as scratch:
        clean.to_csv(scratch / "clean.csv", index=False)
        attacked.to_csv(scratch / "attacked.csv", index=False, float_format="%.6g")
        for name, table in (("accuracy", accuracy), ("comparisons", comparisons), ("masking", masking),
                            ("spread", spreads)):  # fmt: skip
            table.to_csv(scratch / f"{name}.csv", index=False, float_format="%.6g")
        (scratch / "table.md").write_text(markdown_report(settings, accuracy, comparisons, masking, spreads))
        save_figure(plot_robustness(accuracy, settings), scratch / "robustness.png")
        save_figure(plot_spread(attacked, spreads, settings), scratch / "spread.png")
        (scratch / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    per_model = timings[["train_seconds", "attack_seconds"]].sum(axis=1)
    write_timings(out_dir, {"seconds_per_model": round(float(per_model.median()), 2),
                                       "models": timings.round(3).to_dict("records")})  # fmt: skip
    return metrics


def _measure(column: str, settings: RobustnessParams) -> str:
    return f"{column}@{settings.epsilon:g}" if column in ("fgsm", "pgd") else column


def study_metrics(settings, accuracy, comparisons, masking, spreads) -> dict:
    """For ``dvc metrics``: mean accuracies per model type, each loss against ce under AutoAttack,
    the gradient-masking suspects and the spread correlations of ce."""
    table: dict = {}
    for row in accuracy.itertuples():
        if row.measure in [_measure(c, settings) for c in SUMMARY]:
            table.setdefault(row.architecture, {}).setdefault(row.loss, {})[row.measure] = round(float(row.mean), 4)
    under_autoattack: dict = {}
    for row in comparisons[comparisons["measure"] == "autoattack"].itertuples():
        under_autoattack.setdefault(row.architecture, {})[row.loss] = {
            "difference": round(row.difference, 4), "low": round(row.low, 4), "high": round(row.high, 4),
            "p_holm": round(row.p_holm, 4), "verdict": row.verdict}  # fmt: skip
    rho = {f"{r.architecture}/{r.spread}": None if np.isnan(r.rho) else round(r.rho, 3)
           for r in spreads[spreads["loss"] == "ce"].itertuples()}  # fmt: skip
    return {"seeds": settings.seeds, "epsilon": settings.epsilon, "attacked_images": int(settings.attack_examples),
            "accuracy": table, "against_ce_under_autoattack": under_autoattack,
            "square_beats_pgd": [f"{r.architecture}/{r.loss}" for r in masking.itertuples() if r.square_beats_pgd],
            "ce_spread_rho": rho}  # fmt: skip


def _cell(accuracy: pd.DataFrame, architecture: str, loss: str, measure: str, percent: bool = True) -> str:
    row = accuracy[(accuracy["architecture"] == architecture) & (accuracy["loss"] == loss)
                   & (accuracy["measure"] == measure)].iloc[0]  # fmt: skip
    if not percent:  # a distance: its interval ends at 0
        return f"{row['mean']:.3f} [{max(row['low'], 0.0):.3f}, {row['high']:.3f}]"
    low, high = max(row["low"], 0.0), min(row["high"], 1.0)  # an accuracy interval ends at 0 and 1
    return f"{100 * row['mean']:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _p(p: float) -> str:
    return "n/a" if np.isnan(p) else f"{p:.3g}"


def markdown_report(settings, accuracy, comparisons, masking, spreads) -> str:
    """The robustness table, each loss against ce, the masking check and the spread correlations."""
    confidence = f"{100 * settings.confidence:g}%"
    eps = f"{settings.epsilon:g}"
    losses = loss_order(settings)
    lines = [f"Digits (8x8, pixels in [0, 1]), {settings.seeds} seeds per model type, {settings.attack_examples} "
             f"attacked test images; accuracy in %, mean over seeds [{confidence} Student-t interval]. FGSM, PGD "
             f"({settings.pgd_steps} steps), Square and AutoAttack (standard) at L-inf epsilon {eps}; CW is L2 and "
             f"unbounded, so its column is the median L2 distance CW needed (higher: more robust).", "",
             "| model | loss | clean | FGSM | PGD | Square | AutoAttack | CW L2 |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for architecture in settings.architectures:
        for loss in losses:
            cells = [_cell(accuracy, architecture, loss, _measure(c, settings)) for c in SUMMARY if c != "cw"]
            cells.append(_cell(accuracy, architecture, loss, "cw_l2", percent=False))
            lines.append(f"| {architecture} | {loss} | " + " | ".join(cells) + " |")
    lines += ["", "**PGD over the radius** (accuracy %, mean over seeds)", "",
              "| model | loss | " + " | ".join(f"eps {e:g}" for e in settings.epsilons) + " |",
              "|---|---|" + "---|" * len(settings.epsilons)]  # fmt: skip
    for architecture in settings.architectures:
        for loss in losses:
            cells = [_cell(accuracy, architecture, loss, f"pgd@{e:g}") for e in settings.epsilons]
            lines.append(f"| {architecture} | {loss} | " + " | ".join(cells) + " |")
    lines += ["", f"**Against ce** (difference of accuracy in points, paired by seed: each seed's mean difference "
              f"over its images, {confidence} Student-t interval over seeds, exact sign-flip test over seeds, Holm "
              f"over the losses of one model and measure; {settings.seeds} seeds give no p below "
              f"{2 / 2**settings.seeds:.3g}: a verdict is `underpowered` when Holm over the losses cannot reach "
              f"p < {1 - settings.confidence:g} whatever the data; detectable: the smallest true difference these "
              "seeds find with 80% power at Holm's first level, from the spread over seeds)", "",
              "| model | measure | loss | difference | interval | p (Holm) | detectable | verdict |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in comparisons.itertuples():
        detectable = "-" if pd.isna(row.detectable) else f"{100 * row.detectable:.1f}"
        lines.append(f"| {row.architecture} | {row.measure} | {row.loss} | {100 * row.difference:+.1f} | "
                     f"[{100 * row.low:+.1f}, {100 * row.high:+.1f}] | {_p(row.p_holm)} | {detectable} | "
                     f"{row.verdict} |")  # fmt: skip
    lines += ["", f"**Gradient-masking check** at epsilon {eps}: a black-box attack (Square) that beats PGD points "
              "to masked gradients.", "", "| model | loss | PGD | Square | AutoAttack | Square - PGD | finding |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in masking.itertuples():
        finding = ("Square beats PGD" + (" (significant)" if row.significant else " (not significant)")
                   if row.square_beats_pgd else "no sign of masking")  # fmt: skip
        lines.append(f"| {row.architecture} | {row.loss} | {100 * row.pgd:.1f} | {100 * row.square:.1f} | "
                     f"{100 * row.autoattack:.1f} | {100 * row.square_minus_pgd:+.1f} [{100 * row.low:+.1f}, "
                     f"{100 * row.high:+.1f}] | {finding} |")  # fmt: skip
    lines += ["", f"**The paper's observation**: Spearman's rho of the non-target spread (clean input) with PGD's "
              f"success at epsilon {eps}, over the correctly classified attacked images of each seed, then the mean "
              f"over seeds [{confidence} Student-t interval over seeds]; `spread` is "
              "the standard deviation of the non-target softmax values, `shape_spread` the same after "
              "renormalising them to sum 1 (the unevenness without the confidence).", "",
              "| model | loss | spread: rho | shape_spread: rho | seeds | images | success rate |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for (architecture, loss), part in spreads.groupby(["architecture", "loss"], sort=False):
        cells = [f"{r.rho:+.2f} [{r.low:+.2f}, {r.high:+.2f}]" for r in part.itertuples()]
        first = part.iloc[0]
        lines.append(f"| {architecture} | {loss} | " + " | ".join(cells)
                     + f" | {first['seeds']} | {first['images']} | {100 * first['success_rate']:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _loss_colours(losses: list[str]) -> dict:
    import seaborn as sns

    return dict(zip(losses, sns.color_palette("tab10", len(losses)), strict=True))


def plot_robustness(accuracy: pd.DataFrame, settings: RobustnessParams):
    """Per architecture: PGD and FGSM accuracy against the radius, one colour per loss, with the
    AutoAttack and Square accuracy at ``epsilon`` beside them; bars are the seed intervals."""
    import matplotlib.pyplot as plt

    use_style()
    losses = loss_order(settings)
    colours = _loss_colours(losses)
    n = len(settings.architectures)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 3.8), layout="constrained", squeeze=False)
    epsilons = [0.0, *settings.epsilons]
    for ax, architecture in zip(axes.flat, settings.architectures, strict=True):
        part = accuracy[accuracy["architecture"] == architecture].set_index(["loss", "measure"])
        for k, loss in enumerate(losses):
            dodge = (k - (len(losses) - 1) / 2) * 0.012 * max(settings.epsilons)  # markers at epsilon side by side
            for attack, style in (("pgd", "-"), ("fgsm", ":")):
                rows = [part.loc[(loss, "clean")], *(part.loc[(loss, f"{attack}@{e:g}")] for e in settings.epsilons)]
                mean = [r["mean"] for r in rows]
                ax.plot(epsilons, mean, style, marker="o", ms=3, color=colours[loss],
                        label=loss if attack == "pgd" else None)  # fmt: skip
                if attack == "pgd":
                    ax.fill_between(epsilons, [r["low"] for r in rows], [r["high"] for r in rows], alpha=0.12,
                                    color=colours[loss], linewidth=0)  # fmt: skip
            for attack, marker in (("autoattack", "*"), ("square", "s")):
                row = part.loc[(loss, attack)]
                error = [[row["mean"] - row["low"]], [row["high"] - row["mean"]]]
                ax.errorbar([settings.epsilon + dodge], [row["mean"]], yerr=error, fmt=marker,
                            ms=8 if marker == "*" else 5, color=colours[loss], capsize=2,
                            mfc="none" if marker == "s" else colours[loss])  # fmt: skip
        ax.set(title=f"{architecture}: PGD (solid), FGSM (dotted), AutoAttack (*), Square (square)",
               xlabel="L-inf epsilon", ylabel="accuracy", ylim=(0, 1.02))  # fmt: skip
        ax.title.set_fontsize(8)
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Digits, {settings.seeds} seeds: accuracy under attack per training loss", fontsize=10)
    return fig


def plot_spread(attacked: pd.DataFrame, spreads: pd.DataFrame, settings: RobustnessParams):
    """Per architecture (rows) and spread (columns): PGD's success rate over the quintiles of the
    spread of the clean input's non-target softmax, one line per loss; rho in the legend."""
    import matplotlib.pyplot as plt

    use_style()
    losses = loss_order(settings)
    colours = _loss_colours(losses)
    pgd = f"pgd@{settings.epsilon:g}"
    rows, columns = len(settings.architectures), 2
    fig, axes = plt.subplots(rows, columns, figsize=(9.5, 3.4 * rows), layout="constrained", squeeze=False)
    for i, architecture in enumerate(settings.architectures):
        for j, spread in enumerate(("spread", "shape_spread")):
            ax = axes[i, j]
            for loss in losses:
                mine = (attacked["architecture"] == architecture) & (attacked["loss"] == loss)
                part = attacked[mine & attacked["clean"]]
                if len(part) < 5:
                    continue
                quintile = pd.qcut(part[spread].rank(method="first"), 5, labels=False)
                success = (~part[pgd].astype(bool)).groupby(quintile).mean()
                rho = spreads[(spreads["architecture"] == architecture) & (spreads["loss"] == loss)
                              & (spreads["spread"] == spread)]["rho"].iloc[0]  # fmt: skip
                ax.plot(success.index + 1, success.to_numpy(), marker="o", ms=3, color=colours[loss],
                        label=f"{loss} (rho {rho:+.2f})")  # fmt: skip
            ax.set(title=f"{architecture}: {spread.replace('_', ' ')} of the non-target softmax",
                   xlabel="quintile of the spread (1: flattest)", ylabel=f"PGD success at eps {settings.epsilon:g}",
                   ylim=(0, 1.02), xticks=range(1, 6))  # fmt: skip
            ax.title.set_fontsize(9)
            ax.legend(fontsize=6, loc="upper left")
    fig.suptitle("Does an attack succeed more often where the non-target softmax is uneven? (clean, correct images)",
                 fontsize=10)  # fmt: skip
    return fig

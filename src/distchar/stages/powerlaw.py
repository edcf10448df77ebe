"""Stage 04 powerlaw: fits of the distance distributions, tests against rivals, the description.

Outputs, in the stage's folder:
- ``fits.json``: per type and pooled: the power-law fit (alpha, xmin, sigma, n_tail, tail share,
  KS D), the bootstrap goodness-of-fit p-value, every pairwise likelihood-ratio test, the
  preferred family;
- ``description.csv`` (one row per type and pooled) and ``description.md`` (sentences);
- ``ccdf.png``: empirical CCDFs with the fitted candidates; ``metrics.json``.

The distances are not independent: L layers give L(L-1)/2 distances, each layer entering L-1 of
them, so the effective sample is far smaller than the number of distances. Both the bootstrap
and the likelihood-ratio tests assume independent points; their p-values are therefore
optimistic (too small), and a "significant" preference should be read as a tendency.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from distchar.atomic import atomic_directory
from distchar.config import PowerLawParams
from distchar.fits.comparison import ALTERNATIVES, fit_families, power_law_versus, preferred_family
from distchar.fits.description import describe, gap_trend, layer_clusters, ranges
from distchar.fits.power_law import bootstrap_p_value, fit_power_law
from distchar.plots import TYPE_PALETTE, quantisation_note, save_figure, use_style

log = logging.getLogger(__name__)

DEPENDENCE_NOTE = (
    "The L(L-1)/2 distances of a type come from only L layers, each entering L-1 distances, so they "
    "are not independent. The bootstrap and likelihood-ratio tests assume independence: their "
    "p-values are optimistic (too small) and significant preferences are tendencies, not proofs."
)


def fit_group(values: np.ndarray, params: PowerLawParams, rng: np.random.Generator) -> dict:
    """Fit, bootstrap p, tests and the preferred family for one set of distances."""
    fit = fit_power_law(values, min_tail=params.min_tail)
    gof_p = bootstrap_p_value(values, fit, params.bootstrap, rng, params.min_tail)
    comparisons, families = fit_families(values, fit)
    return {
        "fit": fit.to_dict(),
        "gof_p": gof_p,
        "comparisons": comparisons,
        "preferred": preferred_family(comparisons, gof_p) if fit.sufficient else "insufficient",
        "families": families,  # the fitted candidates, for the figure; not saved
    }


def description_row(group: str, result: dict, pairs: pd.DataFrame, distances: dict, params: PowerLawParams) -> dict:
    """The table row of one type (or ``pooled``)."""
    fit = result["fit"]
    row = {"type": group, "n": fit["n"], "preferred": result["preferred"], "alpha": fit["alpha"],
           "sigma": fit["sigma"], "xmin": fit["xmin"], "n_tail": fit["n_tail"], "tail_share": fit["tail_share"],
           "D": fit["D"], "gof_p": result["gof_p"], "reason": fit["reason"]}  # fmt: skip
    versus = power_law_versus(result["comparisons"])
    for name in ALTERNATIVES:
        row[f"R_{name}"] = versus.get(name, {}).get("R", np.nan)
        row[f"p_{name}"] = versus.get(name, {}).get("p", np.nan)
    subset = pairs if group == "pooled" else pairs[pairs["type"] == group]
    row["spearman_rho"], row["spearman_p"] = gap_trend(subset["gap"].to_numpy(), subset["distance"].to_numpy())
    if group == "pooled":
        row["clusters"] = ""
    else:
        groups = layer_clusters(distances[group], distances[f"{group}_layers"], params.max_clusters)
        row["clusters"] = "; ".join(ranges(g) for g in groups)
    return row


def plot_ccdfs(values: dict[str, np.ndarray], results: dict[str, dict], model_name: str):
    """Empirical CCDF of each group's distances and the candidates fitted to its tail."""
    import contextlib
    import io
    import warnings

    import matplotlib.pyplot as plt

    use_style()
    columns = 4
    n_rows = -(-len(values) // columns)
    fig, axes = plt.subplots(
        n_rows, columns, figsize=(3.6 * columns, 3.1 * n_rows), squeeze=False, layout="constrained"
    )
    styles = {"power_law": "-", "lognormal": "--", "exponential": ":", "truncated_power_law": "-.",
              "stretched_exponential": (0, (5, 1, 1, 1))}  # fmt: skip
    for ax, (group, x) in zip(axes.flat, values.items(), strict=False):
        x = x[np.isfinite(x) & (x > 0)]
        colour = TYPE_PALETTE.get(group, "black")
        ax.set(title=f"{group} ({results[group]['preferred']})", xscale="log", yscale="log", xlabel="cosine distance")
        ax.minorticks_off()
        if x.size == 0:
            continue
        xs = np.sort(x)
        ax.plot(xs, 1 - np.arange(xs.size) / xs.size, ".", ms=2, color=colour, label="data")
        fit = results[group]["fit"]
        model = results[group]["families"]
        if model is not None:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                grid = np.geomspace(fit["xmin"], xs[-1], 40)  # the truncated power law's CCDF is slow (mpmath)
                for name, style in styles.items():
                    ccdf = getattr(model, name).ccdf(grid) * fit["tail_share"]
                    ax.plot(grid, ccdf, linestyle=style, color="black", lw=1, label=name.replace("_", " "))
            ax.axvline(fit["xmin"], color="grey", lw=0.6)
    axes.flat[0].legend(fontsize=6)
    for ax in list(axes.flat)[len(values) :]:
        ax.set_visible(False)
    fig.suptitle(f"{model_name}: CCDF of cosine distances; candidates fitted above xmin (grey line)")
    return fig


def run_powerlaw(
    model_name: str, distances_dir: Path, params: PowerLawParams, out_dir: Path, extract_dir: Path | None = None
) -> dict:
    """Stage 04 for one model; with ``extract_dir``, quantised weights are noted in the description."""
    note = ""
    if extract_dir is not None:
        dtypes = set(json.loads((extract_dir / "summary.json").read_text())["dtypes"])
        note = quantisation_note(dtypes)
        note = f"Note: {note}; use a full-precision model for conclusions." if note else ""
    pairs = pd.read_csv(distances_dir / "pairs.csv")
    with np.load(distances_dir / "distances.npz") as data:
        distances = {key: data[key] for key in data.files}
    rng = np.random.default_rng(params.seed)
    groups = {t: g["distance"].to_numpy() for t, g in pairs.groupby("type", sort=False)}
    groups["pooled"] = pairs["distance"].to_numpy()
    results = {group: fit_group(x, params, rng) for group, x in groups.items()}
    table = pd.DataFrame([description_row(g, results[g], pairs, distances, params) for g in groups])
    sentences = [describe(row) for row in table.to_dict("records")]
    markdown = "\n".join(
        [f"# {model_name}: distribution characteristics of layer distances", "",
         *(f"- {s}" for s in sentences), "", DEPENDENCE_NOTE, *([f"\n{note}"] if note else [])]
    )  # fmt: skip
    metrics = {
        row["type"]: {"alpha": row["alpha"], "D": row["D"], "preferred": row["preferred"],
                      "tail_share": row["tail_share"], "gof_p": row["gof_p"], "spearman_rho": row["spearman_rho"]}
        for row in table.to_dict("records")
    }  # fmt: skip
    with atomic_directory(out_dir) as scratch:
        saved = {group: {k: v for k, v in r.items() if k != "families"} for group, r in results.items()}
        (scratch / "fits.json").write_text(json.dumps(saved, indent=1, default=float) + "\n")
        table.to_csv(scratch / "description.csv", index=False, float_format="%.6g")
        (scratch / "description.md").write_text(markdown + "\n")
        (scratch / "metrics.json").write_text(json.dumps(_rounded(metrics), indent=1) + "\n")
        save_figure(plot_ccdfs(groups, results, model_name), scratch / "ccdf.png")
    log.info("powerlaw %s: preferred %s", model_name, dict(zip(table["type"], table["preferred"], strict=True)))
    return {"model": model_name, "preferred": dict(zip(table["type"], table["preferred"], strict=True))}


def _rounded(value):
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return None if not np.isfinite(value) else round(value, 6)
    return value

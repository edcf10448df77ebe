"""Stage 03 distances: cosine distances between layers, within each type and across types.

Outputs, in the stage's folder:
- ``distances.npz``: per type t, ``t`` the (layers x layers) distance matrix and ``t_layers``;
  ``cross`` the distance matrix over the rows of every type (profiles cut to their common
  length) with ``cross_labels``; ``type_means`` (types x types) and ``types``;
- ``pairs.csv``: one row per layer pair within a type: type, layer_i, layer_j, gap, distance;
- ``heatmaps.png``, ``gap.png`` (distance against layer gap), ``cross_types.png``;
- ``summary.json`` (zero rows found, counts) and ``metrics.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from distchar.atomic import atomic_directory
from distchar.distances import cosine_distances, cross_type_distances, mean_between_types, pair_table, zero_rows
from distchar.plots import TYPE_PALETTE, save_figure, use_style
from distchar.spectra.profiles import load_profiles

log = logging.getLogger(__name__)


def plot_heatmaps(matrices: dict[str, np.ndarray], layers: dict[str, np.ndarray], model_name: str):
    """One heatmap per type, log colour scale (distances span decades)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    use_style()
    columns = 4
    n_rows = -(-len(matrices) // columns)
    fig, axes = plt.subplots(
        n_rows, columns, figsize=(3.4 * columns, 3.0 * n_rows), squeeze=False, layout="constrained"
    )
    for ax, (t, d) in zip(axes.flat, matrices.items(), strict=False):
        positive = d[np.isfinite(d) & (d > 0)]
        norm = LogNorm(positive.min(), positive.max()) if positive.size else None
        image = ax.imshow(np.where(d > 0, d, np.nan), cmap="magma", origin="lower", norm=norm)
        ticks = np.linspace(0, len(layers[t]) - 1, min(4, len(layers[t]))).astype(int)
        ax.set_xticks(ticks, layers[t][ticks])
        ax.set_yticks(ticks, layers[t][ticks])
        ax.set(title=t, xlabel="layer", ylabel="layer")
        ax.grid(False)
        fig.colorbar(image, ax=ax, shrink=0.85).minorticks_off()  # minor log ticks cost more than they show
    for ax in list(axes.flat)[len(matrices) :]:
        ax.set_visible(False)
    fig.suptitle(f"{model_name}: cosine distance between layers' singular-value profiles (log colour)")
    return fig


def plot_gap(pairs: pd.DataFrame, model_name: str):
    import matplotlib.pyplot as plt
    import seaborn as sns

    use_style()
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    sns.lineplot(data=pairs, x="gap", y="distance", hue="type", palette=TYPE_PALETTE, errorbar=("pi", 50), ax=ax)
    ax.set_yscale("log")
    ax.minorticks_off()
    ax.set_xlabel("layer gap |l - l'|")
    ax.set_ylabel("cosine distance (median, band: 25-75%)")
    ax.set_title(f"{model_name}: distance against layer gap")
    ax.legend(title="type", fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    return fig


def plot_type_means(means: np.ndarray, types: list[str], model_name: str):
    import matplotlib.pyplot as plt
    import seaborn as sns

    use_style()
    fig, ax = plt.subplots(figsize=(4.8, 4), layout="constrained")
    sns.heatmap(means, xticklabels=types, yticklabels=types, annot=True, fmt=".3f", cmap="magma", ax=ax,
                annot_kws={"fontsize": 7})  # fmt: skip
    ax.set_title(f"{model_name}: mean distance between types")
    return fig


def run_distances(model_name: str, svd_dir: Path, out_dir: Path) -> dict:
    """Stage 03 for one model; see the module docstring."""
    profiles, layers = load_profiles(svd_dir)
    matrices, tables, zeros = {}, [], {}
    for t, s in profiles.items():
        matrices[t] = cosine_distances(s)
        found = zero_rows(s)
        if found.size:
            zeros[t] = layers[t][found].tolist()
            log.warning(
                "%s %s: layers %s have all-zero profiles; their distances are undefined", model_name, t, zeros[t]
            )
        tables.append(pd.DataFrame({"type": t, **pair_table(matrices[t], layers[t])}))
    pairs = pd.concat(tables, ignore_index=True)
    cross, labels = cross_type_distances(profiles)
    means, types = mean_between_types(cross, labels)
    summary = {
        "model": model_name,
        "pairs_per_type": pairs.groupby("type", sort=False).size().to_dict(),
        "zero_profile_layers": zeros,
        "undefined_pairs": int(pairs["distance"].isna().sum()),
        "cross_type_profile_length": int(min(p.shape[1] for p in profiles.values())),
    }
    metrics = {
        t: {
            "mean_distance": round(float(g["distance"].mean()), 6),
            "median_distance": round(float(g["distance"].median()), 6),
        }
        for t, g in pairs.groupby("type", sort=False)
    }
    with atomic_directory(out_dir) as scratch:
        arrays = {**matrices, **{f"{t}_layers": layers[t] for t in matrices}}
        np.savez(scratch / "distances.npz", **arrays, cross=cross, cross_labels=np.array(labels),
                 type_means=means, types=np.array(types))  # fmt: skip
        pairs.to_csv(scratch / "pairs.csv", index=False, float_format="%.8g")
        (scratch / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        (scratch / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        save_figure(plot_heatmaps(matrices, layers, model_name), scratch / "heatmaps.png")
        save_figure(plot_gap(pairs, model_name), scratch / "gap.png")
        save_figure(plot_type_means(means, types, model_name), scratch / "cross_types.png")
    log.info("distances %s: %d pairs over %d types", model_name, len(pairs), len(matrices))
    return summary

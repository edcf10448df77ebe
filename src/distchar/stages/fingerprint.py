"""The cross-model fingerprint: every model in params.yaml side by side, type by type.

Reads each model's stage-04 ``description.csv`` and writes, in ``results/04_fingerprint/``:
``fingerprint.csv`` (all rows, with a model column) and ``fingerprint.png``: heatmaps of alpha,
tail share and Spearman's rho (distance against layer gap) over model x type, each cell labelled
with the preferred family.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from distchar.atomic import atomic_directory
from distchar.errors import DistcharError
from distchar.models.architectures import CANONICAL_TYPES
from distchar.plots import save_figure, use_style

SHORT = {"power_law": "PL", "lognormal": "LN", "exponential": "EXP", "truncated_power_law": "TPL",
         "stretched_exponential": "SE", "inconclusive": "?", "insufficient": "-"}  # fmt: skip


def collect(models: list[str], powerlaw_root: Path) -> pd.DataFrame:
    """Every model's description table, stacked, with a ``model`` column."""
    frames = []
    for model in models:
        path = powerlaw_root / model / "description.csv"
        if not path.exists():
            raise DistcharError(f"No stage-04 description for model '{model}' at {path}; run dvc repro first.")
        frames.append(pd.read_csv(path).assign(model=model))
    return pd.concat(frames, ignore_index=True)


def plot_fingerprint(table: pd.DataFrame):
    import matplotlib.pyplot as plt
    import seaborn as sns

    use_style()
    order = [t for t in (*CANONICAL_TYPES, "pooled") if t in set(table["type"])]
    models = list(dict.fromkeys(table["model"]))
    panels = (("alpha", "power-law alpha", "viridis"), ("tail_share", "tail share", "cividis"),
              ("spearman_rho", "Spearman rho (distance vs gap)", "coolwarm"))  # fmt: skip
    fig, axes = plt.subplots(1, 3, figsize=(5.2 * 3, 0.7 * len(models) + 2.2), layout="constrained")
    labels = table.pivot(index="model", columns="type", values="preferred").reindex(index=models, columns=order)
    for ax, (column, title, cmap) in zip(axes, panels, strict=True):
        values = table.pivot(index="model", columns="type", values=column).reindex(index=models, columns=order)
        annotations = values.round(2).astype(str) + "\n" + labels.map(lambda f: SHORT.get(f, "?"))
        center = 0 if column == "spearman_rho" else None
        sns.heatmap(values.astype(float), annot=annotations.to_numpy(), fmt="", cmap=cmap, center=center, ax=ax,
                    annot_kws={"fontsize": 7}, cbar_kws={"shrink": 0.8})  # fmt: skip
        ax.set(title=title, xlabel="", ylabel="")
    fig.suptitle(
        "Fingerprint of layer-distance distributions; cell label: value and preferred family "
        "(PL power law, LN log-normal, TPL truncated PL, SE stretched exp., EXP exponential, ? inconclusive)",
        fontsize=9,
    )
    return fig


def run_fingerprint(models: list[str], powerlaw_root: Path, out_dir: Path) -> pd.DataFrame:
    """Write fingerprint.csv and fingerprint.png for ``models``."""
    table = collect(models, powerlaw_root)
    with atomic_directory(out_dir) as scratch:
        table.to_csv(scratch / "fingerprint.csv", index=False, float_format="%.6g")
        save_figure(plot_fingerprint(table), scratch / "fingerprint.png")
    return table

"""Stage 02 svd: top-k singular values of every projection matrix, and per-matrix summaries.

Outputs, in the stage's folder:
- ``singular_values.npz``: per type t, ``t`` the (layers x k) matrix S_t of top-k singular values
  (descending, float64) and ``t_layers`` the layer index of each row;
- ``summaries.csv``: per matrix: layer, type, rows, cols, method, spectral_norm, stable_rank,
  esd_alpha, esd_xmin, esd_D, esd_n_tail, esd_note, n_values. The ESD columns (WeightWatcher's
  alpha, ``distchar.spectra.summaries``) need every eigenvalue: they are NaN where the randomized
  method computed only the top k values, and ``esd_note`` says why ("" where fitted);
- ``check.json``: the relative error of the method used against float64 LAPACK on a seeded sample
  of ``svd.check_matrices`` matrices (``distchar.spectra.model.accuracy_check``); where it exceeds
  ``svd.tolerance`` under ``auto``, every matrix is recomputed in float64 and ``fallback`` says so;
- ``summary.json`` and ``metrics.json`` (``esd_alpha``: how many matrices have it, and the reasons
  of those without; ``mean_esd_alpha`` by type over the matrices that have it, null where none
  has); ``spectra.png``: the singular-value profiles by layer.
Matrices with NaN or Inf entries (flagged by stage 01) are left out and listed in summary.json.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from distchar.atomic import atomic_directory
from distchar.config import SvdParams
from distchar.devices import resolve_device
from distchar.errors import DistcharError
from distchar.models.architectures import CANONICAL_TYPES
from distchar.models.projections import list_projections
from distchar.models.sources import resolve_source
from distchar.plots import quantisation_note, save_figure, use_style
from distchar.spectra.model import check_k, compute_singular_values, kept
from distchar.spectra.profiles import save_profiles, stack_by_type
from distchar.timings import write_timings

log = logging.getLogger(__name__)


def plot_spectra(arrays: dict[str, np.ndarray], model_name: str, note: str):
    """Singular-value profiles, one panel per type, one line per layer (colour = depth)."""
    import matplotlib.pyplot as plt

    use_style()
    types = [t for t in CANONICAL_TYPES if t in arrays]
    fig, axes = plt.subplots(
        1, len(types), figsize=(2.6 * len(types), 3.2), sharey=True, squeeze=False, layout="constrained"
    )
    for ax, t in zip(axes[0], types, strict=True):
        s, layers = arrays[t], arrays[f"{t}_layers"]
        colours = plt.cm.viridis(np.linspace(0, 1, len(layers)))
        for row, colour in zip(s, colours, strict=True):
            ax.plot(np.arange(1, row.size + 1), row, color=colour, lw=0.8)
        ax.set_yscale("log")
        ax.minorticks_off()
        ax.set_title(t)
        ax.set_xlabel("index i")
    axes[0][0].set_ylabel("singular value s_i")
    fig.suptitle(f"{model_name}: top singular values by layer (dark: first layer)" + (f"\n({note})" if note else ""))
    return fig


def _rounded(value: float, digits: int) -> float | None:
    return None if np.isnan(value) else round(float(value), digits)


def esd_alpha_coverage(table: pd.DataFrame) -> dict:
    """How many matrices have an ESD alpha, and how many lack it for each reason (``esd_note``)."""
    missing = table.loc[table["esd_alpha"].isna(), "esd_note"].value_counts()
    return {
        "matrices": int(table["esd_alpha"].notna().sum()),
        "of": len(table),
        "missing": {str(note): int(n) for note, n in missing.items()},
    }


def run_svd(model_name: str, source: str, extract_dir: Path, params: SvdParams, out_dir: Path) -> dict:
    """Stage 02 for one model; see the module docstring."""
    start = time.perf_counter()
    manifest = pd.read_csv(extract_dir / "manifest.csv")
    flagged = manifest[(manifest["nan_count"] > 0) | (manifest["inf_count"] > 0)]
    excluded = {(int(r.layer), r.type) for r in flagged.itertuples()}
    types = tuple(t for t in CANONICAL_TYPES if t in set(manifest["type"]))
    matrices = [m for m in list_projections(resolve_source(source), types) if (m.layer, m.type) not in excluded]
    if not matrices:
        raise DistcharError(
            f"Model '{model_name}': every projection matrix has NaN or Inf entries; nothing to analyse."
        )
    check_k(kept(params), matrices)
    frobenius = {(int(r.layer), r.type): float(r.frobenius_norm) for r in manifest.itertuples()}
    values, table, check = compute_singular_values(matrices, frobenius, params)
    arrays = stack_by_type(values)
    summary = {
        "model": model_name,
        "k": params.k,
        "methods": table["method"].value_counts().to_dict(),
        "device": str(resolve_device(params.device, "svd.device")),
        "n_matrices": len(table),
        "excluded_nonfinite": [f"layer {layer} {t}" for layer, t in sorted(excluded)],
        "esd_alpha": esd_alpha_coverage(table),
    }
    metrics = {
        "n_matrices": len(table),
        "n_excluded": len(excluded),
        "max_relative_error_vs_float64": check.get("max_relative_error"),
        "n_esd_alpha": int(table["esd_alpha"].notna().sum()),
        "mean_esd_alpha": {t: _rounded(v, 4) for t, v in table.groupby("type", sort=False)["esd_alpha"].mean().items()},
        "mean_stable_rank": {
            t: round(float(v), 3) for t, v in table.groupby("type", sort=False)["stable_rank"].mean().items()
        },
    }
    for item in excluded:
        log.warning("%s: layer %d %s left out (NaN/Inf entries)", model_name, *item)
    with atomic_directory(out_dir) as scratch:
        save_profiles(arrays, scratch)
        table.to_csv(scratch / "summaries.csv", index=False, float_format="%.8g")
        (scratch / "check.json").write_text(json.dumps(check, indent=1) + "\n")
        (scratch / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        (scratch / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        note = quantisation_note(set(manifest["dtype"]))
        save_figure(plot_spectra(arrays, model_name, note), scratch / "spectra.png")
    seconds = round(time.perf_counter() - start, 3)
    write_timings(out_dir, {"seconds": seconds})
    log.info(
        "svd %s: %d matrices (%s), ESD alpha for %d, in %.1f s",
        model_name, len(table), summary["methods"], summary["esd_alpha"]["matrices"], seconds,
    )  # fmt: skip
    return summary

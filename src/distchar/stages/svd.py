"""Stage 02 svd: top-k singular values of every projection matrix, and per-matrix summaries.

Outputs, in the stage's folder:
- ``singular_values.npz``: per type t, ``t`` the (layers x k) matrix S_t of top-k singular values
  (descending, float64) and ``t_layers`` the layer index of each row;
- ``summaries.csv``: per matrix: layer, type, rows, cols, method, spectral_norm, stable_rank,
  esd_alpha, esd_xmin, esd_D, esd_n_tail, n_values;
- ``check.json``: the randomized method's relative error against exact on a sample of matrices;
- ``summary.json`` and ``metrics.json``; ``spectra.png``: the singular-value profiles by layer.
Matrices with NaN or Inf entries (flagged by stage 01) are left out and listed in summary.json.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from distchar.atomic import atomic_directory
from distchar.config import SvdParams
from distchar.errors import DistcharError
from distchar.models.architectures import CANONICAL_TYPES
from distchar.models.projections import ProjectionMatrix, list_projections, load_projection
from distchar.models.sources import resolve_source
from distchar.plots import quantisation_note, save_figure, use_style
from distchar.spectra import spectral_summary
from distchar.spectra.singular_values import choose_method, exact_singular_values, randomized_singular_values

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DistcharError("params.yaml: svd.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'.")
    return torch.device(device)


def _check_k(k: int | None, matrices: list[ProjectionMatrix]) -> None:
    if k is None:
        return
    for m in matrices:
        if k > min(m.shape):
            raise DistcharError(
                f"params.yaml: svd.k = {k} exceeds the smaller side of the {m.type} projection "
                f"({m.shape[0]} x {m.shape[1]}, layer {m.layer}); use at most {min(m.shape)} or 'all'."
            )


def _batches(matrices: list[ProjectionMatrix], batch_mb: int):
    """Group equally shaped matrices into batches of at most ``batch_mb`` MB, streaming the reads."""
    pending: dict[tuple[int, int], list[ProjectionMatrix]] = defaultdict(list)
    for m in matrices:
        pending[m.shape].append(m)
        if len(pending[m.shape]) * m.shape[0] * m.shape[1] * 4 >= batch_mb * 2**20:
            yield pending.pop(m.shape)
    yield from pending.values()


def compute_singular_values(
    matrices: list[ProjectionMatrix], frobenius: dict[tuple[int, str], float], params: SvdParams
) -> tuple[dict[tuple[int, str], np.ndarray], pd.DataFrame]:
    """Top-k values and summaries of each matrix; reads each matrix once, batch by batch."""
    k = None if params.k == "all" else params.k
    device = resolve_device(params.device)
    generator = torch.Generator().manual_seed(params.seed)
    values: dict[tuple[int, str], np.ndarray] = {}
    rows = []
    progress = tqdm(total=len(matrices), desc="svd", unit="matrix")
    for batch in _batches(matrices, params.batch_mb):
        stacked = torch.empty((len(batch), *batch[0].shape), dtype=torch.float32, device=device)
        for i, m in enumerate(batch):  # fill in place: never the list and the stack at once
            stacked[i] = load_projection(m)
        used = choose_method(batch[0].shape, k, params.method, params.oversampling)
        if used == "randomized":
            full = randomized_singular_values(stacked, k, params.oversampling, params.power_iterations, generator)
        else:  # every value: the ESD alpha wants them all; S_t keeps the top k
            full = exact_singular_values(stacked)
        for m, s in zip(batch, full.cpu().numpy(), strict=True):
            values[(m.layer, m.type)] = s if k is None else s[:k]
            summary = spectral_summary(s, frobenius[(m.layer, m.type)])
            rows.append(
                {"layer": m.layer, "type": m.type, "rows": m.shape[0], "cols": m.shape[1], "method": used, **summary}
            )
        progress.update(len(batch))
    progress.close()
    order = {t: i for i, t in enumerate(CANONICAL_TYPES)}
    table = pd.DataFrame(rows).sort_values(["layer", "type"], key=lambda c: c.map(order) if c.name == "type" else c)
    return values, table.reset_index(drop=True)


def randomized_check(
    matrices: list[ProjectionMatrix], values: dict[tuple[int, str], np.ndarray], table: pd.DataFrame, params: SvdParams
) -> dict:
    """Relative error of the randomized top-k against exact, on a seeded sample of matrices.

    Where the main pass already computed a matrix exactly (``values``, ``table.method``), those
    values are the reference; otherwise the exact values are computed here.
    """
    k = None if params.k == "all" else params.k
    if k is None or params.check_matrices == 0:
        return {"checked": 0, "reason": "k is 'all'" if k is None else "svd.check_matrices is 0"}
    rng = np.random.default_rng(params.seed)
    sample = rng.choice(len(matrices), size=min(params.check_matrices, len(matrices)), replace=False)
    generator = torch.Generator().manual_seed(params.seed)
    method = {(r.layer, r.type): r.method for r in table.itertuples()}
    errors = []
    checked = sorted(int(i) for i in sample)
    for i in checked:
        key = (matrices[i].layer, matrices[i].type)
        w = load_projection(matrices[i])[None]
        if method[key] == "exact":
            exact = torch.from_numpy(values[key][:k])
        else:
            exact = exact_singular_values(w)[0, :k]
        approx = randomized_singular_values(w, k, params.oversampling, params.power_iterations, generator)[0]
        errors.append(float(((approx - exact).abs() / exact).max()))
    return {
        "checked": len(errors),
        "matrices": [f"layer {matrices[i].layer} {matrices[i].type}" for i in checked],
        "k": k,
        "oversampling": params.oversampling,
        "power_iterations": params.power_iterations,
        "max_relative_error": max(errors),
        "median_relative_error": float(np.median(errors)),
    }


def stack_by_type(values: dict[tuple[int, str], np.ndarray]) -> dict[str, np.ndarray]:
    """The npz arrays: per type, S_t (layers x k) and its layer indices."""
    arrays = {}
    for t in CANONICAL_TYPES:
        layers = sorted(layer for layer, typ in values if typ == t)
        if layers:
            arrays[t] = np.stack([values[(layer, t)] for layer in layers])
            arrays[f"{t}_layers"] = np.array(layers)
    return arrays


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
    _check_k(None if params.k == "all" else params.k, matrices)
    frobenius = {(int(r.layer), r.type): float(r.frobenius_norm) for r in manifest.itertuples()}
    values, table = compute_singular_values(matrices, frobenius, params)
    check = randomized_check(matrices, values, table, params)
    arrays = stack_by_type(values)
    summary = {
        "model": model_name,
        "k": params.k,
        "methods": table["method"].value_counts().to_dict(),
        "device": str(resolve_device(params.device)),
        "n_matrices": len(table),
        "excluded_nonfinite": [f"layer {layer} {t}" for layer, t in sorted(excluded)],
        "seconds": round(time.perf_counter() - start, 3),
    }
    metrics = {
        "n_matrices": len(table),
        "n_excluded": len(excluded),
        "randomized_max_relative_error": check.get("max_relative_error"),
        "mean_esd_alpha": {
            t: round(float(v), 4) for t, v in table.groupby("type", sort=False)["esd_alpha"].mean().items()
        },
        "mean_stable_rank": {
            t: round(float(v), 3) for t, v in table.groupby("type", sort=False)["stable_rank"].mean().items()
        },
    }
    for item in excluded:
        log.warning("%s: layer %d %s left out (NaN/Inf entries)", model_name, *item)
    with atomic_directory(out_dir) as scratch:
        np.savez(scratch / "singular_values.npz", **arrays)
        table.to_csv(scratch / "summaries.csv", index=False, float_format="%.8g")
        (scratch / "check.json").write_text(json.dumps(check, indent=1) + "\n")
        (scratch / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        (scratch / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        note = quantisation_note(set(manifest["dtype"]))
        save_figure(plot_spectra(arrays, model_name, note), scratch / "spectra.png")
    log.info("svd %s: %d matrices (%s) in %.1f s", model_name, len(table), summary["methods"], summary["seconds"])
    return summary

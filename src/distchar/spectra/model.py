"""The spectra of a model's projection matrices: top-k singular values and per-matrix summaries,
read batch by batch (stage 02), and the check of the randomized method against exact."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import torch

from distchar.config import SvdParams
from distchar.devices import resolve_device
from distchar.errors import DistcharError
from distchar.models.architectures import CANONICAL_TYPES
from distchar.models.projections import ProjectionMatrix, load_projection
from distchar.progress import progress
from distchar.spectra.singular_values import choose_method, exact_singular_values, randomized_singular_values
from distchar.spectra.summaries import spectral_summary


def check_k(k: int | None, matrices: list[ProjectionMatrix]) -> None:
    if k is None:
        return
    for m in matrices:
        if k > min(m.shape):
            raise DistcharError(
                f"params.yaml: svd.k = {k} exceeds the smaller side of the {m.type} projection "
                f"({m.shape[0]} x {m.shape[1]}, layer {m.layer}); use at most {min(m.shape)} or 'all'."
            )


def shape_batches(matrices: list[ProjectionMatrix], batch_mb: int):
    """Group equally shaped matrices into batches of at most ``batch_mb`` MB, streaming the reads."""
    pending: dict[tuple[int, int], list[ProjectionMatrix]] = defaultdict(list)
    for m in matrices:
        pending[m.shape].append(m)
        if len(pending[m.shape]) * m.shape[0] * m.shape[1] * 4 >= batch_mb * 2**20:
            yield pending.pop(m.shape)
    yield from pending.values()


def batch_singular_values(
    stacked: torch.Tensor, k: int | None, params: SvdParams, generator: torch.Generator
) -> tuple[torch.Tensor, str]:
    """The singular values of a batch of equally shaped matrices by the method ``params`` picks for
    their shape, and that method: randomized gives the top k, exact every value (the ESD alpha
    wants them all; S_t keeps the top k)."""
    used = choose_method(tuple(stacked.shape[1:]), k, params.method, params.oversampling)
    if used == "randomized":
        return randomized_singular_values(stacked, k, params.oversampling, params.power_iterations, generator), used
    return exact_singular_values(stacked), used


def compute_singular_values(
    matrices: list[ProjectionMatrix], frobenius: dict[tuple[int, str], float], params: SvdParams
) -> tuple[dict[tuple[int, str], np.ndarray], pd.DataFrame]:
    """Top-k values and summaries of each matrix; reads each matrix once, batch by batch.

    The summaries' ESD fit is made only where the method computed every singular value (``exact``);
    under ``randomized`` its columns are NaN and ``esd_note`` says so.
    """
    k = None if params.k == "all" else params.k
    device = resolve_device(params.device, "svd.device")
    generator = torch.Generator().manual_seed(params.seed)
    values: dict[tuple[int, str], np.ndarray] = {}
    rows = []
    bar = progress(total=len(matrices), desc="svd", unit="matrix")
    for batch in shape_batches(matrices, params.batch_mb):
        stacked = torch.empty((len(batch), *batch[0].shape), dtype=torch.float32, device=device)
        for i, m in enumerate(batch):  # fill in place: never the list and the stack at once
            stacked[i] = load_projection(m)
        full, used = batch_singular_values(stacked, k, params, generator)
        for m, s in zip(batch, full.cpu().numpy(), strict=True):
            values[(m.layer, m.type)] = s if k is None else s[:k]
            # randomized returns the top k only: the ESD fit is made where every value is there
            summary = spectral_summary(s, frobenius[(m.layer, m.type)], full_spectrum=s.size == min(m.shape))
            rows.append(
                {"layer": m.layer, "type": m.type, "rows": m.shape[0], "cols": m.shape[1], "method": used, **summary}
            )
        bar.update(len(batch))
    bar.close()
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

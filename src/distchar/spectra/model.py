"""The spectra of a model's projection matrices: top-k singular values and per-matrix summaries,
read batch by batch (stage 02), and the check of the method used against float64 on a sample."""

from __future__ import annotations

import logging
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
from distchar.spectra.singular_values import choose_method, exact_singular_values, singular_values_by, working_bytes
from distchar.spectra.summaries import spectral_summary

log = logging.getLogger(__name__)

CHECK_TOP = 64
"""Values compared by the check when every value is kept (``k: all``): the top ones, whose relative
error the float32 methods bound; the small ones carry absolute round-off (see singular_values)."""


def kept(params: SvdParams) -> int | None:
    """The number of values kept per matrix: ``svd.k``, None for 'all'."""
    return None if params.k == "all" else params.k


def check_k(k: int | None, matrices: list[ProjectionMatrix]) -> None:
    if k is None:
        return
    for m in matrices:
        if k > min(m.shape):
            raise DistcharError(
                f"params.yaml: svd.k = {k} exceeds the smaller side of the {m.type} projection "
                f"({m.shape[0]} x {m.shape[1]}, layer {m.layer}); use at most {min(m.shape)} or 'all'."
            )


def shape_batches(matrices: list[ProjectionMatrix], params: SvdParams):
    """Group equally shaped matrices into batches whose working memory (the float32 matrices and the
    method's copies, ``working_bytes``) stays within ``svd.batch_mb``, streaming the reads; a
    single matrix beyond the bound stops before anything is read (``check_batch_bound``)."""
    check_batch_bound(matrices, params)
    k = kept(params)
    method = choose_method(k, params.method)
    pending: dict[tuple[int, int], list[ProjectionMatrix]] = defaultdict(list)
    for m in matrices:
        pending[m.shape].append(m)
        capacity = max(1, params.batch_mb * 2**20 // working_bytes(m.shape, method, k, params.oversampling))
        if len(pending[m.shape]) >= capacity:
            yield pending.pop(m.shape)
    yield from pending.values()


def check_batch_bound(matrices: list[ProjectionMatrix], params: SvdParams) -> None:
    """One clear sentence when a single matrix needs more working memory than ``svd.batch_mb``."""
    k = kept(params)
    method = choose_method(k, params.method)
    for shape, m in {m.shape: m for m in matrices}.items():
        need = working_bytes(shape, method, k, params.oversampling) / 2**20
        if need > params.batch_mb:
            raise DistcharError(
                f"params.yaml: svd.batch_mb = {params.batch_mb} is below the {need:.0f} MB that one "
                f"{shape[0]} x {shape[1]} {m.type} matrix needs under the {method} method (the float32 matrix "
                f"and its working copies); raise svd.batch_mb to at least {int(np.ceil(need))}."
            )


def batch_singular_values(
    stacked: torch.Tensor, k: int | None, params: SvdParams, generator: torch.Generator, method: str | None = None
) -> tuple[torch.Tensor, str]:
    """The singular values of a batch of equally shaped matrices by ``method`` (default: the one
    ``params`` picks), and that method: randomized gives the top k, the others every value (the ESD
    alpha wants them all; S_t keeps the top k)."""
    used = method or choose_method(k, params.method)
    values = singular_values_by(stacked, k, used, params.oversampling, params.power_iterations, generator)
    return values, used


def check_sample(matrices: list[ProjectionMatrix], params: SvdParams) -> set[tuple[int, str]]:
    """The seeded sample of ``svd.check_matrices`` matrices the check compares with float64."""
    rng = np.random.default_rng(params.seed)
    sample = rng.choice(len(matrices), size=min(params.check_matrices, len(matrices)), replace=False)
    return {(matrices[int(i)].layer, matrices[int(i)].type) for i in sample}


def compute_singular_values(
    matrices: list[ProjectionMatrix],
    frobenius: dict[tuple[int, str], float],
    params: SvdParams,
    method: str | None = None,
) -> tuple[dict[tuple[int, str], np.ndarray], pd.DataFrame, dict]:
    """Top-k values, summaries and accuracy check of each matrix; reads each matrix once, batch by batch.

    The summaries' ESD fit is made only where the method computed every singular value; under
    ``randomized`` its columns are NaN and ``esd_note`` says so. The matrices of ``check_sample``
    are also computed in float64 while they are in memory (see ``accuracy_check``); where they are
    further off than ``svd.tolerance`` under ``auto``, every matrix is recomputed in float64 and
    the check's ``fallback`` says so.
    """
    k = kept(params)
    device = resolve_device(params.device, "svd.device")
    generator = torch.Generator().manual_seed(params.seed)
    sample = check_sample(matrices, params)
    values: dict[tuple[int, str], np.ndarray] = {}
    errors: dict[tuple[int, str], float] = {}
    rows = []
    bar = progress(total=len(matrices), desc="svd", unit="matrix")
    for batch in shape_batches(matrices, params):
        stacked = torch.empty((len(batch), *batch[0].shape), dtype=torch.float32, device=device)
        for i, m in enumerate(batch):  # fill in place: never the list and the stack at once
            stacked[i] = load_projection(m)
        full, used = batch_singular_values(stacked, k, params, generator, method)
        full = full.cpu()
        for i, (m, s) in enumerate(zip(batch, full.numpy(), strict=True)):
            key = (m.layer, m.type)
            values[key] = s if k is None else s[:k]
            if key in sample and used != "exact":
                top = min(k or CHECK_TOP, s.size)
                reference = exact_singular_values(stacked[i : i + 1])[0, :top].cpu().numpy()
                errors[key] = float(np.max(np.abs(s[:top] - reference) / reference))
            # randomized returns the top k only: the ESD fit is made where every value is there
            summary = spectral_summary(s, frobenius[key], full_spectrum=s.size == min(m.shape))
            rows.append(
                {"layer": m.layer, "type": m.type, "rows": m.shape[0], "cols": m.shape[1], "method": used, **summary}
            )
        bar.update(len(batch))
    bar.close()
    order = {t: i for i, t in enumerate(CANONICAL_TYPES)}
    table = pd.DataFrame(rows).sort_values(["layer", "type"], key=lambda c: c.map(order) if c.name == "type" else c)
    check = accuracy_check(errors, table, params)
    if check.get("within_tolerance", True):
        return values, table.reset_index(drop=True), check
    if params.method != "auto" or method is not None:
        log.warning("svd.method %s is %.2g off float64, above svd.tolerance %.2g",
                    params.method, check["max_relative_error"], params.tolerance)  # fmt: skip
        return values, table.reset_index(drop=True), check
    log.warning(
        "%s is %.2g off float64 on %s (svd.tolerance %.2g): recomputing every matrix in float64",
        "/".join(check["methods"]), check["max_relative_error"], check["compared"], params.tolerance,
    )  # fmt: skip
    values, table, _ = compute_singular_values(matrices, frobenius, params, method="exact")
    return values, table, {**check, "fallback": "every matrix recomputed in float64 (method exact): the check "
                           "exceeded svd.tolerance"}  # fmt: skip


def accuracy_check(errors: dict[tuple[int, str], float], table: pd.DataFrame, params: SvdParams) -> dict:
    """The a-posteriori check: the largest relative error of the values kept (the top k; the top 64
    under ``k: all``) against float64 LAPACK on the seeded sample, and whether it is within
    ``svd.tolerance``. Matrices computed by ``exact`` are the float64 reference: nothing to check."""
    k = kept(params)
    if params.check_matrices == 0:
        return {"checked": 0, "reason": "svd.check_matrices is 0"}
    if not errors:
        return {"checked": 0, "reason": "every matrix was computed in float64 (method exact)"}
    worst = max(errors.values())
    methods = sorted(set(table["method"]))
    sketch = {"oversampling": params.oversampling, "power_iterations": params.power_iterations}
    return {
        "checked": len(errors),
        "matrices": [f"layer {layer} {t}" for layer, t in sorted(errors)],
        "methods": methods,
        "compared": f"top {k}" if k is not None else f"top {CHECK_TOP}",
        "reference": "float64 Gram matrix, float64 eigvalsh (method exact)",
        "max_relative_error": worst,
        "median_relative_error": float(np.median(list(errors.values()))),
        "tolerance": params.tolerance,
        "within_tolerance": bool(worst <= params.tolerance),
        **(sketch if "randomized" in methods else {}),
    }

"""Cosine distances between the singular-value profiles of layers.

For a projection type t, S_t is the (layers x k) matrix whose row l holds the top-k singular
values of W(l, t). The distance between layers l and l' is d = 1 - cos(S_t[l], S_t[l']). Singular
values are non-negative, so d lies in [0, 1]. A row of zeros has no direction: its distances are
undefined (NaN) and reported, never silently set to 0 or 1.
"""

from __future__ import annotations

import numpy as np


def cosine_distances(rows: np.ndarray) -> np.ndarray:
    """All pairwise cosine distances of the rows of a (n x k) array; (n x n), NaN for zero rows.

    The diagonal is 0 for non-zero rows; the result is symmetric and clipped to [0, 2] against
    rounding.
    """
    x = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = x / norms[:, None]
    similarity = unit @ unit.T
    distance = np.clip(1.0 - similarity, 0.0, 2.0)
    distance = (distance + distance.T) / 2
    np.fill_diagonal(distance, np.where(norms > 0, 0.0, np.nan))
    distance[norms == 0, :] = np.nan
    distance[:, norms == 0] = np.nan
    return distance


def zero_rows(rows: np.ndarray) -> np.ndarray:
    """Indices of all-zero rows, whose cosine distances are undefined."""
    return np.flatnonzero(~np.any(np.asarray(rows) != 0, axis=1))


def upper_triangle(distance: np.ndarray) -> np.ndarray:
    """The entries above the diagonal (each pair once), in ``pair_table``'s order."""
    i, j = np.triu_indices(distance.shape[0], k=1)
    return distance[i, j]


def pair_table(distance: np.ndarray, layers: np.ndarray) -> dict[str, np.ndarray]:
    """The upper triangle as columns: layer_i, layer_j, gap (|layer_j - layer_i|), distance."""
    i, j = np.triu_indices(distance.shape[0], k=1)
    return {
        "layer_i": layers[i],
        "layer_j": layers[j],
        "gap": np.abs(layers[j] - layers[i]),
        "distance": distance[i, j],
    }


def cross_type_distances(profiles: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """Distances between every (layer, type) row of every type, profiles cut to their common length.

    Returns the (N x N) matrix over all rows, types in the given order, and a label per row
    (``"t:layer index"`` in row order).
    """
    width = min(p.shape[1] for p in profiles.values())
    rows = np.concatenate([p[:, :width] for p in profiles.values()])
    labels = [f"{t}:{i}" for t, p in profiles.items() for i in range(p.shape[0])]
    return cosine_distances(rows), labels


def mean_between_types(distance: np.ndarray, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """The (types x types) mean of a cross-type distance matrix; the diagonal excludes self-pairs."""
    kinds = [label.split(":")[0] for label in labels]
    types = list(dict.fromkeys(kinds))
    index = {t: np.flatnonzero(np.array(kinds) == t) for t in types}
    means = np.zeros((len(types), len(types)))
    for a, ta in enumerate(types):
        for b, tb in enumerate(types):
            block = distance[np.ix_(index[ta], index[tb])]
            if a == b:
                block = block[~np.eye(block.shape[0], dtype=bool)]
            means[a, b] = np.nanmean(block) if block.size else np.nan
    return means, types

"""The qualitative description of a model's distance distributions, generated from the numbers.

Per projection type: the family the tests prefer, alpha, the tail share, how distance grows with
layer gap (Spearman's rho), and clusters of layers (average-linkage clustering of the distance
matrix, the number of clusters chosen by the silhouette score).
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import spearmanr

from distchar.fits.comparison import SIGNIFICANCE


def gap_trend(gap: np.ndarray, distance: np.ndarray) -> tuple[float, float]:
    """Spearman's rho and its p-value between layer gap and distance (finite pairs only)."""
    keep = np.isfinite(distance)
    if keep.sum() < 3:
        return float("nan"), float("nan")
    rho, p = spearmanr(gap[keep], distance[keep])
    return float(rho), float(p)


def layer_clusters(distance: np.ndarray, layers: np.ndarray, max_clusters: int) -> list[list[int]]:
    """Groups of layers, by average linkage on the distance matrix; one group if nothing separates.

    The number of clusters (2 .. max_clusters) maximises the mean silhouette; if no split has a
    positive silhouette, all layers form one cluster. Layers with undefined distances are left out.
    """
    from sklearn.metrics import silhouette_score

    keep = np.all(np.isfinite(distance), axis=1)
    d, kept = distance[np.ix_(keep, keep)], layers[keep]
    if kept.size < 4:
        return [kept.tolist()]
    tree = linkage(squareform(d, checks=False), method="average")
    best, best_score = np.ones(kept.size, dtype=int), 0.0
    for n in range(2, min(max_clusters, kept.size - 1) + 1):
        labels = fcluster(tree, n, criterion="maxclust")
        if len(set(labels)) < 2:
            continue
        score = silhouette_score(d, labels, metric="precomputed")
        if score > best_score:
            best, best_score = labels, score
    groups = [sorted(kept[best == label].tolist()) for label in np.unique(best)]
    return sorted(groups, key=lambda g: g[0])


def ranges(layers: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``."""
    parts, start = [], None
    for i, layer in enumerate(layers):
        if start is None:
            start = layer
        if i + 1 == len(layers) or layers[i + 1] != layer + 1:
            parts.append(str(start) if start == layer else f"{start}-{layer}")
            start = None
    return ", ".join(parts)


FAMILY_WORDS = {
    "power_law": "a power law",
    "lognormal": "a log-normal",
    "exponential": "an exponential",
    "truncated_power_law": "a truncated power law",
    "stretched_exponential": "a stretched exponential",
}


def describe(row: dict) -> str:
    """One sentence about one type, from a row of the description table. It follows Clauset,
    Shalizi and Newman: with a bootstrap p below 0.1 the power law is rejected at that p, and the
    sentence names the best-supported alternative instead of calling the tail a power law."""
    name = row["type"]
    if row["preferred"] == "insufficient":
        return f"{name}: too few distances for a fit ({row['reason']})."
    trend = "grows" if row["spearman_rho"] > 0.1 else ("shrinks" if row["spearman_rho"] < -0.1 else "barely changes")
    tail = f"above xmin = {row['xmin']:.3g} ({row['tail_share']:.0%} of {row['n']} distances)"
    numbers = f"alpha = {row['alpha']:.2f} +- {row['sigma']:.2f}, KS D = {row['D']:.3f}"
    r, p = row["R_lognormal"], row["p_lognormal"]
    against = f"vs log-normal R = {r:.2f}, p = {p:.2f}"
    if row["preferred"] == "power_law":
        better = "and the power law beats every alternative"
    elif row["preferred"] == "inconclusive":
        better = f"and the tests cannot tell which family describes it best ({against})"
    else:
        better = f"and {FAMILY_WORDS[row['preferred']]} describes it best ({against})"
    gof = row["gof_p"]
    if np.isfinite(gof) and gof < SIGNIFICANCE:
        fit = (f"{name}: {tail} the bootstrap rejects a power law (p = {gof:.2f} < {SIGNIFICANCE:g}; best power-law "
               f"fit {numbers})")  # fmt: skip
    else:
        fit = f"{name}: {tail} the tail fits a power law with {numbers}" + (
            f", bootstrap p = {gof:.2f}" if np.isfinite(gof) else ""
        )
    verdict = better
    sentence = f"{fit}, {verdict}; distance {trend} with layer gap (Spearman rho = {row['spearman_rho']:.2f})"
    clusters = row["clusters"]
    if not clusters:
        return sentence + "."
    grouping = "all layers form one cluster" if ";" not in clusters else f"layers cluster as {clusters}"
    return f"{sentence}; {grouping}."

"""Singular-value profiles S_t (stage 02's ``singular_values.npz``): per projection type t, the
(layers x k) matrix of top-k singular values (descending) and the layer index of each row. Written
by stage 02, read by stages 03 and 05."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distchar.models.architectures import CANONICAL_TYPES

FILE = "singular_values.npz"


def stack_by_type(values: dict[tuple[int, str], np.ndarray]) -> dict[str, np.ndarray]:
    """The npz arrays: per type, S_t (layers x k) and its layer indices."""
    arrays = {}
    for t in CANONICAL_TYPES:
        layers = sorted(layer for layer, typ in values if typ == t)
        if layers:
            arrays[t] = np.stack([values[(layer, t)] for layer in layers])
            arrays[f"{t}_layers"] = np.array(layers)
    return arrays


def save_profiles(arrays: dict[str, np.ndarray], folder: Path) -> None:
    """``stack_by_type``'s arrays into ``folder``/singular_values.npz."""
    np.savez(Path(folder) / FILE, **arrays)


def load_profiles(svd_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """S_t and its layer indices per type, from stage 02's singular_values.npz."""
    with np.load(Path(svd_dir) / FILE) as data:
        profiles = {t: data[t] for t in CANONICAL_TYPES if t in data}
        layers = {t: data[f"{t}_layers"] for t in profiles}
    return profiles, layers

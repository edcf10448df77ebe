"""Where computation runs: ``auto`` is CUDA when present, else the CPU; ``cuda`` without a CUDA
device stops with one sentence naming the params key."""

from __future__ import annotations

import torch

from distchar.errors import DistcharError


def resolve_device(device: str, key: str = "device") -> torch.device:
    """The torch device for a params value ``device`` (``auto``, ``cpu`` or ``cuda``) of ``key``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DistcharError(f"params.yaml: {key} is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'.")
    return torch.device(device)

"""Stage 06's runs on disk: ``<task>/<init>/seed<S>_lr<LR>/`` with ``adapter.safetensors`` (the
trained tensors), ``run.json`` (settings, losses, tokens, seconds) and ``dvclive/`` (loss,
learning rate and gradient norm per step; ``val/loss`` every ``eval_every`` steps). Written by stage 06,
read by stage 07."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from distchar.errors import DistcharError

ADAPTER, RECORD = "adapter.safetensors", "run.json"
CHECKPOINTS = Path("checkpoints")
"""Where stage 06 keeps each run's resumable state, outside DVC: ``<task>/<init>/seed<S>_lr<LR>/``, and
once finished ``done/`` (the run as published, its ``run.json`` with the run's fingerprint) beside
``done.timings.json`` (its seconds, ``distchar.timings``)."""


def run_name(seed: int, learning_rate: float) -> str:
    return f"seed{seed}_lr{learning_rate:g}"


def read_runs(
    train_dir: Path, inits: list[str], seeds: list[int], learning_rates: dict[str, list[float]]
) -> list[dict]:
    """The run.json of every init x seed x that init's learning rates, with ``dir``; each must be there."""
    runs = []
    for name in inits:
        for seed in seeds:
            for learning_rate in learning_rates[name]:
                path = Path(train_dir) / name / run_name(seed, learning_rate) / RECORD
                if not path.exists():
                    raise DistcharError(f"Stage 06 left no run at {path.parent}; rerun it (dvc repro train).")
                runs.append(json.loads(path.read_text()) | {"dir": str(path.parent)})
    return runs


def loss_curve(run_dir: Path, split: str = "train") -> pd.Series | None:
    """Loss by step from the run's dvclive log: ``train`` (every step) or ``val`` (the
    validation-loss curve of ``eval_every``; None when the run logged none)."""
    path = Path(run_dir) / "dvclive" / "plots" / "metrics" / split / "loss.tsv"
    if split == "val" and not path.exists():
        return None
    return pd.read_csv(path, sep="\t").set_index("step")["loss"]

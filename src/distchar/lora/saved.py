"""Saved LoRA inits (stage 05's ``inits/`` folder): written by ``save_inits``, read by stages 06-07.

One safetensors file per (init, seed) under model-independent keys (``init_state``), once for
the inits that do not depend on the seed, and ``index.json`` naming the file of each (init, seed)
and whether the base weight is compensated.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from distchar.errors import DistcharError
from distchar.lora.inits import apply_init, init_state
from distchar.lora.registry import COMPENSATED, DETERMINISTIC
from distchar.models.loading import load_transformers_model
from distchar.models.sources import resolve_source
from distchar.tensor_files import save_tensors

INDEX = "index.json"


def save_inits(source: str, profiles: dict[str, np.ndarray], inits: list[str], seeds: list[int], rank: int,
               lora_alpha: float, folder: Path) -> tuple[list[dict], float]:  # fmt: skip
    """Every init of ``inits`` for every seed on the model ``source``, saved under ``folder`` with
    its index; the index rows and the seconds spent making them (loading excluded)."""
    resolved = resolve_source(source)
    base = load_transformers_model(resolved)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows, started = [], time.perf_counter()
    for name in inits:
        made = None
        for seed in seeds:
            if made is None or name not in DETERMINISTIC:
                with torch.no_grad():
                    model = apply_init(copy.deepcopy(base), name, resolved.architecture, rank=rank,
                                       lora_alpha=lora_alpha, profiles=profiles, seed=seed)  # fmt: skip
                file = f"{name}.safetensors" if name in DETERMINISTIC else f"{name}.seed{seed}.safetensors"
                metadata = {"init": name, "rank": str(rank), "lora_alpha": str(lora_alpha),
                            "compensated": str(name in COMPENSATED).lower(), "source": source}  # fmt: skip
                save_tensors(init_state(model, resolved.architecture), folder / file, metadata=metadata)
                made = file
                del model
            rows.append({"init": name, "seed": seed, "file": made, "compensated": name in COMPENSATED})
    seconds = time.perf_counter() - started
    (folder / INDEX).write_text(json.dumps({"rank": rank, "lora_alpha": lora_alpha, "inits": rows}, indent=1) + "\n")
    return rows, seconds


def load_index(inits_dir: Path, inits: list[str], seeds: list[int]) -> dict[tuple[str, int], dict]:
    """(init, seed) -> the index row of a saved init; every requested pair must be there."""
    path = Path(inits_dir) / INDEX
    if not path.exists():
        raise DistcharError(f"No saved inits at {inits_dir}; run stage 05 (dvc repro generator) first.")
    rows = {(r["init"], r["seed"]): r for r in json.loads(path.read_text())["inits"]}
    for name in inits:
        for seed in seeds:
            if (name, seed) not in rows:
                raise DistcharError(f"Stage 05 saved no init '{name}' for seed {seed} in {inits_dir}; rerun it.")
    return rows

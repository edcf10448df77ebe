"""A params profile's run, published beside the default one: ``results/<profile>/``.

The default profile's results are the pipeline's own outputs (``dvc.lock``, ``results/``). A
bigger profile (``powered`` in docs/pipeline.md, ``gpu`` in docs/gpu.md) runs as a DVC experiment
(``dvc exp run -n NAME -S ...``) in the same workspace; ``python -m distchar.profiles save NAME``
then copies what its tables are made of into ``results/NAME/`` (committed in git, read by
``distchar.findings``) before the workspace goes back to the default run (``git checkout . &&
dvc checkout``):

- ``07_evaluate/<task>/``: stage 07's tables, claims, curves and figures (``KEPT``);
- ``09_robustness/``: study 09's tables and figures, where the workspace has them;
- ``params.yaml``: the params the experiment ran with;
- ``timings.json``: this machine's wall time of each part (stage 05 per model; stage 06 per task,
  with its runs, steps and seconds per step; stage 07 per task; study 09, summed over its
  workers), from the stages' timings files (``distchar.timings``). A part whose timings file times
  another run than the outputs published (DVC restored the stage from its run cache, which leaves the
  timings of whatever ran last) is left untimed (None, named in ``untimed``), never timed wrongly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import pandas as pd
import yaml

from distchar.atomic import atomic_directory
from distchar.errors import DistcharError, command
from distchar.results import ROOT, STAGE_FOLDERS, stage_folder
from distchar.timings import read_timings
from distchar.training.runs import CHECKPOINTS, RECORD

KEPT = {"evaluate": ("summary.csv", "comparisons.csv", "claims.csv", "claims.md", "metrics.json", "runs.csv",
                     "validation_curves.csv", "loss_curves.csv", "loss_curves.png", "differences.png"),
        "robustness": ("accuracy.csv", "comparisons.csv", "masking.csv", "spread.csv", "metrics.json", "table.md",
                       "robustness.png", "spread.png")}  # fmt: skip
"""Stage -> the files of its folder a profile keeps: the tables and figures, not the per-example or
per-image scores (``examples.csv``, ``attacked.csv``), which stay in the experiment."""
PRESETS = {"powered": ("powered-profile", Path("docs/pipeline.md")), "gpu": ("gpu-profile", Path("docs/gpu.md"))}
"""Profile -> the marker and docs page of its documented ``dvc exp run`` block."""
PILOT = "pilot"
"""The subfolder of ``results/<profile>/`` a profile's learning-rate pilot writes (``distchar.pilot``);
``save`` keeps it."""


def documented_preset(marker: str, page: Path) -> list[tuple[str, str]]:
    """The ``-S 'key=value'`` overrides of the ``dvc exp run`` block after ``<!-- marker -->`` in a
    docs page, in order."""
    text = Path(page).read_text()
    if f"<!-- {marker} -->" not in text:
        raise DistcharError(f"{page} has no <!-- {marker} --> block.")
    block = text.split(f"<!-- {marker} -->", 1)[1].split("```", 2)[1]
    overrides = [tuple(o.split("=", 1)) for o in re.findall(r"-S '([^']+)'", block)]
    if not overrides:
        raise DistcharError(f"The block after <!-- {marker} --> in {page} sets no -S 'key=value'.")
    return overrides


def apply_preset(params: dict, overrides: list[tuple[str, str]]) -> dict:
    """``params`` (params.yaml as read) with the overrides applied as ``dvc exp run -S`` applies
    them: each key must already be in params.yaml, its value is read as YAML."""
    params = copy.deepcopy(params)
    for key, value in overrides:
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise DistcharError(f"The preset sets {key}, which params.yaml lacks (dvc exp run -S needs it there).")
        node[leaf] = yaml.safe_load(value)
    return params


def profile_root(profile: str) -> Path:
    return ROOT / profile


def pilot_folder(profile: str, task: str) -> Path:
    """Where a profile's learning-rate pilot (``distchar.pilot``) keeps its tables for ``task``."""
    return profile_root(profile) / PILOT / task


def profile_folder(profile: str, stage: str, key: str | None = None) -> Path:
    """Where ``results/<profile>/`` keeps what ``stage`` (for ``key``) wrote."""
    return ROOT / profile / stage_folder(stage, key).relative_to(ROOT)


def _train_seconds(task: str) -> tuple[list[dict], float | None]:
    """Stage 06's run records for ``task`` in this workspace, and the seconds they took: each from the
    finished checkpoint of the same fingerprint (``distchar.training.runs.CHECKPOINTS``), or None where
    one run's checkpoint is gone or holds another run."""
    records, seconds = [], 0.0
    for path in sorted(stage_folder("train", task).glob(f"*/*/{RECORD}")):
        record = json.loads(path.read_text())
        records.append(record)
        done = CHECKPOINTS / task / path.parent.parent.name / path.parent.name / "done"
        finished = json.loads((done / RECORD).read_text()) if (done / RECORD).is_file() else {}
        same = finished.get("fingerprint") == record.get("fingerprint")
        timed = read_timings(done).get("seconds") if same else None
        seconds = None if seconds is None or timed is None else seconds + timed
    return records, seconds


def part_timings(tasks: list[str]) -> dict:
    """Wall time of each part of the run in this workspace (``distchar.timings``), each only where the
    timings belong to the outputs here; a part DVC restored from its run cache without running (its
    timings file times another run) is None, and named in ``untimed``."""
    parts: dict = {"train": {}, "evaluate": {}, "untimed": []}
    for task in tasks:
        records, seconds = _train_seconds(task)
        steps = sum(r["steps"] for r in records)
        per_step = round(seconds / steps, 4) if steps and seconds else None
        parts["train"][task] = {"runs": len(records), "steps": steps, "seconds_per_step": per_step,
                                "seconds": None if seconds is None else round(seconds, 1)}  # fmt: skip
        metrics = stage_folder("evaluate", task) / "metrics.json"
        timed = read_timings(stage_folder("evaluate", task))
        digest = hashlib.sha256(metrics.read_bytes()).hexdigest()
        parts["evaluate"][task] = timed.get("wall_s") if timed.get("metrics_sha256") == digest else None
        parts["untimed"] += [f"{stage} {task}" for stage, seconds in (("train", seconds), ("evaluate",
                             parts["evaluate"][task])) if seconds is None]  # fmt: skip
    generated = {p.name.removesuffix(".timings.json"): json.loads(p.read_text())
                 for p in sorted(stage_folder("generator").glob("*.timings.json"))}  # fmt: skip
    parts["generator"] = {model: round(sum(v for v in t.values() if isinstance(v, int | float)), 1)
                          for model, t in generated.items()}  # fmt: skip
    robustness = read_timings(stage_folder("robustness"))
    accuracy = stage_folder("robustness") / "accuracy.csv"
    if accuracy.is_file():
        # the study's design (model, loss, seeds) as its tables have it, against the models timed
        design = pd.read_csv(accuracy).groupby(["architecture", "loss"])["seeds"].max()
        timed = pd.DataFrame(robustness.get("models", []), columns=["architecture", "loss", "seed"])
        same = timed.groupby(["architecture", "loss"])["seed"].nunique().sort_index().equals(design.sort_index())
        models = robustness.get("models", []) if same else []
        parts["robustness"] = {"models": int(design.sum()),
                               "seconds": round(sum(m["train_seconds"] + m["attack_seconds"] for m in models), 1)
                               if same else None}  # fmt: skip
        if not same:
            parts["untimed"].append("robustness")
    return parts


def save(profile: str, params_file: Path = Path("params.yaml")) -> Path:
    """Copy the workspace's stage 07 and study 09 results into ``results/<profile>/``, whole or
    not at all; returns that folder."""
    if not profile.isidentifier() or profile in STAGE_FOLDERS.values():
        raise DistcharError(f"A profile name is one word that no stage folder has, not '{profile}'.")
    evaluated = sorted(p.parent.name for p in stage_folder("evaluate").glob("*/metrics.json"))
    if not evaluated:
        raise DistcharError(f"{stage_folder('evaluate')} holds no evaluated task; run the profile first (dvc exp run).")
    with atomic_directory(ROOT / profile) as scratch:
        if (ROOT / profile / PILOT).is_dir():  # the pilot ran before the profile: its tables stay
            shutil.copytree(ROOT / profile / PILOT, scratch / PILOT)
        for stage, keys in (("evaluate", evaluated), ("robustness", [None])):
            for key in keys:
                source = stage_folder(stage, key)
                if not source.is_dir():  # study 09 is optional (a profile of the LoRA study alone)
                    continue
                target = scratch / source.relative_to(ROOT)
                target.mkdir(parents=True)
                for path in sorted(source.iterdir()):
                    if path.is_file() and path.name in KEPT[stage]:
                        shutil.copy2(path, target / path.name)
        shutil.copy2(params_file, scratch / "params.yaml")
        (scratch / "timings.json").write_text(json.dumps(part_timings(evaluated), indent=1) + "\n")
    return ROOT / profile


def main(argv: list[str] | None = None) -> int:
    """``python -m distchar.profiles save NAME`` from the project root."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "save":
        print("usage: python -m distchar.profiles save NAME", file=sys.stderr)
        return 2
    return command(lambda: print(f"saved {save(args[1])}"))


if __name__ == "__main__":
    raise SystemExit(main())

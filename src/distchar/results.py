"""Where every stage writes: the one home of the pipeline's result folders.

Stages, notebooks and the stages that read another stage's output ask ``stage_folder`` for the
path; dvc.yaml spells the same folders in its ``outs`` (a test holds the two together). What is
inside a folder belongs to the module that writes it: stage 02's profiles
(``distchar.spectra.profiles``), stage 05's inits (``distchar.lora.saved``), stage 06's runs
(``distchar.training.runs``), stage 08's questions (``distchar.studies.odds.questions``), and
each stage module for the rest of its own outputs.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path("results")
"""Relative to the project root (stages run there: ``distchar.stage.open_stage``)."""

STAGE_FOLDERS = {
    "extract": "01_extract",
    "svd": "02_svd",
    "distances": "03_distances",
    "powerlaw": "04_powerlaw",
    "fingerprint": "04_fingerprint",
    "generator": "05_generator",
    "train": "06_train",
    "evaluate": "07_evaluate",
    "odds_questions": "08_odds_questions",
    "odds": "08_odds",
    "robustness": "09_robustness",
    "nsga2": "10_nsga2",
    "report": "report",
}
"""dvc.yaml stage -> its folder under ``results/``; stages run per model or per task (``foreach``)
write one subfolder per key."""


def stage_folder(stage: str, key: str | None = None) -> Path:
    """The folder stage ``stage`` writes (for ``key``: a model or a task, where the stage runs per key)."""
    folder = ROOT / STAGE_FOLDERS[stage]
    return folder / key if key else folder


def inits_folder(model: str) -> Path:
    """Stage 05's saved LoRA inits of ``model`` (``distchar.lora.saved``)."""
    return stage_folder("generator", model) / "inits"

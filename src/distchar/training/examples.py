"""Training examples: tokenised ids with their labels, and the task data they are read from.

An ``Example`` holds token ids and either token labels (causal LM: -100 where no loss is taken)
or a class (classification). Each task of ``distchar.tasks`` builds its examples; this module holds
what they share. Free of torch: ``distchar.config`` reads the task registry, which imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distchar.errors import DistcharError

SPLITS = ("train", "validation", "test")
IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int] | int  # token labels (causal LM) or a class (classification)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise DistcharError(
            f"Task data {path} does not exist; run the stage that writes it (dvc repro odds_questions)."
        )
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise DistcharError(f"Task data {path} has no rows.")
    return rows


def spread(items: list, limit: int) -> list:
    """``limit`` items evenly spread over the list (all when ``limit`` is 0 or larger). Data files
    are often ordered (the tweets by label, the questions by family), so the first ``limit`` would
    hold one class or a few families."""
    if not limit or limit >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]

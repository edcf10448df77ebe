"""Evaluation profiles: which cells of the benchmark grid a run asks.

A cell is (source, task, condition, shot kind, shots). ``smoke`` is for tests (seconds),
``default`` is what ``make run`` evaluates on a laptop CPU (zero-shot and 3 within-distribution
shots), ``full`` is the paper's whole grid (every shot kind at 1, 3, 5, 7, 9 shots; hours on a CPU).
"""

from __future__ import annotations

import pandas as pd

from distchar.errors import DistcharError

_REAL = ("fitted_family", "real_world_context", "normal_approximation")

PROFILES: dict[str, dict] = {
    "smoke": {
        "idealized": {"percentiles": [("none", 0), ("within", 3)], "probabilities": [("none", 0)],
                      "sampling": [("none", 0)]},
        "groups": ["normal", "exponential", "poisson"],
        "real_world": {"percentiles": ["normal_approximation"]},
        "variables": ["Average Step Count"],
    },
    "default": {
        "idealized": {"percentiles": [("none", 0), ("within", 3)], "probabilities": [("none", 0)],
                      "sampling": [("none", 0)]},
        "real_world": {"percentiles": list(_REAL)},
    },
    "full": {
        "idealized": {task: "all" for task in ("percentiles", "probabilities", "sampling")},
        "real_world": {"percentiles": list(_REAL), "probabilities": list(_REAL)},
    },
}  # fmt: skip


def select(questions: pd.DataFrame, profile: str) -> pd.DataFrame:
    """The benchmark questions a profile asks, in benchmark order."""
    if profile not in PROFILES:
        raise DistcharError(f"Unknown evaluation profile '{profile}'; known: {', '.join(PROFILES)}.")
    spec = PROFILES[profile]
    keep = pd.Series(False, index=questions.index)
    ideal = questions["source"] == "idealized"
    for task, cells in spec["idealized"].items():
        in_task = ideal & (questions["task"] == task)
        if cells == "all":
            keep |= in_task
        else:
            for kind, shots in cells:
                keep |= in_task & (questions["shot_kind"] == kind) & (questions["shots"] == shots)
    real = questions["source"] == "real_world"
    for task, conditions in spec["real_world"].items():
        keep |= real & (questions["task"] == task) & questions["condition"].isin(conditions)
    if "groups" in spec:
        keep &= ~ideal | questions["group"].isin(spec["groups"])
    if "variables" in spec:
        keep &= ~real | questions["group"].isin(spec["variables"])
    return questions[keep]

"""Reference floors: what trivial and exact strategies score, through the same scorer as models.

- ``always_50``: every percentile answered 50 (the paper: 27.09 on the idealized set).
- ``best_constant_probability``: the one constant probability (grid of 0.001) with the lowest error
  on the scored questions, an oracle constant (the paper: 25.3). The search ranks every constant
  of the grid as the scorer would (``best_constant``); the chosen one is then scored by it.
- ``normal_approximation``: an exact calculator that assumes a normal with the shown mean and SD
  (idealized: the reference sample's; the paper: 2.61 / 5.43 / 3.31 percentile MAE for health /
  finance / climate); for sampling it draws N normal samples.
- ``fitted_family``: an exact calculator with the true family (idealized) or the released fitted
  family (real-world); for sampling, N draws of it: its KS is the sampling noise floor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from distchar.studies.odds.distributions import DEFAULT_SEED, REFERENCE_SIZE, RealWorldVariable
from distchar.studies.odds.scoring import IDEALIZED, SETTING, group_errors, reference_of, score_rows, summarise

STRATEGIES = ("always_50", "best_constant_probability", "normal_approximation", "fitted_family")


def _distribution(row, strategy: str, real_world: dict[str, RealWorldVariable], seed: int, size: int):
    if row["source"] == "idealized":
        if strategy == "fitted_family":
            return IDEALIZED[row["group"]].scipy()
        ref = reference_of(row["group"], seed, size)
        return stats.norm(ref.mean, ref.sd)
    var = real_world[row["group"]]
    return var.fitted() if strategy == "fitted_family" else stats.norm(var.shown_mean, var.shown_std)


def answers_of(strategy: str, questions: pd.DataFrame, real_world: dict[str, RealWorldVariable],
               constant: float = 0.5, seed: int = DEFAULT_SEED, size: int = REFERENCE_SIZE) -> list[str]:  # fmt: skip
    """The raw answer text a strategy gives to each question (sampling rows: one draw each)."""
    rng = np.random.default_rng(seed)
    out = []
    for row in questions.to_dict("records"):
        if strategy == "always_50":
            value = 50.0 if row["task"] == "percentiles" else None
        elif strategy == "best_constant_probability":
            value = constant if row["task"] == "probabilities" else None
        else:
            dist = _distribution(row, strategy, real_world, seed, size)
            if row["task"] == "percentiles":  # mid-rank, as the ground truth (matters for discrete families)
                value = 50 * float(dist.cdf(row["value"]) + dist.cdf(row["value"] - 1e-9))
            elif row["task"] == "probabilities":
                value = float(dist.cdf(row["high"]) - dist.cdf(row["low"] - 1e-9))
            else:
                value = float(dist.rvs(random_state=rng))
        out.append("" if value is None else f"<answer>{value:.6g}</answer>")
    return out


def constant_scores(part: pd.DataFrame, by: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every constant probability of the 0.001 grid and its score on the probability questions
    ``part``: what ``summarise`` reports for that constant answer, averaged over its rows (the mean
    over settings of the mean over groups of each group's mean absolute error, percentage points).

    A constant answer parses back to itself on every question, so the errors are computed on the
    truths directly, all candidates at once, instead of through the parser one constant at a time."""
    grid = np.round(np.arange(0, 1.0005, 0.001), 3)
    errors = np.abs(grid[:, None] - part["truth"].to_numpy(float)[None, :]) * 100.0  # (candidates, questions)
    group = part.groupby([*SETTING, "domain", "group"], sort=False, dropna=False).ngroup().to_numpy()
    setting = part.groupby([*SETTING, *(by or [])], sort=False, dropna=False).ngroup().to_numpy()
    group_means = np.zeros((len(grid), group.max() + 1))
    np.add.at(group_means.T, group, errors.T)
    group_means /= np.bincount(group)
    setting_of_group = np.zeros(group.max() + 1, dtype=int)
    setting_of_group[group] = setting
    setting_means = np.zeros((len(grid), setting.max() + 1))
    np.add.at(setting_means.T, setting_of_group, group_means.T)
    setting_means /= np.bincount(setting_of_group)
    return grid, setting_means.mean(axis=1)


def best_constant(part: pd.DataFrame, by: list[str] | None = None) -> float:
    """The constant of ``constant_scores`` with the lowest score; ties (equal scores to 1e-9, as on
    the flat bottom of a sum of absolute errors) go to the smallest constant."""
    grid, scores = constant_scores(part, by)
    return float(grid[np.argmin(np.round(scores, 9))])


def floors(questions: pd.DataFrame, real_world: dict[str, RealWorldVariable], by: list[str] | None = None,
           seed: int = DEFAULT_SEED, size: int = REFERENCE_SIZE) -> pd.DataFrame:  # fmt: skip
    """Every strategy's summary on ``questions`` (sampling rows already repeated N times), stacked;
    ``by``: extra summary columns (e.g. domain). Give one source at a time: the best constant is
    chosen on the questions given."""

    def _scored(answers: list[str], part: pd.DataFrame) -> pd.DataFrame:
        return summarise(group_errors(score_rows(part.assign(answer=answers), seed, size), seed, size), by)

    tables = []
    for strategy in STRATEGIES:
        tasks = {"always_50": ["percentiles"], "best_constant_probability": ["probabilities"]}.get(
            strategy, ["percentiles", "probabilities", "sampling"]
        )
        part = questions[questions["task"].isin(tasks)].reset_index(drop=True)
        if part.empty:
            continue
        if strategy == "best_constant_probability":
            constant = best_constant(part, by)
            table = _scored(answers_of(strategy, part, real_world, constant), part)
            table["constant"] = constant
        else:
            table = _scored(answers_of(strategy, part, real_world, seed=seed, size=size), part)
        tables.append(table.assign(strategy=strategy))
    return pd.concat(tables, ignore_index=True)

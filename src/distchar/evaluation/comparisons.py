"""Comparing LoRA inits fairly: tuned learning rates, seed intervals, paired tests, the claim table.

The rules (docs/research-notes.md section 1, after Lee et al. 2026 and Li et al. 2025):

- **Tuned learning rate per init.** Each init gets the learning rate with the lowest validation
  loss averaged over seeds (ties: the smaller rate). The test split never picks anything.
- **Seeds.** Every statistic is over the seeds of ``lora.seeds``; a run of seed s of every init
  shares the base model, the data order and the classifier head's start, so inits are compared
  *paired* by seed and by test example.
- **Intervals.** Per init, the mean over seeds with a Student-t interval
  (``distchar.statistics.seed_interval``).
- **Paired comparison** (``distchar.statistics.paired_comparison``): per seed, the mean
  difference of the per-example scores (oriented so that positive favours the first init); the
  exact sign-flip test over seeds, a t interval over seeds, the effect size d_z over seeds.
- **Claims** (``claim_table``): "does A beat B?" is *yes* when the Holm-adjusted p is below
  1 - confidence and A is better, *no* when it is below and B is better, *underpowered (n seeds)*
  when Holm over the baselines cannot get below 1 - confidence with n seeds whatever the data
  (2 / 2^n times the number of baselines), otherwise *inconclusive*. Beside each verdict,
  ``detectable``: the smallest true difference the run had 80% power to detect at level
  (1 - confidence) / baselines (Holm's first step), from the observed spread of its per-seed
  differences (``distchar.statistics.detectable_effect``).
"""

from __future__ import annotations

import pandas as pd

from distchar.errors import DistcharError
from distchar.statistics import attainable, detectable_effect, holm, verdict


def best_learning_rates(runs: pd.DataFrame) -> dict[str, float]:
    """init -> the learning rate with the lowest validation loss averaged over seeds.

    ``runs`` has the columns init, seed, learning_rate, validation_loss."""
    if runs["validation_loss"].isna().any():
        bad = runs[runs["validation_loss"].isna()].iloc[0]
        raise DistcharError(
            f"Run {bad['init']} seed {bad['seed']} lr {bad['learning_rate']:g} has no finite validation loss "
            "(it diverged); lower training.learning_rates."
        )
    means = runs.groupby(["init", "learning_rate"])["validation_loss"].mean().reset_index()
    means = means.sort_values(["init", "validation_loss", "learning_rate"])
    return {init: float(part["learning_rate"].iloc[0]) for init, part in means.groupby("init", sort=False)}


def claim_table(
    comparisons: pd.DataFrame, claim_init: str, baselines: list[str], confidence: float = 0.95
) -> pd.DataFrame:
    """The rows of ``comparisons`` (columns a, b, difference, p, p_min, seeds, ...) where a is
    ``claim_init`` and b a baseline, with Holm-adjusted p over those rows and the verdict
    (``underpowered (n seeds)`` when Holm over these rows cannot reach 1 - confidence)."""
    rows = comparisons[(comparisons["a"] == claim_init) & comparisons["b"].isin(baselines)].copy()
    if rows.empty:
        return rows.assign(p_holm=[], claim=[])
    rows["p_holm"] = holm(rows["p"].to_numpy())
    reachable = [attainable(p_min, len(rows), confidence) for p_min in rows["p_min"]]
    columns = zip(rows["difference"], rows["p_holm"], rows["seeds"], reachable, strict=True)
    rows["claim"] = [verdict(d, p, confidence, seeds=int(n), reachable=r) for d, p, n, r in columns]
    alpha = (1 - confidence) / len(rows)  # Holm's first step: the level the strongest claim must pass
    spread = rows["seed_sd"] if "seed_sd" in rows else pd.Series(float("nan"), index=rows.index)  # older tables
    rows["detectable"] = [detectable_effect(sd, int(n), alpha) for sd, n in zip(spread, rows["seeds"], strict=True)]
    return rows.reset_index(drop=True)

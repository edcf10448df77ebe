"""The statistics of the studies and stage 07's claim table on synthetic results whose differences are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distchar.errors import DistcharError
from distchar.evaluation.comparisons import best_learning_rates, claim_table
from distchar.statistics import holm, paired_comparison, seed_interval, verdict


def test_best_learning_rate_is_chosen_on_mean_validation_loss_over_seeds():
    runs = pd.DataFrame(
        {
            "init": ["a"] * 4 + ["b"] * 4,
            "seed": [0, 1] * 4,
            "learning_rate": [1e-4, 1e-4, 1e-3, 1e-3] * 2,
            # a: lr 1e-3 wins on the mean (0.9) though seed 0 alone prefers 1e-4; b: a tie -> the smaller rate
            "validation_loss": [1.0, 1.2, 1.1, 0.7, 2.0, 2.0, 2.0, 2.0],
        }
    )
    assert best_learning_rates(runs) == {"a": 1e-3, "b": 1e-4}
    with pytest.raises(DistcharError, match="has no finite validation loss .*diverged"):
        best_learning_rates(runs.assign(validation_loss=[np.nan] + [1.0] * 7))


def test_seed_interval_is_the_student_t_interval():
    mean, _, high = seed_interval([1.0, 2.0, 3.0], 0.95)
    assert mean == 2.0
    assert high - mean == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    assert np.isnan(seed_interval([1.0])[1])


def test_a_known_difference_is_found_and_its_interval_covers_it():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, size=(3, 400))  # per-example difficulty shared by both inits (pairing)
    a = base + 0.3 + rng.normal(0, 0.3, size=base.shape)
    b = base + rng.normal(0, 0.3, size=base.shape)
    comparison = paired_comparison(a, b, reps=2000, seed=0)
    assert comparison.low < 0.3 < comparison.high
    assert comparison.low > 0.2 and comparison.p_bootstrap < 0.01 and comparison.p_wilcoxon < 1e-6
    assert comparison.effect_size == pytest.approx(0.3 / (0.3 * np.sqrt(2 / 3)), rel=0.2)  # sd of a seed-mean diff
    unpaired = paired_comparison(b + 0.0, base + rng.normal(0, 0.3, size=base.shape), reps=2000, seed=0)
    assert unpaired.low < 0 < unpaired.high and unpaired.p_bootstrap > 0.05  # no difference: not significant


def test_pairing_matters_an_unpaired_view_would_miss_the_difference():
    rng = np.random.default_rng(2)
    difficulty = rng.normal(0, 5, size=(2, 300))  # examples vary far more than the effect
    a, b = difficulty + 0.2, difficulty.copy()
    b += rng.normal(0, 0.1, size=b.shape)
    comparison = paired_comparison(a, b, reps=1000)
    assert comparison.low > 0  # the paired interval excludes 0
    pooled_sd = np.sqrt((a.var() + b.var()) / 2)
    assert 0.2 / pooled_sd < 0.1  # an unpaired effect size would be tiny


def test_holm_and_verdicts():
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert verdict(0.1, 0.01) == "yes" and verdict(-0.1, 0.01) == "no" and verdict(0.1, 0.2) == "inconclusive"
    comparisons = pd.DataFrame(
        {
            "a": ["r", "r", "r", "x"],
            "b": ["d", "p", "m", "d"],
            "difference": [0.5, -0.4, 0.01, 9.0],
            "p_bootstrap": [0.001, 0.002, 0.6, 0.0],
        }
    )
    claims = claim_table(comparisons, "r", ["d", "p", "m"])
    assert claims["claim"].tolist() == ["yes", "no", "inconclusive"]
    assert claims["p_holm"].tolist() == pytest.approx([0.003, 0.004, 0.6])


def test_mismatched_arrays_are_one_sentence():
    with pytest.raises(DistcharError, match="needs two .* arrays of one shape"):
        paired_comparison(np.zeros((2, 3)), np.zeros((2, 4)))

"""The learning-rate pilot's picks: lowest mean validation loss, bracketed or widened by factors of 2."""

from __future__ import annotations

import pandas as pd
import pytest

from distchar.errors import DistcharError
from distchar.pilot import next_candidate, parse_rates, pick_rates


def test_a_pick_is_bracketed_only_when_both_neighbours_did_worse_and_an_edge_pick_widens_the_candidates():
    runs = pd.DataFrame({"init": ["a"] * 6 + ["b"] * 2, "seed": [0, 1] * 4,
                         "learning_rate": [1e-3, 1e-3, 2e-3, 2e-3, 4e-3, 4e-3, 1e-3, 1e-3],
                         "validation_loss": [0.5, 0.5, 0.3, 0.4, 0.9, 0.8, 0.2, 0.2]})  # fmt: skip
    picks = pick_rates(runs)
    assert picks["a"] == {"candidates": [1e-3, 2e-3, 4e-3], "learning_rate": 2e-3, "validation_loss": 0.35,
                          "bracketed": True}  # fmt: skip
    assert not picks["b"]["bracketed"]
    assert next_candidate([1e-3, 2e-3, 4e-3], {1e-3: 0.5, 2e-3: 0.35, 4e-3: 0.85}) is None
    assert next_candidate([1e-3, 2e-3], {1e-3: 0.3, 2e-3: 0.4}) == 5e-4  # the lowest won: go lower
    assert next_candidate([1e-3, 2e-3], {1e-3: 0.5, 2e-3: 0.4}) == 4e-3
    assert next_candidate([1e-3, 2e-3, 4e-3], {1e-3: 0.3, 2e-3: 0.3, 4e-3: 0.9}) == 5e-4  # a tie: not bracketed
    assert next_candidate([1e-3, 2e-3, 4e-3], {1e-3: 0.5, 2e-3: 0.3, 4e-3: 0.3}) is None  # inner tie: nothing beyond


@pytest.mark.parametrize("item", ["default", "default=", "default=x", "default=0", "default=1e-3,2"])
def test_bad_candidate_rates_are_one_sentence(item):
    with pytest.raises(DistcharError, match=f"--rates takes INIT=R1,R2,... with rates in \\(0, 1\\], not '{item}'"):
        parse_rates([item])
    assert parse_rates(["a=1e-3,2e-3", "b=0.5"]) == {"a": [1e-3, 2e-3], "b": [0.5]}

"""The improved crowding distance (Chu and Yu 2018) against hand-computed values, and inside pymoo."""

import numpy as np
import pytest

from distchar.crowding import crowding_function, improved_crowding_distance
from distchar.errors import DistcharError

INF = np.inf


def test_two_objectives_by_hand():
    F = np.array([[0, 4], [1, 2], [2, 1], [4, 0]], dtype=float)
    # f1 sorted 0,1,2,4 (range 4): point 1 -> (2-1)/4, point 2 -> (4-2)/4; f2 sorted 0,1,2,4: point 2 ->
    # (2-1)/4, point 1 -> (4-2)/4; mean over the two objectives
    assert improved_crowding_distance(F).tolist() == [INF, 0.375, 0.375, INF]


def test_differs_from_cd_by_counting_only_the_gap_to_the_next_point():
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance

    F = np.array([[0, 1], [0.2, 0.2], [0.5, 0.45], [1, 0]])
    # f1 gaps to the next: p1 .3, p2 .5; f2 sorted p3, p1, p2, p0: p1 .25, p2 .55
    assert improved_crowding_distance(F)[1:3] == pytest.approx([(0.3 + 0.25) / 2, (0.5 + 0.55) / 2])
    # cd counts both neighbours: p1 (.5 - 0) + (.45 - 0), p2 (1 - .2) + (1 - .2)
    assert calc_crowding_distance(F)[1:3] == pytest.approx([(0.5 + 0.45) / 2, (0.8 + 0.8) / 2])


def test_three_objectives_by_hand():
    F = np.array([[0, 2, 1], [1, 1, 0], [2, 0, 2], [0.5, 1.5, 0.5]])
    # f1 sorted: p0 0, p3 .5, p1 1, p2 2 (range 2): p3 -> .25, p1 -> .5, ends p0, p2 infinite
    # f2 sorted: p2 0, p1 1, p3 1.5, p0 2 (range 2): p1 -> .25, p3 -> .25, ends p2, p0 infinite
    # f3 sorted: p1 0, p3 .5, p0 1, p2 2 (range 2): p3 -> .25, p0 -> .5, ends p1, p2 infinite
    d = improved_crowding_distance(F)
    assert d[3] == pytest.approx((0.25 + 0.25 + 0.25) / 3)
    assert np.isinf(d[[0, 1, 2]]).all()


def test_duplicates_keep_one_distance_and_zero_range_objectives_add_nothing():
    F = np.array([[0, 5], [1, 5], [1, 5], [2, 5], [3, 5]], dtype=float)
    d = improved_crowding_distance(F)
    # f2 has no range: it adds 0 and makes no point infinite; f1 range 3: gaps to the next point
    assert d[0] == INF and d[4] == INF
    assert (d[1], d[2]) == (pytest.approx((2 - 1) / 3 / 2), 0.0)  # the first of the pair keeps it
    assert d[3] == pytest.approx((3 - 2) / 3 / 2)
    assert improved_crowding_distance(np.ones((4, 2))).tolist() == [INF, 0.0, 0.0, 0.0]  # one distinct point


def test_small_fronts_are_all_infinite():
    assert improved_crowding_distance(np.array([[1.0, 2.0], [2.0, 1.0]])).tolist() == [INF, INF]


def test_pymoo_runs_nsga2_with_it():
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.operators.survival.rank_and_crowding import RankAndCrowding
    from pymoo.optimize import minimize
    from pymoo.problems import get_problem

    problem = get_problem("zdt1")
    front = problem.pareto_front()
    gaps = {}
    for name in ("cd", "improved"):
        algorithm = NSGA2(pop_size=40, survival=RankAndCrowding(crowding_func=crowding_function(name)))
        result = minimize(problem, algorithm, ("n_gen", 150), seed=1)
        gaps[name] = np.min(np.linalg.norm(result.F[:, None] - front[None], axis=2), axis=1).mean()
    assert gaps["improved"] < 0.05 and gaps["cd"] < 0.05  # both converge to the true front
    assert crowding_function("cd") == "cd"
    with pytest.raises(DistcharError, match="Unknown crowding function 'fancy'"):
        crowding_function("fancy")

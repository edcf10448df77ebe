"""Study 10: the nine test problems and their true fronts, the four metrics, the runner and its tests."""

import numpy as np
import pandas as pd
import pytest

from distchar.config import Nsga2Params
from distchar.errors import DistcharError
from distchar.stages.nsga2 import run_study
from distchar.studies.nsga2.metrics import FrontQuality, delta
from distchar.studies.nsga2.problems import (
    PROBLEMS,
    get_problem,
    non_dominated,
    true_front,
    uniform_front,
    write_computed_fronts,
)
from distchar.studies.nsga2.study import a12, compare_to_cd, final_table, run_all, run_nsga2


def test_our_problems_at_known_points():
    assert get_problem("sch").evaluate(np.array([[1.0], [0.0]])).tolist() == [[1.0, 1.0], [0.0, 4.0]]
    fon = get_problem("fon").evaluate(np.zeros((1, 3)))[0]
    assert fon == pytest.approx([1 - np.exp(-1), 1 - np.exp(-1)])
    c = 1 / np.sqrt(3)  # the ends of FON's Pareto set reach f1 = 0 and f2 = 0
    assert get_problem("fon").evaluate(np.full((1, 3), c))[0, 0] == pytest.approx(0, abs=1e-12)
    # POL at its Pareto-optimal x = (1, 2) has f1 = 1 (the B terms equal the A terms)
    assert get_problem("pol").evaluate(np.array([[1.0, 2.0]]))[0] == pytest.approx([1.0, 4**2 + 3**2])
    with pytest.raises(DistcharError, match="Unknown test problem 'dtlz2'; choose one of sch, fon"):
        get_problem("dtlz2")


@pytest.mark.parametrize("name", PROBLEMS)
def test_true_fronts_are_sorted_and_non_dominated(name):
    front = true_front(name)
    assert front.ndim == 2 and front.shape[1] == 2 and len(front) > 100
    assert np.all(np.diff(front[:, 0]) > 0) and np.all(np.diff(front[:, 1]) < 0)
    assert not front.flags.writeable


@pytest.mark.parametrize("name", ["pol", "kur"])
def test_no_random_point_beats_a_computed_front(name):
    """POL and KUR have computed fronts: 200,000 random decision vectors dominate none of its points
    by more than 0.5% of the front's range in both objectives."""
    problem, front = get_problem(name), true_front(name)
    X = np.random.default_rng(0).uniform(problem.xl, problem.xu, size=(200_000, problem.n_var))
    F = non_dominated(problem.evaluate(X))
    margin = 0.005 * np.ptp(front, axis=0)
    beaten = [(F <= point - margin).all(axis=1).any() for point in front]
    assert not any(beaten)


def test_a_coarse_recomputation_beats_no_point_of_the_shipped_fronts(tmp_path):
    """What ``--write-fronts`` computes, here on a coarse grid with one short run, lies along the
    shipped fronts (every point within 5% of their range) and is never better (beyond 0.5%)."""
    write_computed_fronts(tmp_path / "fronts.npz", {"pol": 41, "kur": 15}, runs=1, population=40, generations=30)
    with np.load(tmp_path / "fronts.npz") as coarse:
        for name in ("pol", "kur"):
            front, F = true_front(name), coarse[name]
            assert np.array_equal(F, non_dominated(F))
            margin = 0.005 * np.ptp(front, axis=0)
            assert not any((F <= point - margin).all(axis=1).any() for point in front)
            nearest = np.linalg.norm((F[:, None] - front[None]) / np.ptp(front, axis=0), axis=2).min(axis=1)
            assert nearest.max() < 0.05


def test_kur_front_spans_the_known_range():
    front = true_front("kur")  # Deb et al. (2002), Fig. 7: f1 from -20 to about -14.4, f2 from about -11.6 to 0
    assert front[0, 0] == pytest.approx(-20, abs=1e-3) and front[-1, 0] == pytest.approx(-14.44, abs=0.02)
    assert front[:, 1].min() == pytest.approx(-11.63, abs=0.02) and front[:, 1].max() == pytest.approx(0, abs=1e-3)


def test_uniform_front_is_even_on_a_line_and_skips_the_gap_of_a_broken_front():
    line = np.column_stack([np.linspace(0, 1, 1001), np.linspace(1, 0, 1001)])
    points = uniform_front(line, 11)
    assert points[:, 0] == pytest.approx(np.linspace(0, 1, 11))
    broken = np.concatenate([line[:301], line[700:]])  # a gap from x = 0.3 to 0.7
    points = uniform_front(broken, 61)
    assert not np.any((points[:, 0] > 0.3 + 1e-9) & (points[:, 0] < 0.7 - 1e-9))
    assert len(points) == 61 and points[0, 0] == 0 and points[-1, 0] == pytest.approx(1)


def test_delta_by_hand():
    front = np.column_stack([np.linspace(0, 1, 101), np.linspace(1, 0, 101)])
    even = front[::25]  # five evenly spaced points with both extremes: Delta = 0
    assert delta(even, front) == pytest.approx(0)
    uneven = np.array([[0.1, 0.9], [0.2, 0.8], [0.5, 0.5], [1.0, 0.0]])
    # d_f = |(0, 1) - (0.1, 0.9)| = 0.1 sqrt2, d_l = 0; gaps 0.1, 0.3, 0.5 (x sqrt2), mean 0.3 sqrt2
    s = np.sqrt(2)
    expected = (0.1 * s + 0 + (0.2 + 0 + 0.2) * s) / (0.1 * s + 0 + 3 * 0.3 * s)
    assert delta(uneven, front) == pytest.approx(expected)
    assert delta(np.array([[0.5, 0.5]]), front) == 1.0  # one point


def test_upsilon_and_igd_equal_pymoos_gd_and_igd_and_hv_is_relative_to_the_true_front():
    from pymoo.indicators.gd import GD
    from pymoo.indicators.igd import IGD

    quality = FrontQuality("zdt1")
    rng = np.random.default_rng(1)  # points on or above the front (below it nothing is attainable)
    F = true_front("zdt1")[rng.choice(5000, 60)] + rng.uniform(0, 0.2, size=(60, 2))
    scores = quality(F)
    points = non_dominated(F)
    assert scores["upsilon"] == pytest.approx(GD(quality.reference)(points), rel=1e-12)
    assert scores["igd"] == pytest.approx(IGD(quality.reference)(points), rel=1e-12)
    assert quality(true_front("zdt1"))["hv"] == pytest.approx(1.0)
    assert quality(true_front("zdt1"))["upsilon"] < 1e-3
    assert 0 < scores["hv"] < 1
    assert quality(np.array([[5.0, 5.0]]))["hv"] == 0.0  # beyond the reference point


def test_golden_metrics_of_one_fixed_run():
    """Recorded from this code with pymoo 0.6.2 (requirements.lock); a change in the metrics, the
    crowding function or pymoo's operators moves them."""
    curve, final = run_nsga2("zdt1", "improved", seed=7, population=40, generations=80)
    assert list(curve["generation"]) == list(range(1, 81)) and len(final) <= 40
    last = curve.iloc[-1]
    golden = [0.1361364708982607, 0.5312112271586082, 0.12488741922178143, 0.7609626464842982]
    assert [last[m] for m in ("upsilon", "delta", "igd", "hv")] == pytest.approx(golden, rel=1e-6)


def test_zdt1_median_igd_after_250_generations_is_below_0006():
    curves, _, _ = run_all(["zdt1"], ["cd", "improved"], range(5), population=100, generations=250, jobs=2)
    finals = final_table(curves)
    medians = finals.groupby("variant")["igd"].median()
    assert medians["improved"] < 0.006 and medians["cd"] < 0.006


def synthetic_finals(shift: float, seeds: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for problem in ("zdt1", "zdt2"):
        for variant, offset in (("cd", 0.0), ("improved", shift)):
            for seed in range(seeds):
                igd = 0.01 + offset + 0.001 * rng.standard_normal()
                rows.append({"problem": problem, "variant": variant, "seed": seed, "igd": igd, "hv": 1 - igd})
    return pd.DataFrame(rows)


def test_comparisons_find_a_known_difference_and_respect_the_direction_of_each_metric():
    table = compare_to_cd(synthetic_finals(shift=-0.005))  # improved: IGD lower by 5 sd, HV higher
    assert set(table["verdict"]) == {"better"} and (table["a12_better"] == 1).all()
    assert (table["p_holm"] >= table["p"]).all() and (table["p_holm"] < 0.001).all()
    worse = compare_to_cd(synthetic_finals(shift=+0.005))
    assert set(worse["verdict"]) == {"worse"} and (worse["a12_better"] == 0).all()
    same = compare_to_cd(synthetic_finals(shift=0.0))
    assert set(same["verdict"]) == {"inconclusive"}
    assert a12([1, 2], [1, 2]) == 0.5 and a12([3, 4], [1, 2]) == 1.0


def test_the_stage_writes_every_output(tmp_path):
    settings = Nsga2Params(problems=["sch", "zdt3"], variants=["cd", "improved", "pcd"], seeds=3, population=12,
                           generations=5, snapshots=[2], jobs=1)  # fmt: skip
    metrics = run_study(settings, tmp_path / "out")
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == {"curves.csv", "finals.csv", "summary.csv", "comparisons.csv", "table.md", "final_fronts.npz",
                       "fronts.png", "convergence.png", "metrics.json"}  # fmt: skip
    assert len(pd.read_csv(tmp_path / "out" / "curves.csv")) == 2 * 3 * 3 * 5
    comparisons = pd.read_csv(tmp_path / "out" / "comparisons.csv")
    assert len(comparisons) == 2 * 2 * 5  # problems x variants other than cd x (four metrics + IGD at generation 2)
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| ZDT3 |" in table and "**igd_g2**" in table and "| pcd |" in table
    assert set(metrics["problems_vs_cd"]) == {"improved", "pcd"}
    assert set(metrics["median_igd"]["cd"]) == {"sch", "zdt3"}
    assert set(metrics["problems_vs_cd"]["pcd"]) == {"upsilon", "delta", "igd", "hv"}

"""The Gaussian-process + Pareto generator, its fidelity measures and its NSGA-II tuning."""

import numpy as np
import pytest

from distchar.generator.fidelity import FAILED_FIT_GAP, fidelity, reference, upper_distances
from distchar.generator.gp_pareto import GeneratorParams, _kernel_factor, estimate, match_scale, sample, sample_latent
from distchar.generator.tuning import knee_index, tune

KNOWN = GeneratorParams(alpha=2.5, xmin=1.0, layer_length=4.0, index_length=3.0, nugget=0.1)


def test_samples_reproduce_a_known_alpha_and_correlation_lengths():
    estimates = [estimate(sample(KNOWN, 400, 64, np.random.default_rng(seed), sort=False)) for seed in range(4)]
    assert np.mean([e.alpha for e in estimates]) == pytest.approx(2.5, abs=0.1)
    assert np.mean([e.layer_length for e in estimates]) == pytest.approx(4.0, rel=0.15)
    assert np.mean([e.index_length for e in estimates]) == pytest.approx(3.0, rel=0.15)
    assert all(e.xmin >= 1.0 for e in estimates)


def test_a_shorter_correlation_length_is_told_apart():
    short = GeneratorParams(alpha=2.5, xmin=1.0, layer_length=1.5, index_length=3.0, nugget=0.1)
    s = estimate(sample(short, 400, 64, np.random.default_rng(0), sort=False))
    assert s.layer_length == pytest.approx(1.5, rel=0.15)


def test_latent_covariance_is_the_kronecker_product_of_the_two_kernels():
    params = GeneratorParams(alpha=2.0, xmin=1.0, layer_length=1.5, index_length=0.8, nugget=0.2)
    rng = np.random.default_rng(1)
    draws = np.stack([sample_latent(params, 4, 3, rng).ravel() for _ in range(20000)])
    k_layer = _kernel_factor(4, 1.5) @ _kernel_factor(4, 1.5).T
    k_index = _kernel_factor(3, 0.8) @ _kernel_factor(3, 0.8).T
    expected = 0.8 * np.kron(k_layer, k_index) + 0.2 * np.eye(12)
    assert np.abs(np.cov(draws.T) - expected).max() < 0.04


def test_rows_are_sorted_positive_and_above_xmin():
    S = sample(KNOWN, 80, 64, np.random.default_rng(2))
    assert S.shape == (80, 64)
    assert np.all(np.diff(S, axis=1) <= 0) and S.min() >= 1.0


def test_match_scale_keeps_the_shape_and_takes_the_real_size():
    generated = np.array([[4.0, 2.0, 1.0], [3.0, 3.0, 1.0]])
    real = np.array([[6.0, 8.0, 0.5], [1.0, 0.0, 9.0]])
    scaled = match_scale(generated, real, rank=2)
    assert np.linalg.norm(scaled[:, :2], axis=1) == pytest.approx([10.0, 1.0])
    assert scaled[0] / generated[0] == pytest.approx([10 / np.sqrt(20)] * 3)


def test_estimate_refuses_a_matrix_without_two_distinct_positive_values():
    with pytest.raises(ValueError, match="two distinct positive"):
        estimate(np.ones((5, 4)))


def test_fidelity_of_a_matrix_with_itself_is_perfect_and_of_a_different_one_is_not():
    real = sample(KNOWN, 30, 64, np.random.default_rng(3))
    same = fidelity(real, real)
    assert same["distance_ks"] == 0 and same["spectrum_wasserstein"] == 0
    assert same["alpha_gap"] in (0.0, FAILED_FIT_GAP)  # the latter only if the fit itself fails
    other = fidelity(real, sample(GeneratorParams(6.0, 3.0, 0.5, 0.5, 0.5), 30, 64, np.random.default_rng(4)))
    assert other["distance_ks"] > 0.3 and other["spectrum_wasserstein"] > 0.5


def test_a_failed_fit_scores_worse_than_any_fitted_one():
    real = sample(KNOWN, 30, 64, np.random.default_rng(5))
    constant = np.tile(np.linspace(5, 1, 64), (30, 1))  # all distances 0: no fit
    failed = fidelity(real, constant)["alpha_gap"]
    fitted = sample(KNOWN, 30, 64, np.random.default_rng(6))
    for target in (reference(real).alpha, 1.001, 1e6):  # a close fit, and fits as far from the real alpha as can be
        assert fidelity(reference(real, alpha=target), fitted)["alpha_gap"] < failed


def test_knee_is_the_point_closest_to_the_ideal_after_scaling():
    F = np.array([[0.0, 10.0], [0.2, 2.0], [0.5, 1.0], [1.0, 0.0]])
    # scaled: (0, 1), (.2, .2), (.5, .1), (1, 0): the second is closest to (0, 0)
    assert knee_index(F) == 1
    assert knee_index(np.array([[1.0, 1.0]])) == 0


@pytest.mark.parametrize("crowding", ["cd", "improved"])
def test_tuning_returns_a_non_dominated_front_and_its_knee(crowding):
    real = sample(KNOWN, 20, 16, np.random.default_rng(6))
    result = tune(real, estimate(real), population=8, generations=3, draws=1, crowding=crowding, seed=0)
    F = result.front_objectives
    assert F.shape[1] == 3 and len(result.front_params) == len(F) >= 1
    dominated = [(F[j] <= F[i]).all() and (F[j] < F[i]).any() for i in range(len(F)) for j in range(len(F))]
    assert not any(dominated)
    assert 0 <= result.knee < len(F) and result.evaluations == 24
    assert all(1.05 <= p.alpha <= 8 and 0 <= p.nugget <= 0.95 for p in result.front_params)


def test_tilted_outlier_layers_give_the_distances_a_tail():
    plain = GeneratorParams(alpha=4.0, xmin=1.0, layer_length=5.0, index_length=3.0, nugget=0.1)
    tilted = GeneratorParams(**{**plain.as_dict(), "tilt_scale": 1.0, "tilt_alpha": 1.5})
    ratios, starts = [], []
    for seed in range(5):  # same random numbers with and without the tilt
        S_plain, S_tilted = (sample(p, 30, 64, np.random.default_rng(seed)) for p in (plain, tilted))
        ratios.append(upper_distances(S_tilted).max() / upper_distances(S_plain).max())
        starts.append(estimate(S_tilted).tilt_scale - estimate(S_plain).tilt_scale)
        assert np.all(np.diff(S_tilted, axis=1) <= 0)  # still valid singular-value profiles
    assert np.mean(ratios) > 3  # a few layers tilt a lot: the largest distances grow several times
    assert np.mean(starts) > 0.3  # and estimate's start sees it

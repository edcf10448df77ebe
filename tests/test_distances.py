"""Cosine distances between singular-value profiles."""

import numpy as np
from scipy.spatial.distance import cosine

from distchar.distances import cosine_distances, cross_type_distances, mean_between_types, pair_table, zero_rows


def test_cosine_distances_are_scipys_symmetric_with_zero_diagonal():
    rows = np.random.default_rng(0).random((6, 8))
    d = cosine_distances(rows)
    assert np.allclose(d, d.T) and np.allclose(np.diag(d), 0)
    assert np.isclose(d[1, 4], cosine(rows[1], rows[4]))
    assert ((d >= 0) & (d <= 1)).all()  # non-negative rows: at most orthogonal


def test_cosine_distance_ignores_scale():
    rows = np.random.default_rng(1).random((3, 5))
    scaled = rows * np.array([[1.0], [10.0], [0.001]])
    assert np.allclose(cosine_distances(rows), cosine_distances(scaled))


def test_a_zero_row_is_undefined_not_zero_and_is_reported():
    rows = np.array([[1.0, 2.0], [0.0, 0.0], [2.0, 1.0]])
    d = cosine_distances(rows)
    assert np.isnan(d[1]).all() and np.isnan(d[:, 1]).all()
    assert np.isfinite(d[0, 2])
    assert zero_rows(rows).tolist() == [1]


def test_pair_table_holds_each_pair_once_with_its_gap():
    d = cosine_distances(np.random.default_rng(2).random((4, 3)))
    table = pair_table(d, np.array([0, 1, 2, 5]))
    assert len(table["distance"]) == 6
    assert table["gap"].tolist() == [1, 2, 5, 1, 4, 3]


def test_cross_type_cuts_profiles_to_the_common_length_and_means_skip_self_pairs():
    profiles = {"q": np.ones((3, 5)), "k": np.tile([1.0, 0.0, 0.0], (2, 1))}
    cross, labels = cross_type_distances(profiles)
    assert cross.shape == (5, 5) and labels == ["q:0", "q:1", "q:2", "k:0", "k:1"]
    means, types = mean_between_types(cross, labels)
    assert types == ["q", "k"]
    assert means[0, 0] == 0 and means[1, 1] == 0
    assert np.isclose(means[0, 1], 1 - 1 / np.sqrt(3))

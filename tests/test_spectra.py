"""Singular values (exact, randomized) and per-matrix summaries, against numpy and WeightWatcher."""

import logging

import numpy as np
import pytest
import torch

from distchar.spectra import choose_method, spectral_summary, top_singular_values
from distchar.spectra.singular_values import exact_singular_values, randomized_singular_values


@pytest.mark.parametrize("shape", [(40, 40), (90, 30), (30, 90)])
def test_exact_matches_numpy_svd(shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, *shape)).astype(np.float32)
    ours = exact_singular_values(torch.from_numpy(a)).numpy()
    reference = np.linalg.svd(a.astype(np.float64), compute_uv=False)
    assert ours.shape == (5, min(shape))
    np.testing.assert_allclose(ours[:, :10], reference[:, :10], rtol=1e-10)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


def _with_spectrum(m, n, spectrum, seed=0):
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((m, len(spectrum))))
    v, _ = np.linalg.qr(rng.standard_normal((n, len(spectrum))))
    return torch.from_numpy(((u * spectrum) @ v.T)[None].astype(np.float32))


def test_randomized_top_k_within_1e_3_with_default_settings():
    spectrum = 1.0 / np.arange(1, 301) ** 0.3  # flat, as weight spectra are
    a = _with_spectrum(600, 300, spectrum)
    values, used = top_singular_values(a, 16, method="randomized", generator=torch.Generator().manual_seed(0))
    assert used == "randomized"
    relative = np.abs(values[0].numpy() - spectrum[:16]) / spectrum[:16]
    assert relative.max() < 1e-3


def test_randomized_is_rough_without_power_iterations_on_flat_spectra():
    spectrum = 1.0 / np.arange(1, 301) ** 0.3
    a = _with_spectrum(600, 300, spectrum)
    rough = randomized_singular_values(
        a, 16, oversampling=0, power_iterations=0, generator=torch.Generator().manual_seed(0)
    )
    assert (np.abs(rough[0].numpy() - spectrum[:16]) / spectrum[:16]).max() > 1e-2


def test_auto_takes_exact_for_small_sides_and_randomized_for_large_ones():
    assert choose_method((1536, 576), 64, "auto", 128) == "exact"
    assert choose_method((14336, 4096), 64, "auto", 128) == "randomized"
    assert choose_method((14336, 4096), None, "auto", 128) == "exact"


def test_k_larger_than_the_matrix_is_refused():
    with pytest.raises(ValueError, match="k = 20 exceeds the smaller side of a 10 x 30 matrix"):
        top_singular_values(torch.zeros(1, 10, 30), 20)


def test_stable_rank_and_spectral_norm_of_a_known_matrix():
    s = np.array([4.0, 2.0, 2.0, 1.0])
    summary = spectral_summary(s, frobenius_norm=float(np.sqrt((s**2).sum())))
    assert summary["spectral_norm"] == 4.0
    assert summary["stable_rank"] == pytest.approx(25 / 16)
    assert np.isnan(summary["esd_alpha"])  # four eigenvalues: too few for a tail


def test_esd_alpha_matches_weightwatcher_on_real_minilm_layers():
    """Tolerance 1e-6: WeightWatcher 0.7.7 fits the same eigenvalues with the same estimator.

    (Its ``spectral_norm`` column is the largest eigenvalue of W^T W, our spectral_norm squared.)
    """
    import weightwatcher

    from distchar.models.projections import iter_projection_matrices
    from distchar.models.sources import resolve_source

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    matrices = [(m, w) for m, w in iter_projection_matrices(resolve_source("bundled:all-minilm-l6-v2")) if m.layer == 2]
    model = torch.nn.Sequential(*[torch.nn.Linear(w.shape[1], w.shape[0], bias=False) for _, w in matrices])
    with torch.no_grad():
        for linear, (_, w) in zip(model, matrices, strict=True):
            linear.weight.copy_(w)
    details = weightwatcher.WeightWatcher(model=model).analyze()
    assert len(details) == len(matrices) == 6
    for (_, w), row in zip(matrices, details.itertuples(), strict=True):
        ours = spectral_summary(exact_singular_values(w[None])[0].numpy(), float(w.norm()))
        assert ours["esd_alpha"] == pytest.approx(row.alpha, abs=1e-6)
        assert ours["stable_rank"] == pytest.approx(row.stable_rank, rel=1e-4)
        assert ours["spectral_norm"] ** 2 == pytest.approx(row.spectral_norm, rel=1e-4)

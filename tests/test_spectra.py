"""Singular values (exact, randomized) and per-matrix summaries, against numpy and WeightWatcher."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import powerlaw_best_among, powerlaw_fit

from distchar.config import SvdParams
from distchar.fits.power_law import MAX_CANDIDATES, fit_power_law, xmin_candidates
from distchar.models.architectures import CANONICAL_TYPES
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


def test_auto_takes_float32_for_top_k_and_float64_for_every_value():
    assert choose_method(64, "auto") == "gram32_eig64"
    assert choose_method(None, "auto") == "exact"
    assert choose_method(64, "randomized") == "randomized"


@pytest.mark.parametrize("shape", [(300, 120), (120, 300)])
@pytest.mark.parametrize("method", ["gram32_eig64", "gram32_eig32"])
def test_float32_gram_methods_keep_the_top_values_within_the_stated_bound(shape, method):
    """The bound auto relies on: 1e-5 relative on the top values, on a flat spectrum and a heavy-tailed
    one (s_i ~ i^-0.5); the whole spectrum comes back, descending."""
    for spectrum in (1.0 / np.arange(1, 121) ** 0.05, 1.0 / np.arange(1, 121) ** 0.5):
        a = _with_spectrum(*shape, spectrum)
        values, used = top_singular_values(a, None, method=method)
        assert used == method and values.shape == (1, 120) and (np.diff(values[0].numpy()) <= 0).all()
        relative = np.abs(values[0, :64].numpy() - spectrum[:64]) / spectrum[:64]
        assert relative.max() < 1e-5


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


SMOLLM2_LAYERS = (0, 8, 16, 18, 22, 23)
"""Layers whose q and o (576 x 576) the WeightWatcher test compares: 0 as it comes; 8 q, 16 o and
18 o, where a 512-candidate cap (567 candidates) would change the alpha; 22 o and 23 o, where
WeightWatcher's best tail is shorter than our min_tail of 10."""


@pytest.fixture(scope="module")
def smollm2_q_and_o():
    """[(matrix, float32 weight, exact singular values)] of SmolLM2-135M-Instruct's (bundled, 4-bit
    GGUF) q and o projections in ``SMOLLM2_LAYERS``."""
    from distchar.models.projections import list_projections, stream_projections
    from distchar.models.sources import resolve_source

    listed = list_projections(resolve_source("bundled:smollm2-135m-instruct"), ("q", "o"))
    chosen = [m for m in listed if m.layer in SMOLLM2_LAYERS]
    return [(m, w, exact_singular_values(w[None])[0].numpy()) for m, w in stream_projections(chosen)]


def test_esd_alpha_matches_weightwatcher_on_smollm2_576_wide_matrices(smollm2_q_and_o):
    """Default settings on both sides; 576 eigenvalues each, 567 candidates at min_tail 10.

    Where WeightWatcher's tail (``num_pl_spikes``) has at least 10 eigenvalues: the same alpha,
    xmin and tail. Where it is shorter, the only difference is that rule: our fit with
    min_tail 2 (WeightWatcher's shortest tail) is its fit. Our full scan matters: a 512-candidate
    cap, as for the distances, would miss WeightWatcher's alpha on three of these matrices.
    """
    import weightwatcher

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    assert all(w.shape == (576, 576) for _, w, _ in smollm2_q_and_o) and len(smollm2_q_and_o) == 12
    model = torch.nn.Sequential(*[torch.nn.Linear(576, 576, bias=False) for _ in smollm2_q_and_o])
    with torch.no_grad():
        for linear, (_, w, _) in zip(model, smollm2_q_and_o, strict=True):
            linear.weight.copy_(w)
    details = weightwatcher.WeightWatcher(model=model).analyze()
    short, capped_misses = [], []
    for (m, w, s), row in zip(smollm2_q_and_o, details.itertuples(), strict=True):
        ours = spectral_summary(s, float(w.norm()))
        assert ours["esd_note"] == "" and ours["esd_n_tail"] >= 10
        if row.num_pl_spikes >= 10:
            assert ours["esd_alpha"] == pytest.approx(row.alpha, rel=1e-10)
            assert ours["esd_xmin"] == pytest.approx(row.xmin, rel=1e-10)
            assert ours["esd_n_tail"] == row.num_pl_spikes
        else:
            short.append(f"{m.layer} {m.type}")
            assert fit_power_law(s**2, min_tail=2, max_candidates=None).alpha == pytest.approx(row.alpha, rel=1e-10)
        if fit_power_law(s**2, max_candidates=MAX_CANDIDATES).alpha != pytest.approx(row.alpha, rel=1e-10):
            capped_misses.append(f"{m.layer} {m.type}")
    assert short == ["22 o", "23 o"]
    assert capped_misses == ["8 q", "16 o", "18 o", "22 o", "23 o"]


def test_esd_alpha_is_the_powerlaw_packages_on_smollm2_eigenvalues(smollm2_q_and_o):
    """At the default min_tail, on the 576 eigenvalues of layer 23 o (alpha 2.03) and layer 8 q
    (alpha 4.11, where a 512-candidate cap moves xmin): the summary's full scan is ``powerlaw``'s
    full scan, and with the cap on (567 candidates) ``fit_power_law`` is ``powerlaw``'s choice among
    the same 512 candidates. ``powerlaw``'s alpha range is widened (``helpers.powerlaw_fit``): its
    default (0, 3) moves the fit to a tail with alpha below 3 on 190 of SmolLM2's 210 matrices."""
    compared = 0
    for m, w, s in smollm2_q_and_o:
        if (m.layer, m.type) not in {(23, "o"), (8, "q")}:
            continue
        eigenvalues = np.sort(s**2)
        reference = powerlaw_fit(eigenvalues, min_tail=10)
        summary = spectral_summary(s, float(w.norm()))
        assert summary["esd_xmin"] == reference.xmin
        assert summary["esd_alpha"] == pytest.approx(reference.alpha, rel=1e-10)
        assert summary["esd_D"] == pytest.approx(reference.D, rel=1e-10)
        starts = xmin_candidates(eigenvalues, 10)
        assert starts.size == MAX_CANDIDATES
        capped = fit_power_law(eigenvalues)
        xmin, alpha, D = powerlaw_best_among(reference, eigenvalues[starts])
        assert capped.xmin == xmin and capped.alpha == pytest.approx(alpha, rel=1e-10)
        assert capped.D == pytest.approx(D, rel=1e-10)
        compared += 1
    assert compared == 2


def test_top_k_values_give_no_esd_alpha_and_say_why():
    s = np.linspace(3.0, 0.1, 64)
    summary = spectral_summary(s, frobenius_norm=10.0, full_spectrum=False)
    assert summary["spectral_norm"] == 3.0 and summary["stable_rank"] == pytest.approx(100 / 9)
    assert all(np.isnan(summary[c]) for c in ("esd_alpha", "esd_xmin", "esd_D", "esd_n_tail"))
    assert (
        summary["esd_note"] == "only the top 64 singular values (randomized SVD): the ESD alpha needs every eigenvalue"
    )
    assert spectral_summary(s, frobenius_norm=10.0)["esd_note"] == ""


def test_stage_02_under_randomized_reports_how_many_matrices_have_an_esd_alpha(tmp_path, tiny_llama):
    from distchar.stages.extract import run_extract
    from distchar.stages.svd import run_svd

    run_extract("tiny", str(tiny_llama), CANONICAL_TYPES, tmp_path / "01")
    params = SvdParams(k=4, method="randomized", check_matrices=0)
    summary = run_svd("tiny", str(tiny_llama), tmp_path / "01", params, tmp_path / "02")
    table = pd.read_csv(tmp_path / "02" / "summaries.csv", keep_default_na=False, na_values=[""])
    note = "only the top 4 singular values (randomized SVD): the ESD alpha needs every eigenvalue"
    assert table["esd_alpha"].isna().all() and (table["esd_note"] == note).all()
    assert summary["esd_alpha"] == {"matrices": 0, "of": 21, "missing": {note: 21}}
    metrics = json.loads((tmp_path / "02" / "metrics.json").read_text())
    assert metrics["n_esd_alpha"] == 0 and set(metrics["mean_esd_alpha"].values()) == {None}
    exact = run_svd("tiny", str(tiny_llama), tmp_path / "01", SvdParams(k=4, method="exact"), tmp_path / "02e")
    assert exact["esd_alpha"] == {"matrices": 21, "of": 21, "missing": {}}

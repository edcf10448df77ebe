"""Stages 02-04 and the fingerprint on real models, and their handling of bad input."""

import json
import logging

import numpy as np
import pandas as pd
import pytest

from distchar.config import PowerLawParams, SvdParams
from distchar.errors import DistcharError
from distchar.models.architectures import CANONICAL_TYPES
from distchar.stages.distances import run_distances
from distchar.stages.extract import run_extract
from distchar.stages.fingerprint import run_fingerprint
from distchar.stages.powerlaw import run_powerlaw
from distchar.stages.svd import run_svd

SMALL_K = SvdParams(k=16, check_matrices=4)
FAST_FITS = PowerLawParams(bootstrap=10)


@pytest.fixture(scope="module")
def smollm2_analysis(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis")
    run_extract("smollm2", "bundled:smollm2-135m-instruct", CANONICAL_TYPES, root / "01" / "smollm2")
    run_svd("smollm2", "bundled:smollm2-135m-instruct", root / "01" / "smollm2", SMALL_K, root / "02" / "smollm2")
    run_distances("smollm2", root / "02" / "smollm2", root / "03" / "smollm2")
    run_powerlaw("smollm2", root / "03" / "smollm2", FAST_FITS, root / "04" / "smollm2", root / "01" / "smollm2")
    return root


def test_svd_stage_gives_30_by_k_profiles_per_type(smollm2_analysis):
    with np.load(smollm2_analysis / "02" / "smollm2" / "singular_values.npz") as data:
        for t in CANONICAL_TYPES:
            assert data[t].shape == (30, 16) and (np.diff(data[t], axis=1) <= 1e-9).all()
            assert data[f"{t}_layers"].tolist() == list(range(30))
    summaries = pd.read_csv(smollm2_analysis / "02" / "smollm2" / "summaries.csv")
    assert len(summaries) == 210 and set(summaries["method"]) == {"gram32_eig64"}
    assert (summaries["stable_rank"] >= 1).all() and summaries["esd_alpha"].notna().all()


def test_the_float32_method_is_checked_against_float64_on_smollm2(smollm2_analysis):
    check = json.loads((smollm2_analysis / "02" / "smollm2" / "check.json").read_text())
    assert check["checked"] == 4 and check["compared"] == "top 16" and check["methods"] == ["gram32_eig64"]
    assert check["max_relative_error"] <= 1e-5 and check["within_tolerance"] and "fallback" not in check


def test_auto_recomputes_in_float64_when_the_check_exceeds_the_tolerance(tmp_path, caplog):
    """A tolerance no float32 method meets: every matrix comes out of ``exact``, as the check says."""
    run_extract("smollm2", "bundled:smollm2-135m-instruct", ("k",), tmp_path / "01")
    params = SvdParams(k=16, check_matrices=3, tolerance=1e-12)
    with caplog.at_level(logging.WARNING):
        run_svd("smollm2", "bundled:smollm2-135m-instruct", tmp_path / "01", params, tmp_path / "02")
    check = json.loads((tmp_path / "02" / "check.json").read_text())
    assert check["checked"] == 3 and not check["within_tolerance"] and "float64" in check["fallback"]
    assert set(pd.read_csv(tmp_path / "02" / "summaries.csv")["method"]) == {"exact"}
    assert "recomputing every matrix in float64" in caplog.text


def test_a_matrix_beyond_the_batch_bound_is_named_in_one_sentence():
    from distchar.models.projections import ProjectionMatrix
    from distchar.spectra.model import check_batch_bound

    llama_8b_up = ProjectionMatrix(3, "up", "model.layers.3.mlp.up_proj.weight", "BF16", (14336, 4096), None, False)
    check_batch_bound([llama_8b_up], SvdParams())  # 416 MB: fits the default
    with pytest.raises(DistcharError, match=r"^params.yaml: svd.batch_mb = 256 is below the 416 MB that one "
                       r"14336 x 4096 up matrix needs under the gram32_eig64 method .*at least 416\.$"):  # fmt: skip
        check_batch_bound([llama_8b_up], SvdParams(batch_mb=256))


def test_distances_and_fits_for_every_type_and_pooled(smollm2_analysis):
    pairs = pd.read_csv(smollm2_analysis / "03" / "smollm2" / "pairs.csv")
    assert pairs.groupby("type").size().to_dict() == dict.fromkeys(CANONICAL_TYPES, 435)
    description = pd.read_csv(smollm2_analysis / "04" / "smollm2" / "description.csv")
    assert description["type"].tolist() == [*CANONICAL_TYPES, "pooled"]
    assert description["alpha"].between(1, 10).all() and description["D"].between(0, 1).all()
    text = (smollm2_analysis / "04" / "smollm2" / "description.md").read_text()
    assert "not independent" in text and "quantised weights (Q4_1)" in text
    metrics = json.loads((smollm2_analysis / "04" / "smollm2" / "metrics.json").read_text())
    assert set(metrics) == {*CANONICAL_TYPES, "pooled"} and "preferred" in metrics["q"]


def test_fingerprint_puts_models_side_by_side(smollm2_analysis, tmp_path):
    root = smollm2_analysis / "04"
    table = run_fingerprint(["smollm2"], root, tmp_path / "fp")
    assert len(table) == 8 and (tmp_path / "fp" / "fingerprint.png").stat().st_size > 10_000
    with pytest.raises(DistcharError, match="No stage-04 description for model 'other'"):
        run_fingerprint(["smollm2", "other"], root, tmp_path / "fp2")


def test_nan_matrices_are_excluded_and_reported(tmp_path, nan_model):
    run_extract("nan", str(nan_model), CANONICAL_TYPES, tmp_path / "01")
    summary = run_svd("nan", str(nan_model), tmp_path / "01", SvdParams(k=8), tmp_path / "02")
    assert summary["excluded_nonfinite"] == ["layer 1 v", "layer 2 up"] and summary["n_matrices"] == 19
    with np.load(tmp_path / "02" / "singular_values.npz") as data:
        assert data["v_layers"].tolist() == [0, 2] and data["up_layers"].tolist() == [0, 1]


def test_k_larger_than_a_projection_names_it_before_any_work(tmp_path, tiny_llama):
    run_extract("tiny", str(tiny_llama), CANONICAL_TYPES, tmp_path / "01")
    with pytest.raises(DistcharError, match=r"svd.k = 20 exceeds the smaller side of the k projection \(16 x 32"):
        run_svd("tiny", str(tiny_llama), tmp_path / "01", SvdParams(k=20), tmp_path / "02")
    assert not (tmp_path / "02").exists()


def test_too_few_distances_mark_fits_insufficient_and_the_stage_completes(tmp_path, tiny_llama):
    run_extract("tiny", str(tiny_llama), CANONICAL_TYPES, tmp_path / "01")
    run_svd("tiny", str(tiny_llama), tmp_path / "01", SvdParams(k=8), tmp_path / "02")
    run_distances("tiny", tmp_path / "02", tmp_path / "03")
    run_powerlaw("tiny", tmp_path / "03", FAST_FITS, tmp_path / "04")
    description = pd.read_csv(tmp_path / "04" / "description.csv")
    by_type = description.set_index("type")
    assert (by_type.loc[list(CANONICAL_TYPES), "preferred"] == "insufficient").all()  # 3 layers: 3 distances
    assert "too few distances for a fit" in (tmp_path / "04" / "description.md").read_text()


def test_all_zero_profile_is_reported_and_left_out(tmp_path):
    (tmp_path / "02").mkdir()
    rng = np.random.default_rng(0)
    profile = np.sort(rng.random((12, 8)), axis=1)[:, ::-1]
    profile[4] = 0.0
    np.savez(tmp_path / "02" / "singular_values.npz", q=profile, q_layers=np.arange(12))
    summary = run_distances("zeros", tmp_path / "02", tmp_path / "03")
    assert summary["zero_profile_layers"] == {"q": [4]} and summary["undefined_pairs"] == 11
    run_powerlaw("zeros", tmp_path / "03", FAST_FITS, tmp_path / "04")
    fits = json.loads((tmp_path / "04" / "fits.json").read_text())
    assert fits["q"]["fit"]["n"] == 55  # the 66 - 11 defined distances

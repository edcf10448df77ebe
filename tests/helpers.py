"""Helpers for tests that need a fresh interpreter or a copy of the repository, and the reference
power-law fits of the ``powerlaw`` package made comparable with ours."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np


def run_python(code: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter of this environment (for settings read at import time)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
"""The environment of commands run in a copy of the repository: this environment's dvc, papermill
and python first on PATH."""


def run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command (dvc, python, ...) in ``repo``; with ``check``, fail showing its output."""
    result = subprocess.run(args, cwd=repo, env=ENV, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def copy_repository(target: Path) -> Path:
    """A copy of the repository's tracked and unignored files in ``target``, as a new git repository.

    The copy has no DVC cache, no results and no environment: what a fresh clone has, plus the
    uncommitted work of the checkout the tests run in.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        if name.startswith("results/") or name == "dvc.lock":
            continue  # the committed results of the default profile: the copy runs its own
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "copy")
    return target


def git(repo: Path, *args: str) -> str:
    env_args = [
        "-c",
        "user.name=distchar-tests",
        "-c",
        "user.email=tests@distchar.invalid",
        "-c",
        "commit.gpgsign=false",
    ]
    return subprocess.run(["git", *env_args, *args], cwd=repo, capture_output=True, text=True, check=True).stdout


ODDS_TINY = (
    "odds:\n  models: []\n  seed: 1337\n  reference_samples: 5000\n  sampling_n: 5\n  finetune_draws: 7\n"
    "  split: [0.7, 0.15, 0.15]\n  batch_size: 16\n  prefill_answer_tag: false\n  max_new_tokens: 8\n"
    "generator:\n  population: 6\n  generations: 2\n  draws: 1\n  check_draws: 2\n"
    "lora:\n  rank: 2\n  seeds: [0]\n"
    "training:\n  tasks: {}\nevaluate: {}\n"
    "robustness:\n  architectures: [mlp]\n  losses: [ce, dsl]\n  dsl_b: [0.01]\n  dsl_reduction: sum\n"
    "  label_smoothing: 0.1\n  seeds: 2\n  epochs: 3\n  batch_size: 64\n  learning_rate: 0.001\n  test_fraction: 0.3\n"
    "  attack_examples: 20\n  epsilons: [0.3]\n  epsilon: 0.3\n  pgd_steps: 5\n  cw_c: 1.0\n  cw_steps: 10\n"
    "  square_queries: 20\n  confidence: 0.95\n  jobs: 1\n"
    "nsga2:\n  problems: [sch, zdt1]\n  variants: [cd, improved]\n  seeds: 3\n  population: 12\n  generations: 6\n"
    "  snapshots: [3]\n  confidence: 0.95\n  jobs: 1\n"
)
"""The params.yaml sections after `powerlaw` for pipeline tests: no model evaluated by odds, small
question sets, a short generator tuning, rank-2 inits for one seed, an MLP on the digits for a few
epochs under attacks at a radius that breaks every image early (AutoAttack stops after its first
attack), NSGA-II on two problems for a few generations."""


def powerlaw_fit(values: np.ndarray, min_tail: int):
    """``powerlaw.Fit`` (2.0.0) set up to be ``fit_power_law(values, min_tail, max_candidates=None)``.

    ``powerlaw`` has no ``min_tail``: it scans the distinct values in its xmin range [lo, hi) but
    the last. With hi the second distinct value above our largest candidate (the sorted x[n -
    min_tail]) its candidates are ours. Its default alpha range (0, 3) is widened to (1, inf): it
    would drop every candidate whose alpha is 3 or more, which ours keeps.
    """
    import warnings

    import powerlaw

    x = np.sort(np.asarray(values, dtype=np.float64))
    x = x[x > 0]
    above = np.unique(x[x > x[x.size - min_tail]])
    hi = above[1] if above.size >= 2 else np.inf
    with warnings.catch_warnings():  # it warns about integer data and every numerical hiccup
        warnings.simplefilter("ignore")
        return powerlaw.Fit(x, xmin=(x[0], hi), parameter_ranges={"alpha": [1, None]}, verbose=False)


def powerlaw_best_among(reference, xmins: np.ndarray) -> tuple[float, float, float]:
    """(xmin, alpha, D) of the candidate with the smallest D among the valid candidates of the
    ``powerlaw.Fit`` ``reference`` whose xmin is in ``xmins``: its choice had it scored only those."""
    scan = reference.xmin_fitting_results
    keep = np.flatnonzero(scan["valid_fits"] & np.isin(scan["xmins"], xmins))
    best = keep[np.argmin(scan["distances"][keep])]
    return float(scan["xmins"][best]), float(scan["alphas"][best]), float(scan["distances"][best])


def open_offline(browser, path: Path):
    """``path`` opened from disk in ``browser`` (the ``browser`` fixture), and the list that every
    console error, page error, failed request and request off disk (data: URIs are embedded
    figures) is appended to."""
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url} ({r.failure})"))
    page.on(
        "request", lambda r: None if r.url.startswith(("file://", "data:")) else problems.append(f"off disk: {r.url}")
    )
    page.goto(path.as_uri(), wait_until="load")
    return page, problems

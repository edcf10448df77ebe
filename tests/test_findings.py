"""Findings blocks of the docs: rendered from result files, and a check that names stale blocks."""

from __future__ import annotations

import json
import sys

import pytest
from helpers import REPO, run

from distchar.errors import DistcharError
from distchar.findings import main, refresh, render


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "results" / "07_evaluate" / "odds"
    folder.mkdir(parents=True)
    (folder / "claims.md").write_text("| baseline | claim |\n|---|---|\n| default | **underpowered (2 seeds)** |\n")
    (folder / "metrics.json").write_text(json.dumps({"primary_metric": "mean_abs_error"}))
    (folder / "summary.csv").write_text(
        "init,learning_rate,seeds,validation_loss,mean_abs_error,mean_abs_error_low,mean_abs_error_high,parse_rate\n"
        "default,0.004,2,1.5,43.9,-36.7,124.4,1.0\n"
        "(base model),,,2.25,34.3,,,0.62\n"
    )
    (tmp_path / "docs").mkdir()
    doc = tmp_path / "docs" / "page.md"
    doc.write_text(
        "Prose.\n<!-- findings: file 07_evaluate/odds/claims.md -->\nold table\n<!-- /findings -->\n"
        "More prose.\n<!-- findings: inits odds -->\n<!-- /findings -->\n"
    )
    return tmp_path


def test_blocks_are_rendered_from_the_result_files_and_a_check_names_stale_ones(project, capsys):
    assert main(["--check"]) == 1
    assert "docs/page.md: file 07_evaluate/odds/claims.md" in capsys.readouterr().out
    assert main([]) == 0
    text = (project / "docs" / "page.md").read_text()
    assert "old table" not in text and "**underpowered (2 seeds)**" in text and "More prose." in text
    assert "| `default` | 0.004 | 2 | 1.5000 | 43.900 [-36.700, 124.400] | 1.000 |" in text
    assert "| (base model) | - | - | 2.2500 | 34.300 | 0.620 |" in text
    assert main(["--check"]) == 0
    (project / "results" / "07_evaluate" / "odds" / "claims.md").write_text("| baseline | claim |\n")
    assert main(["--check"]) == 1  # a rerun that changed a result makes the committed page stale


def test_unknown_blocks_and_missing_results_are_one_sentence(project):
    with pytest.raises(DistcharError, match="Unknown findings block 'table'"):
        refresh("<!-- findings: table x -->\n<!-- /findings -->")
    with pytest.raises(DistcharError, match="generator.json does not exist; run the stage"):
        refresh("<!-- findings: generator smollm2 -->\n<!-- /findings -->")


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


DESCRIPTION = (
    "type,n,preferred,alpha,sigma,xmin,n_tail,tail_share,D,gof_p,reason,R_lognormal,p_lognormal,R_exponential,"
    "p_exponential,R_truncated_power_law,p_truncated_power_law,R_stretched_exponential,p_stretched_exponential,"
    "spearman_rho,spearman_p,clusters\n"
    "q,435,truncated_power_law,1.8,0.05,0.00114,247,0.5678,0.059,0,,-0.92,0.36,10.7,0,-2.4,0.03,-0.46,0.65,0.27,0,"
    "0; 1-29\n"
    "v,435,power_law,1.6,0.04,0.000174,239,0.55,0.061,0.5,,0.5,0.5,8.2,0,-0.5,0.4,0.2,0.8,0.05,0.09,0; 1-29\n"
    "down,435,inconclusive,4.59,0.52,0.0193,48,0.11,0.101,0,,-2.17,0.03,-1.9,0.06,-2.4,0.0003,-2.2,0.03,-0.44,0,"
    '"0; 1-2"\n'
    "up,5,insufficient,,,,0,,,,too few distances,,,,,,,,,,,\n"
    "pooled,1310,truncated_power_law,1.94,0.03,0.00355,937,0.31,0.045,0,,-4.36,0,6.3,0,-6.19,0,-4.56,0,0.24,0,\n"
)


def test_the_powerlaw_block_renders_every_fit_and_what_the_fits_say(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "results/04_powerlaw/m/description.csv", DESCRIPTION)
    write(tmp_path / "results/01_extract/m/summary.json", json.dumps({"n_layers": 30, "dtypes": ["Q4_1"]}))
    write(tmp_path / "results/02_svd/m/summary.json", json.dumps({"k": 64}))
    text = render("powerlaw m")
    assert "`m`: 30 layers (Q4_1), the top 64 singular values" in text
    assert ("| q | 435 | 0.00114 | 57% | 1.80 +- 0.05 | 0.059 | 0.00 | -0.92 (0.36) | -2.40 (0.03) "
            "| truncated power law | 0.27 | 0; 1-29 |") in text  # fmt: skip
    assert "| up | 5 | - | - | - +- - | - | - | - (-) | - (-) | insufficient | - |  |" in text
    assert "- alpha over the types: 1.60 (v) to 4.59 (down)." in text  # no alpha from an insufficient fit
    assert ("- a log-normal has higher likelihood than the power law (R < 0) in 3 of 4 groups: q, down, pooled; "
            "significantly in 2: down, pooled.") in text  # fmt: skip
    assert "truncated power law (q, pooled); power law (v); inconclusive (down); insufficient (up)." in text
    assert "grows in q, pooled; barely changes in v; shrinks in down." in text


FLOORS = (
    "setting,task,source,condition,shot_kind,shots,mean,sem,groups,questions,unparseable_share,out_of_range_share,"
    "strategy,constant,domain\n"
    "0-shot,percentiles,idealized,idealized,none,0,27.07,0.05,14,154,0,0,always_50,,\n"
    "0-shot,probabilities,idealized,idealized,none,0,24.451,0.1,14,140,0,0,best_constant_probability,0.547,\n"
    "0-shot,sampling,idealized,idealized,none,0,0.2412,0.03,14,280,0,0,normal_approximation,,\n"
    "normal_approximation,percentiles,real_world,normal_approximation,none,0,27.09,0,12,132,0,0,always_50,,\n"
    "normal_approximation,percentiles,real_world,normal_approximation,none,0,27.09,0,4,44,0,0,always_50,,health\n"
    "normal_approximation,percentiles,real_world,normal_approximation,none,0,27.09,0,4,44,0,0,always_50,,climate\n"
    "normal_approximation,probabilities,real_world,normal_approximation,none,0,25.3,0,4,40,0,0,"
    "best_constant_probability,0.562,health\n"
)


def test_the_odds_blocks_render_the_floors_the_splits_and_a_model_beside_its_floors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    questions = tmp_path / "results" / "08_odds_questions"
    write(questions / "floors.csv", FLOORS)
    write(questions / "split.json", json.dumps({
        "benchmark_questions": 5684, "train_questions": 8232, "validation_questions": 1764, "test_questions": 1764,
        "train_distributions": 336, "validation_distributions": 72, "test_distributions": 72,
        "shares": [0.7, 0.15, 0.15], "draws_per_family": 40}))  # fmt: skip
    floors = render("odds_floors")
    assert "real-world percentiles all / health / climate |" in floors
    assert "| always 50 | 27.07 |  |  | 27.09 / 27.09 / 27.09 |  |" in floors
    assert "| best constant probability |  | 24.45 (0.547) |  |  |  / 25.30 /  |" in floors
    assert "| Normal approximation (exact) |  |  | 0.24 |  |  |" in floors
    assert "fitted family" not in floors  # a strategy the file lacks has no row
    split = render("odds_split")
    assert "The benchmark grid: 5,684 questions. Fine-tuning: 40 draws per family, split 70% / 15% / 15%" in split
    assert "| distributions | 336 | 72 | 72 |" in split and "| questions | 8,232 | 1,764 | 1,764 |" in split

    folder = tmp_path / "results" / "08_odds" / "m"
    metrics = {"profile": "default", "questions": 1124, "sampling_noise_floor": 0.3041}
    write(folder / "metrics.json", json.dumps(metrics))
    write(folder / "summary.csv",
          "setting,task,source,condition,shot_kind,shots,mean,sem,groups,questions,unparseable_share,"
          "out_of_range_share,floor_always_50,floor_best_constant_probability,floor_fitted_family,"
          "floor_normal_approximation,domain\n"
          "0-shot,percentiles,idealized,idealized,none,0,42.21,2.06,14,154,0,0.03,27.07,,0.08,4.61,\n"
          "0-shot,probabilities,idealized,idealized,none,0,,,0,140,1,0,,24.45,0.09,7.43,\n"
          "0-shot,sampling,idealized,idealized,none,0,0.661,0.058,14,280,0.39,0,,,0.19,0.24,\n"
          "real_world_context,percentiles,real_world,real_world_context,none,0,40.9,1.0,12,132,0,0.01,27.09,,,3.8,\n"
          "real_world_context,percentiles,real_world,real_world_context,none,0,38,2,4,44,0,0,27.09,,,2.61,"
          "health\n")  # fmt: skip
    odds = render("odds m")
    assert "`m` on the `default` profile: 1,124 generations" in odds and "sqrt(N): 0.30)" in odds
    assert "| percentiles | idealized, 0-shot | 42.2 +- 2.1 (14 groups) | 27.1 | 4.61 | 0.08 | 0% + 3% |" in odds
    assert "| probabilities | idealized, 0-shot | - (no valid answer) | 24.4 | 7.43 | 0.09 | 100% + 0% |" in odds
    assert "| sampling | idealized, 0-shot | 0.661 +- 0.058 (14 groups) |  | 0.24 | 0.19 | 39% + 0% |" in odds
    assert "| real world, real world context | 40.9 +- 1 (12 groups) | 27.1 | 3.8 |  | 0% + 1% |" in odds
    assert "health" not in odds  # the per-domain rows stay in the file


def test_a_missing_result_file_stops_the_command_with_one_sentence_before_any_page_is_written(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "results" / "10_nsga2" / "table.md", "| problem | cd |\n")
    stale = "<!-- findings: file 10_nsga2/table.md -->\nold\n<!-- /findings -->\n"
    write(tmp_path / "README.md", stale)
    write(tmp_path / "docs" / "odds.md", "<!-- findings: odds_split -->\n<!-- /findings -->\n")
    assert main([]) == 2
    assert "error: docs/odds.md: results/08_odds_questions/split.json does not exist" in capsys.readouterr().err
    assert (tmp_path / "README.md").read_text() == stale


def test_the_committed_docs_match_what_the_committed_results_render():
    """The docs' findings blocks against the result files committed in git (``cache: false``
    outputs of one full ``make run``): after a rerun that changed a result, or an edit of a block
    by hand, ``python -m distchar.findings`` rewrites the blocks and the diff shows what changed."""
    result = run(REPO, sys.executable, "-m", "distchar.findings", "--check", check=False)
    assert result.returncode == 0, (
        "the docs' findings blocks differ from what the committed results render (or a result file is "
        f"missing); run `python -m distchar.findings` and commit the docs:\n{result.stdout}{result.stderr}"
    )


def test_the_benchmark_tables_match_the_committed_benchmark_results():
    """benchmarks/README.md's generated tables (``benchmarks/readme_tables.py``) against the committed
    results files: a benchmark rerun, or a table edited by hand, shows up here."""
    result = run(REPO, sys.executable, "benchmarks/readme_tables.py", "--check", check=False)
    assert result.returncode == 0, f"run `python benchmarks/readme_tables.py`:\n{result.stdout}{result.stderr}"


def test_a_profile_times_study_09_only_where_its_timings_are_of_the_design_published(tmp_path, monkeypatch):
    """Study 09 restored by DVC from its run cache keeps the timings of the last run that ran (here 2
    seeds where the tables have 3): the profile leaves its seconds out instead of reporting those."""
    from distchar.profiles import part_timings
    from distchar.timings import write_timings

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "results" / "09_robustness"
    folder.mkdir(parents=True)
    (folder / "accuracy.csv").write_text(
        "architecture,loss,measure,mean,low,high,seeds\nmlp,ce,clean,0.97,0.96,0.98,3\nmlp,ce,fgsm@0.05,0.8,0.7,0.9,3\n"
    )
    models = [{"architecture": "mlp", "loss": "ce", "seed": s, "train_seconds": 1.0, "attack_seconds": 2.0}
              for s in range(3)]  # fmt: skip
    write_timings(folder, {"models": models[:2]})
    assert part_timings([])["robustness"] == {"models": 3, "seconds": None}
    assert part_timings([])["untimed"] == ["robustness"]
    write_timings(folder, {"models": models})
    assert part_timings([])["robustness"] == {"models": 3, "seconds": 9.0}
    assert part_timings([])["untimed"] == []

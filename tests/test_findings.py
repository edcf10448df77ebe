"""Findings blocks of the docs: rendered from result files, and a check that names stale blocks."""

from __future__ import annotations

import json

import pytest

from distchar.errors import DistcharError
from distchar.findings import main, refresh


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

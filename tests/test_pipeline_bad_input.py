"""Bad input stops `dvc repro` early, with its one sentence and no stage output, in a copy of the
repository (no pipeline run needed: these run beside test_pipeline.py's under pytest-xdist)."""

from __future__ import annotations

from helpers import ODDS_TINY, copy_repository, run


def test_invalid_params_stop_repro_with_one_sentence_before_any_work(tmp_path):
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

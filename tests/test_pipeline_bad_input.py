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


def test_missing_local_source_stops_repro_before_any_kernel_starts(tmp_path):
    copy = copy_repository(tmp_path / "missing")
    (copy / "params.yaml").write_text(
        "models:\n  ghost: /nonexistent/model\nextract:\n  types: [q]\nsvd: {}\npowerlaw: {}\n" + ODDS_TINY
    )
    result = run(copy, "dvc", "repro", "extract", check=False)
    assert result.returncode != 0
    assert "error: params.yaml: models.ghost: the source '/nonexistent/model' does not exist" in result.stderr
    assert not (copy / "results").exists()  # no kernel ran: no executed notebook either


def test_bad_input_found_in_a_kernel_ends_the_stage_output_with_its_sentence(tmp_path):
    """The source exists but holds no weights: found by stage 01's kernel, whose DistcharError ends
    dvc repro's output as one line, after the path of the executed notebook that keeps the traceback."""
    copy = copy_repository(tmp_path / "empty")
    (copy / "models" / "empty").mkdir(parents=True)
    (copy / "params.yaml").write_text(
        "models:\n  hollow: models/empty\nextract:\n  types: [q]\nsvd: {}\npowerlaw: {}\n" + ODDS_TINY
    )
    result = run(copy, "dvc", "repro", "extract", check=False)
    assert result.returncode != 0
    stage_output = result.stderr.rstrip().splitlines()
    error = next(i for i, line in enumerate(stage_output) if line.startswith("error: "))
    assert stage_output[error] == (
        "error: Model source 'models/empty': the folder models/empty has no *.safetensors weights (safetensors "
        "checkpoints with config.json, or a single .gguf file, are supported)."
    )
    assert "results/notebooks/01_extract/hollow.ipynb" in stage_output[error - 1]
    assert not any("Traceback" in line or "PapermillExecutionError" in line for line in stage_output[: error + 1])
    assert (copy / "results" / "notebooks" / "01_extract" / "hollow.ipynb").exists()
    assert not (copy / "results" / "01_extract" / "hollow").exists()

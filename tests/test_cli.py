"""The ``distchar`` console script, run as a user runs it: the installed entry point in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ENV, REPO

DISTCHAR = str(Path(sys.executable).parent / "distchar")


def distchar(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([DISTCHAR, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The command failed as bad input does: exit status 2 and one line on stderr, ``error: ...``."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.slow
def test_analyze_gives_the_pipelines_outputs_for_the_bundled_model_and_a_page(tmp_path):
    """Same functions, same settings, one BLAS thread here against DVC's two: every file the pipeline
    commits for stages 01-04 (fits.json among them), byte for byte, but for the SVD's check against
    float64, whose relative errors (about 1e-6) may move in their last digits."""
    out = tmp_path / "smollm2"
    result = distchar("analyze", "bundled:smollm2-135m-instruct", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    tracked = subprocess.run(["git", "ls-files", "results/0[1-4]_*/smollm2-135m-instruct/*"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    compared = [name for name in tracked if not name.endswith(".gitignore")]
    assert "results/04_powerlaw/smollm2-135m-instruct/fits.json" in compared and len(compared) >= 12
    differ = [name for name in compared if (out / name).read_bytes() != (REPO / name).read_bytes()]
    assert set(differ) <= {f"results/02_svd/smollm2-135m-instruct/{f}" for f in ("check.json", "metrics.json")}
    for name in differ:
        ours, pipeline = json.loads((out / name).read_text()), json.loads((REPO / name).read_text())
        assert ours.keys() == pipeline.keys()
        assert all(ours[k] == pytest.approx(pipeline[k], abs=1e-6) for k in ours)
    description = (REPO / "results" / "04_powerlaw" / "smollm2-135m-instruct" / "description.md").read_text()
    assert description.strip() in result.stdout
    page = (out / "index.html").read_text()
    assert "smollm2-135m-instruct" in page and "<svg" in page and "<img" in page
    assert not list(tmp_path.glob(".*partial"))


def test_analyze_of_a_missing_source_is_one_sentence_and_writes_nothing(tmp_path):
    line = one_error_line(distchar("analyze", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")))
    assert "does not exist" in line and "nowhere" in line
    assert not (tmp_path / "out").exists()


def test_analyze_refuses_a_bad_k_or_type_before_reading_the_model(tmp_path):
    assert "--k must be a whole number" in one_error_line(distchar("analyze", "bundled:x", "--k", "many"))
    assert "unknown type 'qkv'" in one_error_line(distchar("analyze", "bundled:x", "--types", "q,qkv"))


def test_analyze_of_a_folder_without_weights_is_one_sentence(tmp_path):
    (tmp_path / "empty").mkdir()
    line = one_error_line(distchar("analyze", str(tmp_path / "empty"), "--out", str(tmp_path / "out")))
    assert "has no *.safetensors weights" in line
    assert not (tmp_path / "out").exists()


def test_check_params_accepts_the_committed_file_and_names_a_bad_key(tmp_path):
    good = distchar("check-params", str(REPO / "params.yaml"))
    assert good.returncode == 0 and "is valid: 2 model(s)" in good.stdout
    bad = tmp_path / "params.yaml"
    bad.write_text((REPO / "params.yaml").read_text().replace("bootstrap: 100", "bootstrap: -3"))
    assert "key 'powerlaw.bootstrap' input should be greater than or equal to 0" in one_error_line(
        distchar("check-params", str(bad))
    )


def test_rescore_scores_answers_and_names_a_bad_file(tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("task,group,value,low,high,answer\npercentiles,Normal,100,,,<answer>50</answer>\n")
    result = distchar("rescore", str(answers), "--out", str(tmp_path / "scores.csv"))
    assert result.returncode == 0, result.stderr
    assert "percentiles" in result.stdout and (tmp_path / "scores.csv").exists()
    assert "does not exist" in one_error_line(distchar("rescore", str(tmp_path / "none.csv")))


def test_report_of_a_folder_without_results_is_one_sentence(tmp_path):
    line = one_error_line(distchar("report", "--root", str(tmp_path)))
    assert str(tmp_path / "results") in line
    assert not (tmp_path / "results").exists()


def test_usage_errors_exit_2_and_help_lists_every_command():
    listed = distchar("--help").stdout
    for command in ("analyze", "init", "report", "check-params", "rescore"):
        assert command in listed
    assert distchar("analyze").returncode == 2  # missing SOURCE: click's usage error


def test_init_writes_a_peft_adapter_folder_that_peft_loads(tmp_path, tiny_llama):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "adapter"
    result = distchar("init", str(tiny_llama), "--init", "pissa", "--rank", "2", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), out)
    assert any("lora_A" in name for name, _ in model.named_parameters())
    assert "Unknown LoRA init 'kaiming'" in one_error_line(
        distchar("init", str(tiny_llama), "--init", "kaiming", "--out", str(tmp_path / "bad"))
    )
    assert not (tmp_path / "bad").exists()
    shutil.rmtree(out)

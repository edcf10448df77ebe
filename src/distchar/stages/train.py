"""Stage 06 train: every init of ``lora.inits`` x every seed of ``lora.seeds`` x every learning rate.

For one task (``training.tasks.<task>``: its model, data, steps, batch size), each run starts from stage 05's
saved init (``results/05_generator/<model>/inits``), so every init of a seed shares the base model,
the data order and, for ``sentiment``, the classifier head's initial weights: runs differ by the
adapter's start alone. Outputs per run, in ``<out>/<init>/seed<S>_lr<LR>/``: ``adapter.safetensors``
(the trained LoRA tensors, and for ``sentiment`` the head: ``HEAD_MODULES``), ``run.json`` (settings,
final loss, tokens, seconds, tokens/s) and ``dvclive/`` (loss, learning rate and gradient norm
per step).

Resuming: a run checkpoints into ``<checkpoints>/<task>/<init>/seed<S>_lr<LR>/`` and a finished
run leaves its outputs there too, so ``dvc repro`` after a kill (which removes the stage's
declared outputs first) copies finished runs back and continues the interrupted one from its last
checkpoint. A checkpoint folder holds the fingerprint of its run (source, task settings, learning rate, loss,
LoRA rank, init file, the training code): a run whose fingerprint changed starts over instead of
reusing it. ``checkpoints/`` is not a DVC output; delete it to start over.

Several processes (GPUs or nodes): with ``training.launch`` set (e.g. ``accelerate launch
--num_processes N``) the stage runs ``LAUNCH -m distchar.stages.train TASK params.yaml``: the same
runs, each batch split across the processes (README, "Scaling the training"). The module run by
hand trains in the calling process(es) whatever ``training.launch`` says.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from distchar.config import LoraParams, TrainingParams, load_params
from distchar.errors import DistcharError, command
from distchar.training.loop import TrainConfig, train, trainable_state

log = logging.getLogger(__name__)
OUT = Path("results/06_train")
CHECKPOINTS = Path("checkpoints")

HEADS = {"probreason": "causal_lm", "sentiment": "sequence_classification"}
"""The transformers head each task loads."""
KINDS = {"probreason": "causal_lm", "sentiment": "classification"}
"""The loss each task's training loop computes."""
HEAD_MODULES = {"classifier", "pooler"}
"""Trained whole beside the adapter in sequence classification: the fresh classifier, and BERT's
pooler (sentence-embedding models such as MiniLM never trained theirs: frozen, it leaves the
classifier nearly the same vector for every tweet, and 20 steps learn only the class prior)."""


def run_name(seed: int, learning_rate: float) -> str:
    return f"seed{seed}_lr{learning_rate:g}"


def task_examples(task: str, tokenizer, settings, split: str = "train", limit: int = 0):
    """The tokenised examples of ``task`` from ``settings.data``: ``limit`` of them evenly spread over
    the split (0: all)."""
    from distchar.training.tasks import probreason_examples, sentiment_examples

    data = Path(settings.data)
    if task == "probreason":
        examples = probreason_examples(data, split, tokenizer, settings.max_length, limit)
    else:
        examples = sentiment_examples(data, split, tokenizer, settings.max_length, limit)
    if not examples:
        raise DistcharError(f"Task '{task}' has no {split} examples in {data}.")
    return examples


CODE = ("training", "lora", "losses.py", "stages/train.py", "models/loading.py")
"""The parts of distchar a run's result depends on (their source is part of its fingerprint)."""


@functools.cache
def code_hash() -> str:
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for part in CODE:
        for path in sorted((package / part).rglob("*.py")) if (package / part).is_dir() else [package / part]:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def fingerprint(record: dict) -> str:
    """A short hash of everything a run's result depends on: settings, init file, base model and
    the training code (a fixed bug must not leave finished runs of the old code in place)."""
    record = {**record, "code": code_hash()}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


def claim_checkpoint(checkpoint_dir: Path, key: str) -> None:
    """Keep ``checkpoint_dir`` only if it belongs to a run with the same fingerprint ``key``."""
    stamp = checkpoint_dir / "fingerprint.txt"
    if checkpoint_dir.exists() and (not stamp.exists() or stamp.read_text() != key):
        log.info("%s: settings changed, starting over", checkpoint_dir)
        shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key)


def load_task_model(resolved, task: str, tokenizer):
    """The base model with the head ``task`` trains (a classifier gets the tokenizer's pad id)."""
    from distchar.models.loading import load_transformers_model

    model = load_transformers_model(resolved, HEADS[task])
    if KINDS[task] == "classification" and getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model


def start_head(model: torch.nn.Module) -> None:
    """A fresh classifier, drawn from the current seed (so every init of a seed shares it)."""
    model.classifier.reset_parameters()


def train_head(peft_model: torch.nn.Module) -> None:
    """Every ``HEAD_MODULES`` parameter trainable beside the adapter."""
    for name, parameter in peft_model.named_parameters():
        if HEAD_MODULES & set(name.split(".")):
            parameter.requires_grad = True


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
) -> list[dict]:
    """Stage 06 for one task; returns the run.json of every run.

    Under ``accelerate launch`` every process runs this and shares each run's batches; only the
    main process writes files."""
    from accelerate import PartialState
    from safetensors.torch import load, save_file

    from distchar.lora import apply_state
    from distchar.models.loading import load_tokenizer
    from distchar.models.sources import resolve_source

    if task not in HEADS:
        raise DistcharError(f"Unknown task '{task}'; choose one of {', '.join(HEADS)}.")
    settings = training.task(task)
    index = load_index(inits_dir, lora.inits, lora.seeds)
    resolved = resolve_source(source)
    tokenizer = load_tokenizer(resolved)
    examples = task_examples(task, tokenizer, settings, "train", settings.train_size)
    main = PartialState().is_main_process
    base = load_task_model(resolved, task, tokenizer)
    classifier = KINDS[task] == "classification"
    dsl = {"b": training.dsl_lm_b} if task == "probreason" else {"b": training.dsl_b}
    results = []
    for name in lora.inits:
        for seed in lora.seeds:
            row = index[(name, seed)]
            init_bytes = (Path(inits_dir) / row["file"]).read_bytes()
            state, init_hash = load(init_bytes), hashlib.sha256(init_bytes).hexdigest()
            for learning_rate in training.learning_rates:
                key = f"{name}/{run_name(seed, learning_rate)}"
                run_dir, checkpoint_dir = Path(out_dir) / key, Path(checkpoint_root) / task / key
                stamp = fingerprint({"source": source, "settings": settings.model_dump(), "lr": learning_rate,
                                     "training": training.model_dump(exclude={"tasks", "learning_rates", "device",
                                                                              "checkpoint_every", "launch"}),
                                     "lora": [lora.rank, lora.alpha], "seed": seed, "init": init_hash})  # fmt: skip
                if main:
                    claim_checkpoint(checkpoint_dir, stamp)
                PartialState().wait_for_everyone()
                if (checkpoint_dir / "done" / "run.json").exists():
                    if main:
                        shutil.copytree(checkpoint_dir / "done", run_dir, dirs_exist_ok=True)
                    results.append(json.loads((checkpoint_dir / "done" / "run.json").read_text()))
                    log.info("%s %s: finished earlier, copied", task, key)
                    continue
                torch.manual_seed(seed)
                model = copy.deepcopy(base)
                if classifier:
                    start_head(model)  # the head's start depends on the seed alone
                model = apply_state(model, resolved.architecture, state, rank=lora.rank, lora_alpha=lora.alpha,
                                    compensated=row["compensated"])  # fmt: skip
                if classifier:
                    train_head(model)
                config = TrainConfig(kind=KINDS[task],
                                     steps=settings.steps, batch_size=settings.batch_size,
                                     learning_rate=learning_rate, seed=seed, warmup_ratio=training.warmup_ratio,
                                     loss=training.loss, dsl=dsl if training.loss == "dsl" else {},
                                     checkpoint_every=training.checkpoint_every, device=training.device)  # fmt: skip
                run_dir.mkdir(parents=True, exist_ok=True)
                outcome = train(model, examples, config, tokenizer.pad_token_id, run_dir, checkpoint_dir)
                record = {"task": task, "init": name, "seed": seed, "learning_rate": learning_rate,
                          "loss": training.loss, "steps": settings.steps, "batch_size": settings.batch_size,
                          "final_loss": outcome["losses"][-1] if outcome["losses"] else None,
                          "first_loss": outcome["losses"][0] if outcome["losses"] else None,
                          "resumed_from_step": outcome["start_step"], "tokens": outcome["tokens"],
                          "seconds": outcome["seconds"], "tokens_per_s": outcome["tokens_per_s"],
                          "fingerprint": stamp}  # fmt: skip
                if main:
                    save_file(trainable_state(model), run_dir / "adapter.safetensors",
                              metadata={"init": name, "task": task})  # fmt: skip
                    (run_dir / "run.json").write_text(json.dumps(record, indent=1) + "\n")
                    shutil.copytree(run_dir, checkpoint_dir / "done", dirs_exist_ok=True)
                results.append(record)
                log.info("%s %s: loss %.4f -> %.4f", task, key, record["first_loss"] or 0, record["final_loss"] or 0)
                del model
    return results


def run_task(task: str, params, params_file: str = "params.yaml") -> list[dict]:
    """Stage 06 for one task of params.yaml, in the pipeline's folders; under ``training.launch``
    (e.g. ``accelerate launch --num_processes 4``) when it is set."""
    settings = params.training.task(task)
    if params.training.launch:
        command = [*shlex.split(params.training.launch), "-m", "distchar.stages.train", task, params_file]
        log.info("launching %s", " ".join(command))
        if subprocess.run(command).returncode != 0:
            raise DistcharError(f"Stage 06 under '{params.training.launch}' failed; see the processes' log above.")
        return [json.loads(path.read_text()) for path in sorted((OUT / task).glob("*/*/run.json"))]
    return run_training(task, params.model_source(settings.model),
                        Path("results/05_generator") / settings.model / "inits", params.training, params.lora,
                        OUT / task, CHECKPOINTS)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``python -m distchar.stages.train TASK [params.yaml]``; also under ``accelerate launch -m``."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m distchar.stages.train TASK [params.yaml]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s train %(levelname)s %(message)s")

    def work():
        params = load_params(args[1] if len(args) > 1 else "params.yaml")
        run_task(args[0], params.model_copy(update={"training": params.training.model_copy(update={"launch": ""})}))

    return command(work)


if __name__ == "__main__":
    raise SystemExit(main())

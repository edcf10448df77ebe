"""Stage 06 train: every init of ``lora.inits`` x every seed of ``lora.seeds`` x every learning rate
(a task may name its own subset of inits and seeds and its own rates, for every init or per init:
``TrainingParams.grid``).

For one task (``training.tasks.<task>``: its model, data, steps, batch size), each run starts from stage 05's
saved init (``results/05_generator/<model>/inits``), so every init of a seed shares the base model,
the data order and, for a classification task, the classifier head's initial weights: runs differ
by the adapter's start alone. What is task-specific (head, loss, examples) comes from the task's
record in ``distchar.tasks``. Outputs per run (``distchar.training.runs``), in
``<out>/<init>/seed<S>_lr<LR>/``: ``adapter.safetensors`` (the trained LoRA tensors, and the
task's ``head_modules``), ``run.json`` (settings, first and final loss, tokens; seconds, tokens/s and the step a
resumed run started from go to ``distchar.timings``) and ``dvclive/`` (loss, learning rate and gradient norm per step;
with the task's ``eval_every``, ``val/loss`` on ``curve_size`` validation examples).

Resuming: a run logs and checkpoints into ``<checkpoints>/<task>/<init>/seed<S>_lr<LR>/`` (its
dvclive history is saved with each checkpoint) and a finished run leaves its outputs there too,
in ``done/``, so ``dvc repro`` after a kill (which removes the stage's declared outputs first)
copies finished runs back and continues the interrupted one from its last checkpoint, its history
restored to that step. Each run's folder appears whole or not at all: ``done/`` and then the run's
output folder are assembled beside their place and renamed into it (``distchar.atomic``).
A checkpoint folder holds the fingerprint of its run (source, task settings, learning rate,
loss, LoRA rank, init file, the source of every distchar module the stage imports): a run whose
fingerprint changed starts over instead of reusing it. ``checkpoints/`` is not a DVC
output; delete it to start over.

Several processes (GPUs or nodes): with ``training.launch`` set (e.g. ``accelerate launch
--num_processes N``) the stage runs ``LAUNCH -m distchar.stages.train TASK params.yaml``: the same
runs, each batch split across the processes (docs/gpu.md, "Scaling the training"). The module run by
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
from safetensors.torch import load

from distchar.atomic import atomic_directory
from distchar.code_deps import closure
from distchar.config import LoraParams, TrainingParams, load_params
from distchar.errors import DistcharError, command
from distchar.evaluation.runs import validation_loss
from distchar.lora.inits import apply_state
from distchar.lora.saved import load_index
from distchar.models.loading import load_tokenizer
from distchar.models.sources import resolve_source
from distchar.progress import progress
from distchar.results import inits_folder, stage_folder
from distchar.tasks import get_task
from distchar.tensor_files import save_tensors
from distchar.timings import read_timings, write_timings
from distchar.training.loop import TrainConfig, process_state, train, trainable_state
from distchar.training.runs import ADAPTER, CHECKPOINTS, RECORD, run_name

log = logging.getLogger(__name__)
TIMED = ("seconds", "tokens_per_s", "resumed_from_step")
"""What a run record returned here has beyond its run.json: this machine's timings (``distchar.timings``,
kept in the checkpoint folder beside ``done/``, and for the task beside its output folder)."""
OUT = stage_folder("train")
LOGS = "dvclive"
"""A run's dvclive folder, in its checkpoint folder while it trains and in its output folder after."""


@functools.cache
def code_hash() -> str:
    """The source of every distchar module this stage imports (the import closure that dvc.yaml's
    deps of stage 06 cover, ``distchar.code_deps``)."""
    digest = hashlib.sha256()
    for path in closure(["distchar.stages.train"]):
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


def publish(done: Path, run_dir: Path) -> None:
    """A finished run's files into its output folder, whole or not at all."""
    with atomic_directory(run_dir) as scratch:
        shutil.copytree(done, scratch, dirs_exist_ok=True)


def start_head(model: torch.nn.Module) -> None:
    """A fresh classifier, drawn from the current seed (so every init of a seed shares it)."""
    model.classifier.reset_parameters()


def train_head(peft_model: torch.nn.Module, modules: frozenset[str]) -> None:
    """Every parameter of the task's ``head_modules`` trainable beside the adapter."""
    for name, parameter in peft_model.named_parameters():
        if modules & set(name.split(".")):
            parameter.requires_grad = True


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
    record_of = get_task(task)
    settings, grid = training.task(task), training.grid(task, lora)
    index = load_index(inits_dir, grid.inits, grid.seeds)
    resolved = resolve_source(source)
    tokenizer = load_tokenizer(resolved)
    examples = record_of.examples(settings.data, "train", tokenizer, settings.max_length, settings.train_size)
    validate = None
    if settings.eval_every:  # the validation-loss curve, on the same examples for every run
        curve = record_of.examples(settings.data, "validation", tokenizer, settings.max_length, settings.curve_size)
        validate = functools.partial(validation_loss, examples=curve, pad_id=tokenizer.pad_token_id)
    processes = process_state(training.device)
    main = processes.is_main_process
    base = record_of.load_model(resolved, tokenizer)
    classifier = record_of.loss_kind == "classification"
    dsl = {"b": training.dsl_lm_b} if record_of.loss_kind == "causal_lm" else {"b": training.dsl_b}
    results = []
    bar = progress(desc=f"train {task}", unit="run", disable=not main, total=grid.runs)
    for name in grid.inits:
        for seed in grid.seeds:
            row = index[(name, seed)]
            init_bytes = (Path(inits_dir) / row["file"]).read_bytes()
            state, init_hash = load(init_bytes), hashlib.sha256(init_bytes).hexdigest()
            for learning_rate in grid.learning_rates[name]:
                key = f"{name}/{run_name(seed, learning_rate)}"
                bar.set_postfix_str(key)
                run_dir, checkpoint_dir = Path(out_dir) / key, Path(checkpoint_root) / task / key
                stamp = fingerprint({"source": source, "settings": settings.model_dump(), "lr": learning_rate,
                                     "training": training.model_dump(exclude={"tasks", "learning_rates", "device",
                                                                              "checkpoint_every", "launch"}),
                                     "lora": [lora.rank, lora.alpha], "seed": seed, "init": init_hash})  # fmt: skip
                if main:
                    claim_checkpoint(checkpoint_dir, stamp)
                processes.wait_for_everyone()
                if (checkpoint_dir / "done" / RECORD).exists():
                    if main:
                        publish(checkpoint_dir / "done", run_dir)
                    results.append({**json.loads((checkpoint_dir / "done" / RECORD).read_text()),
                                    **read_timings(checkpoint_dir / "done")})  # fmt: skip
                    log.info("%s %s: finished earlier, copied", task, key)
                    bar.update()
                    continue
                torch.manual_seed(seed)
                model = copy.deepcopy(base)
                if classifier:
                    start_head(model)  # the head's start depends on the seed alone
                model = apply_state(model, resolved.architecture, state, rank=lora.rank, lora_alpha=lora.alpha,
                                    compensated=row["compensated"])  # fmt: skip
                if classifier:
                    train_head(model, record_of.head_modules)
                config = TrainConfig(kind=record_of.loss_kind,
                                     steps=settings.steps, batch_size=settings.batch_size,
                                     learning_rate=learning_rate, seed=seed, warmup_ratio=training.warmup_ratio,
                                     loss=training.loss, dsl=dsl if training.loss == "dsl" else {},
                                     checkpoint_every=training.checkpoint_every, device=training.device,
                                     eval_every=settings.eval_every)  # fmt: skip
                outcome = train(model, examples, config, tokenizer.pad_token_id, checkpoint_dir / LOGS, checkpoint_dir,
                                validate=validate)  # fmt: skip
                record = {"task": task, "init": name, "seed": seed, "learning_rate": learning_rate,
                          "loss": training.loss, "steps": settings.steps, "batch_size": settings.batch_size,
                          "final_loss": outcome["losses"][-1] if outcome["losses"] else None,
                          "first_loss": outcome["losses"][0] if outcome["losses"] else None,
                          "processes": outcome["processes"], "tokens": outcome["tokens"],
                          "fingerprint": stamp}  # fmt: skip
                timings = {"seconds": outcome["seconds"], "tokens_per_s": outcome["tokens_per_s"],
                           "resumed_from_step": outcome["start_step"]}  # fmt: skip
                if main:
                    with atomic_directory(checkpoint_dir / "done") as done:
                        save_tensors(trainable_state(model), done / ADAPTER, metadata={"init": name, "task": task})
                        (done / RECORD).write_text(json.dumps(record, indent=1) + "\n")
                        shutil.copytree(checkpoint_dir / LOGS, done / LOGS)
                    write_timings(checkpoint_dir / "done", timings)
                    publish(checkpoint_dir / "done", run_dir)
                results.append({**record, **timings})
                log.info("%s %s: loss %.4f -> %.4f", task, key, record["first_loss"] or 0, record["final_loss"] or 0)
                bar.update()
                del model
    bar.close()
    if main:
        write_timings(out_dir, {f"{r['init']}/{run_name(r['seed'], r['learning_rate'])}":
                                {k: r.get(k) for k in TIMED} for r in results})  # fmt: skip
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
        timings = read_timings(OUT / task)
        return [{**json.loads(path.read_text()), **timings.get(f"{path.parent.parent.name}/{path.parent.name}", {})}
                for path in sorted((OUT / task).glob(f"*/*/{RECORD}"))]  # fmt: skip
    return run_training(task, params.model_source(settings.model),
                        inits_folder(settings.model), params.training, params.lora,
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

"""The training loop of stage 06: AdamW on the trainable (LoRA) parameters, one process or many.

- **Devices and processes.** ``accelerate`` runs the loop: CUDA when present (``device: auto``),
  else the CPU; under ``accelerate launch --num_processes N`` every process draws the same seeded
  batch and takes its rows ``rank::N``. Each process computes its share of the whole batch's loss
  (global token and row counts, DSL's sums over every row: ``distchar.losses.Shards``) and
  backpropagates N times it, so after DDP averages the gradients N processes take the step one
  process takes with the whole batch, also when the processes hold different numbers of answer
  tokens (tested with 2 CPU processes over gloo).
- **Schedule.** Linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0;
  gradients clipped to ``max_grad_norm``.
- **Logging.** dvclive into ``log_dir``, on the main process: ``train/loss`` (the whole batch's),
  ``train/learning_rate``, ``train/grad_norm`` per step (``dvc plots show`` draws them); with
  ``eval_every`` and a ``validate`` function, ``val/loss`` before the first step, every
  ``eval_every`` steps and after the last (the validation-loss curve that shows a run has flattened;
  computed on the main process from the unwrapped model, in eval mode, drawing no random numbers).
- **Checkpoints.** Every ``checkpoint_every`` steps the trainable parameters, the optimizer, the
  schedule, the step, the random state, the losses, token count and seconds so far and the
  dvclive files go to ``checkpoint_dir/checkpoint.pt`` (written to a temporary file, then
  renamed: one file, so parameters and logs always belong to the same step). A run that finds one
  continues from it with its logs restored as they were at that step: a killed and resumed run
  ends with the history, first and final loss and token count of an unbroken one. A finished run
  deletes the checkpoint. Batches depend only on (seed, step), so a resumed run sees the batches
  it would have seen.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from distchar.losses import Shards, causal_lm_loss, classification_loss
from distchar.progress import progress
from distchar.training.batches import batches
from distchar.training.examples import Example

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    kind: Literal["causal_lm", "classification"]
    steps: int
    batch_size: int
    learning_rate: float
    seed: int = 0
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    loss: Literal["ce", "dsl"] = "ce"
    dsl: dict = field(default_factory=dict)
    checkpoint_every: int = 10
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_every: int = 0


def process_state(device: str):
    """accelerate's state of this process, on the CPU unless ``device`` allows CUDA and it is there.
    Made first, with ``cpu`` set: a default ``PartialState()`` on a machine without CUDA sees one
    process even under ``torchrun`` (and every later ``Accelerator`` shares what it saw)."""
    from accelerate import PartialState

    return PartialState(cpu=device == "cpu" or not torch.cuda.is_available())


def schedule(steps: int, warmup_ratio: float):
    warmup = max(1, round(steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return factor


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def read_logs(log_dir: Path) -> dict[str, bytes]:
    """Every file under ``log_dir`` by its relative path."""
    return {p.relative_to(log_dir).as_posix(): p.read_bytes() for p in sorted(Path(log_dir).rglob("*")) if p.is_file()}


def restore_logs(log_dir: Path, files: dict[str, bytes]) -> None:
    """``log_dir`` as ``read_logs`` saw it: later steps (logged after the checkpoint) are gone."""
    shutil.rmtree(log_dir, ignore_errors=True)
    for name, data in files.items():
        (Path(log_dir) / name).parent.mkdir(parents=True, exist_ok=True)
        (Path(log_dir) / name).write_bytes(data)


def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".partial")
    torch.save(state, scratch)
    os.replace(scratch, path)


def train(
    model: torch.nn.Module,
    examples: list[Example],
    config: TrainConfig,
    pad_id: int,
    log_dir: Path,
    checkpoint_dir: Path,
    accelerator=None,
    validate: Callable[[torch.nn.Module], float] | None = None,
) -> dict:
    """Train ``model`` in place, logging to ``log_dir`` (dvclive); returns the step it started at,
    the number of processes, every step's loss, tokens, seconds and tokens per second (of the
    whole run, resumed or not). ``validate`` (model -> validation loss) draws the curve of
    ``config.eval_every``."""
    from accelerate import Accelerator

    if accelerator is None:
        process_state(config.device)
        accelerator = Accelerator(cpu=config.device == "cpu" or not torch.cuda.is_available())
    torch.manual_seed(config.seed)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(config.steps, config.warmup_ratio))
    checkpoint = Path(checkpoint_dir) / "checkpoint.pt"
    start, losses, tokens, earlier_seconds = 0, [], 0, 0.0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start, losses, tokens, earlier_seconds = state["step"], state["losses"], state["tokens"], state["seconds"]
        if accelerator.is_main_process:
            restore_logs(log_dir, state["logs"])
        log.info("resumed at step %d from %s", start, checkpoint)
    elif accelerator.is_main_process:
        shutil.rmtree(log_dir, ignore_errors=True)  # a run's history starts with its step 0
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    live = None
    if accelerator.is_main_process:
        from dvclive import Live

        live = Live(dir=str(log_dir), resume=start > 0, save_dvc_exp=False, dvcyaml=None)
        live.step = start  # dvclive reads a resumed step of 1 as 0
    shards = Shards(accelerator.num_processes, accelerator.process_index, accelerator.gather)
    rank, world = shards.rank, shards.world
    loss_of = causal_lm_loss if config.kind == "causal_lm" else classification_loss

    def log_validation(done: int) -> None:
        """``val/loss`` after ``done`` steps, when the curve has a point there."""
        if live is None or validate is None or not config.eval_every:
            return
        if done % config.eval_every and done != config.steps:
            return
        nonlocal started
        began, module = time.perf_counter(), accelerator.unwrap_model(model)
        module.eval()
        live.log_metric("val/loss", validate(module))
        module.train()
        started += time.perf_counter() - began  # seconds and tokens/s are the training's alone

    started = time.perf_counter()
    if start == 0:
        log_validation(0)
    steps = progress(batches(examples, config.batch_size, config.steps, config.seed, pad_id, start), desc="steps",
                     unit="step", total=config.steps, initial=start, leave=False,
                     disable=not accelerator.is_main_process)  # fmt: skip
    for step, batch in steps:
        batch = {k: v[rank::world].to(accelerator.device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        share = loss_of(logits, batch["labels"], config.loss, shards=shards, **config.dsl)
        accelerator.backward(share * world)  # DDP averages: world x share sums the shares' gradients
        grad_norm = accelerator.clip_grad_norm_(parameters, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        batch_loss = shards.total(share).item()
        tokens += int(shards.total(batch["attention_mask"].sum()).item())
        losses.append(batch_loss)
        if live is not None:
            live.log_metric("train/loss", batch_loss)
            live.log_metric("train/learning_rate", scheduler.get_last_lr()[0])
            live.log_metric("train/grad_norm", float(grad_norm))
            live.next_step()
            log_validation(step + 1)
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps and accelerator.is_main_process:
            _save_checkpoint(checkpoint, {
                "step": step + 1, "model": trainable_state(accelerator.unwrap_model(model)),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(),
                "losses": losses, "tokens": tokens, "seconds": earlier_seconds + time.perf_counter() - started,
                "logs": read_logs(log_dir)})  # fmt: skip
        accelerator.wait_for_everyone()
    seconds = earlier_seconds + time.perf_counter() - started
    if live is not None:
        live.end()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process and checkpoint.exists():
        checkpoint.unlink()
    model.eval()
    return {"start_step": start, "steps": config.steps, "processes": world, "losses": losses, "tokens": tokens,
            "seconds": seconds, "tokens_per_s": tokens / seconds if seconds > 0 else float("nan")}  # fmt: skip

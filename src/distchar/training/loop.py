"""The training loop of stage 06: AdamW on the trainable (LoRA) parameters, one process or many.

- **Devices and processes.** ``accelerate`` runs the loop: CUDA when present (``device: auto``),
  else the CPU; under ``accelerate launch --num_processes N`` every process draws the same seeded
  batch and takes its rows ``rank::N``, and DDP averages the gradients, so N processes compute
  what one does with the whole batch (tested with 2 CPU processes over gloo).
- **Schedule.** Linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0;
  gradients clipped to ``max_grad_norm``.
- **Logging.** dvclive, on the main process: ``train/loss``, ``train/learning_rate``,
  ``train/grad_norm`` per step (``dvc plots show`` draws them).
- **Checkpoints.** Every ``checkpoint_every`` steps the trainable parameters, the optimizer, the
  schedule, the step and the random state go to ``checkpoint_dir/checkpoint.pt`` (written to a
  temporary file, then renamed). A run that finds one continues from it; a finished run deletes
  it. Batches depend only on (seed, step), so a resumed run sees the batches it would have seen.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from distchar.losses import causal_lm_loss, classification_loss
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


def schedule(steps: int, warmup_ratio: float):
    warmup = max(1, round(steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return factor


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def _save_checkpoint(path: Path, model, optimizer, scheduler, step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".partial")
    torch.save({"step": step, "model": trainable_state(model), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()}, scratch)  # fmt: skip
    os.replace(scratch, path)


def train(
    model: torch.nn.Module,
    examples: list[Example],
    config: TrainConfig,
    pad_id: int,
    run_dir: Path,
    checkpoint_dir: Path,
    accelerator=None,
) -> dict:
    """Train ``model`` in place; returns steps, losses, tokens, seconds and tokens per second."""
    from accelerate import Accelerator

    if accelerator is None:
        accelerator = Accelerator(cpu=config.device == "cpu" or not torch.cuda.is_available())
    torch.manual_seed(config.seed)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(config.steps, config.warmup_ratio))
    checkpoint = Path(checkpoint_dir) / "checkpoint.pt"
    start = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start = state["step"]
        log.info("resumed at step %d from %s", start, checkpoint)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    live = None
    if accelerator.is_main_process:
        from dvclive import Live

        live = Live(dir=str(Path(run_dir) / "dvclive"), resume=start > 0, save_dvc_exp=False, dvcyaml=None)
    rank, world = accelerator.process_index, accelerator.num_processes
    loss_of = causal_lm_loss if config.kind == "causal_lm" else classification_loss
    losses, tokens, started = [], 0, time.perf_counter()
    for step, batch in batches(examples, config.batch_size, config.steps, config.seed, pad_id, start):
        batch = {k: v[rank::world].to(accelerator.device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = loss_of(logits, batch["labels"], config.loss, **config.dsl)
        accelerator.backward(loss)
        grad_norm = accelerator.clip_grad_norm_(parameters, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        mean_loss = accelerator.reduce(loss.detach(), reduction="mean").item()
        tokens += int(accelerator.reduce(batch["attention_mask"].sum(), reduction="sum").item())
        losses.append(mean_loss)
        if live is not None:
            live.log_metric("train/loss", mean_loss)
            live.log_metric("train/learning_rate", scheduler.get_last_lr()[0])
            live.log_metric("train/grad_norm", float(grad_norm))
            live.next_step()
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps and accelerator.is_main_process:
            _save_checkpoint(checkpoint, accelerator.unwrap_model(model), optimizer, scheduler, step + 1)
        accelerator.wait_for_everyone()
    seconds = time.perf_counter() - started
    if live is not None:
        live.end()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process and checkpoint.exists():
        checkpoint.unlink()
    model.eval()
    return {"start_step": start, "steps": config.steps, "losses": losses, "tokens": tokens, "seconds": seconds,
            "tokens_per_s": tokens / seconds if seconds > 0 else float("nan")}  # fmt: skip

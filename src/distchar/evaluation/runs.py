"""A trained run of stage 06, restored for evaluation, and its validation loss.

``restore_run`` rebuilds a trained model from the base model, its stage-05 init (which for the
compensated inits also changed the base weights) and the trained tensors of stage 06, then merges
the adapter so evaluation runs at the base model's speed. ``validation_loss`` (per answer token for
a causal LM, per example for a classifier) picks each init's learning rate; the test metrics are
the task's (``distchar.tasks``).
"""

from __future__ import annotations

import copy

import torch

from distchar.errors import DistcharError
from distchar.lora.inits import apply_state
from distchar.training.batches import collate
from distchar.training.examples import IGNORE, Example


def restore_run(base, architecture, init_state: dict, compensated: bool, rank: int, lora_alpha: float,
                trained: dict[str, torch.Tensor]) -> torch.nn.Module:  # fmt: skip
    """The trained model of one run, adapter merged into the weights."""
    model = apply_state(copy.deepcopy(base), architecture, init_state, rank=rank, lora_alpha=lora_alpha,
                        compensated=compensated)  # fmt: skip
    result = model.load_state_dict(trained, strict=False)
    if result.unexpected_keys:
        raise DistcharError(f"A trained adapter holds tensors this model lacks, e.g. {result.unexpected_keys[0]}.")
    return model.merge_and_unload().eval()


@torch.no_grad()
def validation_loss(model, examples: list[Example], pad_id: int, batch_size: int = 32) -> float:
    """Mean cross-entropy: per answer token for a causal LM, per example for a classifier."""
    total, count, device = 0.0, 0, next(model.parameters()).device
    for start in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in collate(examples[start : start + batch_size], pad_id).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        labels = batch["labels"]
        if labels.ndim == 2:  # causal LM: the logit at t predicts the token at t + 1
            logits, labels = logits[:, :-1], labels[:, 1:]
            mask = labels != IGNORE
            losses = torch.nn.functional.cross_entropy(logits[mask], labels[mask], reduction="sum")
            total, count = total + float(losses), count + int(mask.sum())
        else:
            total += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            count += len(labels)
    return total / count if count else float("nan")

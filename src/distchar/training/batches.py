"""Batches of training examples for torch: right-padded ids, attention mask, labels."""

from __future__ import annotations

import torch

from distchar.errors import DistcharError
from distchar.training.examples import IGNORE, Example


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask, labels (token labels padded with -100)."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    token_labels = isinstance(examples[0].labels, list)
    labels = (
        torch.full((len(examples), width), IGNORE, dtype=torch.long)
        if token_labels
        else torch.empty(len(examples), dtype=torch.long)
    )
    for i, e in enumerate(examples):
        ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[i, : len(e.input_ids)] = 1
        if token_labels:
            labels[i, : len(e.labels)] = torch.tensor(e.labels)
        else:
            labels[i] = e.labels
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def batches(examples: list[Example], batch_size: int, steps: int, seed: int, pad_id: int, start: int = 0):
    """``steps`` batches drawn by epochs of a seeded shuffle; ``start`` skips the first ones (resume)."""
    if not examples:
        raise DistcharError("The task has no training examples.")
    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    for step in range(steps):
        while len(order) < batch_size:
            order += torch.randperm(len(examples), generator=generator).tolist()
        chosen, order = order[:batch_size], order[batch_size:]
        if step >= start:
            yield step, collate([examples[i] for i in chosen], pad_id)

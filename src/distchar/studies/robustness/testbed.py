"""The offline testbed of study 09: scikit-learn's 8x8 digits, a small CNN and an MLP, three losses.

The 1797 digit images ship inside scikit-learn's wheel, so nothing is downloaded. Pixels are scaled
from 0..16 to [0, 1] (the box the attacks keep inputs in) and shaped 1 x 8 x 8. One stratified
train/test split (fixed, ``SPLIT_SEED``) serves every run; a run's seed sets the weights' start and
the order of the batches, so the runs of one seed under different losses are paired.

Losses (``LossSpec``): ``ce``; ``dsl`` with coefficient b (``distchar.losses.dsl_classification``,
a = 1); ``label_smoothing`` with its smoothing, the other way to flatten the non-target softmax.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from distchar.errors import DistcharError
from distchar.losses import classification_loss

SPLIT_SEED = 0
N_CLASSES = 10


@dataclass(frozen=True)
class DigitsSplit:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    attacked: np.ndarray
    """Indices into the test split of the images every attack runs on (stratified, fixed)."""


def digits_split(test_fraction: float = 0.3, attack_examples: int = 200) -> DigitsSplit:
    """The digits as (N, 1, 8, 8) float tensors in [0, 1], split stratified with ``SPLIT_SEED``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(labels, dtype=torch.long)
    train, test = train_test_split(np.arange(len(y)), test_size=test_fraction, stratify=labels,
                                   random_state=SPLIT_SEED)  # fmt: skip
    n_attacked = min(attack_examples, len(test))
    if n_attacked < len(test):
        attacked, _ = train_test_split(np.arange(len(test)), train_size=n_attacked, stratify=labels[test],
                                       random_state=SPLIT_SEED)  # fmt: skip
        attacked = np.sort(attacked)
    else:
        attacked = np.arange(len(test))
    return DigitsSplit(x[train], y[train], x[test], y[test], attacked)


def build_classifier(architecture: str) -> nn.Module:
    """``mlp``: 64-128-128-10 with ReLU; ``cnn``: two 3x3 convolutions (16, 32 channels), a 2x2
    max-pool and a 64-unit hidden layer. Both end in logits."""
    if architecture == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                             nn.Linear(128, N_CLASSES))  # fmt: skip
    if architecture == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, N_CLASSES),
        )  # fmt: skip
    raise ValueError(f"Unknown architecture '{architecture}'; choose 'mlp' or 'cnn'.")


@dataclass(frozen=True)
class LossSpec:
    """One training loss: ``kind`` (ce, dsl, label_smoothing) and its coefficient (b, or the smoothing)."""

    kind: str
    value: float | None = None
    reduction: str = "sum"

    @property
    def label(self) -> str:
        if self.kind == "ce":
            return "ce"
        if self.kind == "dsl":
            return f"dsl b={self.value:g}"
        return f"ls {self.value:g}"

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.kind == "dsl":
            return classification_loss(logits, labels, "dsl", b=self.value, reduction=self.reduction)
        if self.kind == "label_smoothing":
            return classification_loss(logits, labels, "label_smoothing", smoothing=self.value)
        return classification_loss(logits, labels, "ce")


def loss_specs(losses, dsl_b, label_smoothing: float, reduction: str = "sum") -> list[LossSpec]:
    """The losses of a study, in order: ``dsl`` expands to one spec per coefficient."""
    specs: list[LossSpec] = []
    for kind in losses:
        if kind == "dsl":
            specs += [LossSpec("dsl", float(b), reduction) for b in dsl_b]
        elif kind == "label_smoothing":
            specs.append(LossSpec("label_smoothing", float(label_smoothing)))
        else:
            specs.append(LossSpec("ce"))
    return specs


def train_classifier(
    architecture: str, loss: LossSpec, seed: int, split: DigitsSplit, epochs: int = 30, batch_size: int = 64,
    learning_rate: float = 1e-3,
) -> tuple[nn.Module, float]:  # fmt: skip
    """Train with Adam on the training split; returns the model in eval mode and the seconds taken.

    A loss that turns non-finite stops the run with the loss, epoch and seed named."""
    torch.manual_seed(seed)
    model = build_classifier(architecture)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    order = torch.Generator().manual_seed(seed)
    n = len(split.y_train)
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        permutation = torch.randperm(n, generator=order)
        for first in range(0, n, batch_size):
            batch = permutation[first : first + batch_size]
            optimiser.zero_grad(set_to_none=True)
            value = loss(model(split.x_train[batch]), split.y_train[batch])
            if not torch.isfinite(value):
                raise DistcharError(
                    f"Training {architecture} with {loss.label} (seed {seed}) diverged in epoch {epoch + 1}: the loss "
                    f"is {value.item()}; lower robustness.learning_rate or the coefficient."
                )
            value.backward()
            optimiser.step()
    return model.eval(), time.perf_counter() - start


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The logits of ``model`` on ``x`` (no gradients)."""
    return model(x)

"""Benchmark: the training step with the distribution-restrained softmax loss against cross-entropy.

- ``overhead``: the median time of one training step (forward, loss, backward, Adam step) of study
  09's CNN with DSL (b = 0.01, the authors' sum reduction) divided by the same step with CE, minus 1
  (0.05 means 5% slower). Same model start, same batches (64 digits, study 09's batch size).
  Goal <= 0.05.
- ``overhead_mlp``: the same for study 09's MLP, whose step is so small that the loss is a larger
  share of it; ``overhead_loss_only``: the loss's own forward and backward, DSL over CE, on the
  CNN's logits (what the overhead is made of).

Each step is timed on its own and the two losses alternate step by step (CE, DSL, DSL, CE, ...,
the same batch for both), ``STEPS`` each after ``WARMUP``, in one process on one thread (as the
study's workers run): this machine's speed drifts over seconds, and alternating single steps
cancels the drift that alternating blocks of steps does not. The figures are medians of the steps.

Results: benchmarks/results/dsl_overhead.json. Run: python benchmarks/dsl_overhead.py
"""

from __future__ import annotations

import statistics
import time

import torch
from common import write_results

from distchar.studies.robustness.testbed import LossSpec, build_classifier, digits_split

WARMUP, STEPS, BATCH = 50, 3000, 64
LOSSES = {"ce": LossSpec("ce"), "dsl": LossSpec("dsl", 0.01, "sum")}


def step_times(architecture: str) -> dict[str, float]:
    """Median seconds per training step of ``architecture`` under each loss."""
    split = digits_split()
    models, optimisers = {}, {}
    for name in LOSSES:
        torch.manual_seed(0)
        models[name] = build_classifier(architecture)
        optimisers[name] = torch.optim.Adam(models[name].parameters(), lr=1e-3)
    starts = range(0, len(split.y_train) - BATCH + 1, BATCH)
    batches = [(split.x_train[i : i + BATCH], split.y_train[i : i + BATCH]) for i in starts]

    def step(name: str, x: torch.Tensor, y: torch.Tensor) -> float:
        model, optimiser, loss = models[name], optimisers[name], LOSSES[name]
        started = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        loss(model(x), y).backward()
        optimiser.step()
        return time.perf_counter() - started

    times: dict[str, list[float]] = {name: [] for name in LOSSES}
    for i in range(WARMUP + STEPS):
        x, y = batches[i % len(batches)]
        for name in LOSSES if i % 2 == 0 else list(LOSSES)[::-1]:
            seconds = step(name, x, y)
            if i >= WARMUP:
                times[name].append(seconds)
    return {name: statistics.median(t) for name, t in times.items()}


def loss_only_times() -> dict[str, float]:
    """Median seconds of the loss's forward and backward on a batch of CNN-sized logits."""
    torch.manual_seed(0)
    logits = torch.randn(BATCH, 10, requires_grad=True)
    labels = torch.randint(0, 10, (BATCH,))
    times: dict[str, list[float]] = {name: [] for name in LOSSES}
    for i in range(WARMUP + STEPS):
        for name in LOSSES if i % 2 == 0 else list(LOSSES)[::-1]:
            started = time.perf_counter()
            LOSSES[name](logits, labels).backward()
            if i >= WARMUP:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    torch.set_num_threads(1)
    cnn, mlp, loss_only = step_times("cnn"), step_times("mlp"), loss_only_times()
    write_results("dsl_overhead", {
        "overhead": round(cnn["dsl"] / cnn["ce"] - 1, 4),
        "overhead_mlp": round(mlp["dsl"] / mlp["ce"] - 1, 4),
        "overhead_loss_only": round(loss_only["dsl"] / loss_only["ce"] - 1, 4),
        "step_ms": {"cnn": {k: round(1e3 * v, 4) for k, v in cnn.items()},
                    "mlp": {k: round(1e3 * v, 4) for k, v in mlp.items()},
                    "loss_only": {k: round(1e3 * v, 4) for k, v in loss_only.items()}},
        "batch": BATCH, "steps": STEPS, "warmup_steps": WARMUP, "threads": 1, "dsl": "b=0.01, reduction sum",
        "goal": "overhead <= 0.05",
    })  # fmt: skip


if __name__ == "__main__":
    main()

"""The distribution-restrained softmax loss (DSL; Wang et al. 2023, arXiv 2303.12363) beside plain CE.

DSL adds to cross-entropy a term that flattens the non-target part of the softmax, which the paper
links to robustness. Two variants, after the authors' code (in their later repository for arXiv
2402.03627):

- **Classification** (logits z of shape B x C, labels y): L = a CE + b P with
  P = sum over the non-target classes j of (z_ij - m_i)^2, m_i the mean non-target logit. Two
  reductions: ``"sum"`` is the authors' code (P summed over the batch, m_i = sum_j z_ij / C,
  their division by C rather than C - 1; b = 1e-3) and ``"mean"`` the mean-reduced variant
  (P averaged over the batch, m_i the true mean over the C - 1 non-targets; b = 5e-3). With
  ``"mean"``, P is (C - 1) times the variance of the non-target log-probabilities: the term pushes
  the non-target classes toward uniform. CE is always the batch mean.
- **Language model** (logits B x T x V, labels B x T, ``ignore_index`` masked): for every counted
  token i, x_i is the mean of its top non-target logits ranked ``start`` to ``end`` (descending,
  the target excluded; ``torch.topk``, never a sort of the vocabulary); L = a CE + b
  (-sum_i log_softmax(x)_i), the log-softmax taken across the counted tokens; b = 1e-5 to 1e-6.

**Several processes.** Under data parallelism each process holds some rows of the batch, and
the whole batch's loss is what every formula above means. So each loss takes ``shards``
(``Shards``: the number of processes and a gather across them) and returns this process's
*share*: normalisers are global (all-reduced token or row counts), DSL's batch sums are summed
over every process's rows, and the language-model DSL's log-softmax runs across every process's
tokens. The shares of all processes add up to the whole batch's loss, and the sum of their
gradients is its gradient: the loop backpropagates ``world x share`` (DDP averages gradients)
and reports ``shards.total(share)``. With one process (``shards=None``) the share is the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from distchar.errors import DistcharError

Reduction = Literal["sum", "mean"]
DEFAULT_B = {"sum": 1e-3, "mean": 5e-3}


@dataclass(frozen=True)
class Shards:
    """How one batch is split over processes: ``world`` processes, this one is ``rank``, and
    ``gather`` concatenates a 1-d tensor from every process in rank order (without gradient;
    ``accelerator.gather``). Every process must call the loss: the counts are gathered inside."""

    world: int = 1
    rank: int = 0
    gather: Callable[[torch.Tensor], torch.Tensor] = lambda t: t

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of a scalar over every process (no gradient)."""
        return self.gather(value.detach().reshape(1)).sum()

    def global_count(self, count: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """A count summed over every process, at least 1 (an empty batch has a zero loss), in
        ``like``'s dtype and device."""
        counted = torch.as_tensor(count, dtype=torch.float64, device=like.device)
        return self.total(counted).clamp_min(1.0).to(like.dtype)


ONE_PROCESS = Shards()


def non_target_penalty(logits: torch.Tensor, labels: torch.Tensor, reduction: Reduction = "sum") -> torch.Tensor:
    """P of the classification DSL: squared deviations of the non-target logits from their mean."""
    if logits.ndim != 2:
        raise DistcharError(f"DSL classification needs logits of shape (batch, classes), not {tuple(logits.shape)}.")
    n_classes = logits.shape[1]
    if n_classes < 2:
        raise DistcharError("DSL needs at least two classes.")
    target = F.one_hot(labels, n_classes).bool()
    non_target = logits.masked_fill(target, 0.0)
    divisor = n_classes if reduction == "sum" else n_classes - 1
    mean = non_target.sum(dim=1, keepdim=True) / divisor
    squared = ((logits - mean) ** 2).masked_fill(target, 0.0).sum(dim=1)
    return squared.sum() if reduction == "sum" else squared.mean()


def dsl_classification(
    logits: torch.Tensor,
    labels: torch.Tensor,
    a: float = 1.0,
    b: float | None = None,
    reduction: Reduction = "sum",
    shards: Shards | None = None,
) -> torch.Tensor:
    """a CE + b P; ``b`` defaults to the variant's own (1e-3 for ``sum``, 5e-3 for ``mean``).

    Computed in one pass with its gradient (``_FusedDsl``): the same value and gradient as
    ``a * F.cross_entropy + b * non_target_penalty`` through autograd (a test holds it to that),
    in about two thirds of the time, which matters where a training step is small."""
    if reduction not in DEFAULT_B:
        raise DistcharError(f"DSL reduction must be 'sum' or 'mean', not '{reduction}'.")
    if logits.ndim != 2 or logits.shape[1] < 2:
        non_target_penalty(logits, labels, reduction)  # raises the sentence for the shape
    b = DEFAULT_B[reduction] if b is None else b
    rows = (shards or ONE_PROCESS).global_count(logits.shape[0], logits)
    return _FusedDsl.apply(logits, labels, float(a), float(b), reduction, float(rows))


class _FusedDsl(torch.autograd.Function):
    """a CE + b P and its gradient with respect to the logits, computed together in the forward pass.

    With p = softmax(z), t the target, N the non-targets, d the divisor of the mean (C for
    ``sum``, C - 1 for ``mean``), m = sum_N z_j / d and c_j = z_j - m on N (0 at t):
    dCE/dz = (p - onehot(t)) / B and dP/dz_j = 2 c_j - (2 / d) sum_N c_k on N, 0 at t (divided by
    B for ``mean``), B the rows of the whole batch over every process. About 20 tensor
    operations without autograd's bookkeeping, against about 35 operations forward and backward
    through autograd."""

    @staticmethod
    def forward(ctx, logits, labels, a, b, reduction, rows):
        value, grad = _dsl_value_and_grad(logits.detach(), labels, a, b, reduction, rows)
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None, None, None, None


def _dsl_value_and_grad(z: torch.Tensor, y: torch.Tensor, a: float, b: float, reduction: str, n: float):
    """The share of these rows in a CE + b P over a batch of ``n`` rows, and its gradient."""
    n_classes = z.shape[1]
    divisor = n_classes if reduction == "sum" else n_classes - 1
    log_p = torch.log_softmax(z, dim=1)
    index = y[:, None]
    target = torch.zeros_like(z, dtype=torch.bool).scatter_(1, index, True)
    mean = (z.sum(dim=1, keepdim=True) - z.gather(1, index)) / divisor
    centred = (z - mean).masked_fill_(target, 0.0)
    penalty = centred.square().sum()
    grad = (2.0 * centred).sub_(centred.sum(dim=1, keepdim=True), alpha=2.0 / divisor).masked_fill_(target, 0.0)
    if reduction == "mean":
        penalty, grad = penalty / n, grad.div_(n)
    ce = -log_p.gather(1, index).sum() / n
    grad.mul_(b).add_(log_p.exp_().sub_(target.to(z.dtype)), alpha=a / n)
    return a * ce + b * penalty, grad


def top_non_target_mean(logits: torch.Tensor, labels: torch.Tensor, start: int = 0, end: int = 4) -> torch.Tensor:
    """Per row of ``logits`` (N x V): the mean of the non-target logits ranked ``start``..``end`` - 1."""
    if not 0 <= start < end or end >= logits.shape[-1]:
        raise DistcharError(f"DSL top range [{start}:{end}] must satisfy 0 <= start < end < vocabulary size.")
    values, indices = torch.topk(logits, end + 1, dim=-1)
    values = values.masked_fill(indices == labels[:, None], float("-inf"))
    values = torch.sort(values, dim=-1, descending=True).values  # end + 1 entries: cheap
    return values[:, start:end].mean(dim=-1)


def dsl_language_model(
    logits: torch.Tensor,
    labels: torch.Tensor,
    a: float = 1.0,
    b: float = 1e-5,
    start: int = 0,
    end: int = 4,
    ignore_index: int = -100,
    shards: Shards | None = None,
) -> torch.Tensor:
    """a CE + b (-sum log_softmax over tokens of x), on already shifted ``logits`` (B x T x V) and ``labels``.

    Over processes: -sum_i log_softmax(x)_i = N lse(x) - sum_i x_i, N the counted tokens of the
    whole batch and lse the log-sum-exp of every process's x. This process's share of the value
    is N_here lse - sum_here x_i; of the gradient, N d lse / dx_here - 1 (lse with every other
    process's part held constant): the two differ, so the share carries the value of the one and
    the gradient of the other."""
    shards = shards or ONE_PROCESS
    flat_logits = logits.reshape(-1, logits.shape[-1])
    flat_labels = labels.reshape(-1)
    counted = flat_labels != ignore_index
    n_here = counted.sum()
    n_all = shards.global_count(n_here, logits)
    ce = F.cross_entropy(flat_logits, flat_labels, ignore_index=ignore_index, reduction="sum") / n_all
    x = top_non_target_mean(flat_logits[counted], flat_labels[counted], start, end)
    lse_here = torch.logsumexp(x, dim=0) if x.numel() else x.new_tensor(float("-inf"))
    parts = shards.gather(lse_here.detach().reshape(1))
    if not torch.isfinite(parts).any():  # no counted token in the whole batch
        return a * ce
    lse = torch.logsumexp(torch.cat([parts[: shards.rank], lse_here.reshape(1), parts[shards.rank + 1 :]]), 0)
    value_part = n_here * lse.detach()
    gradient_part = n_all * lse
    spread = value_part + (gradient_part - gradient_part.detach()) - x.sum()
    return a * ce + b * spread


def causal_lm_loss(
    logits: torch.Tensor, labels: torch.Tensor, name: str = "ce", shards: Shards | None = None, **options
) -> torch.Tensor:
    """The next-token loss of a causal LM (``labels`` aligned with ``logits``; shifted here); this
    process's share of it under ``shards``."""
    shifted_logits, shifted_labels = logits[:, :-1, :], labels[:, 1:]
    if name == "ce":
        tokens = (shards or ONE_PROCESS).global_count((shifted_labels != -100).sum(), logits)
        total = F.cross_entropy(shifted_logits.reshape(-1, shifted_logits.shape[-1]), shifted_labels.reshape(-1),
                                ignore_index=-100, reduction="sum")  # fmt: skip
        return total / tokens
    if name == "dsl":
        return dsl_language_model(shifted_logits, shifted_labels, shards=shards, **options)
    raise DistcharError(f"Unknown loss '{name}'; choose 'ce' or 'dsl'.")


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, name: str = "ce", shards: Shards | None = None, **options
) -> torch.Tensor:
    """The loss of a classifier: ``ce``, ``dsl`` (options: a, b, reduction) or ``label_smoothing``
    (option: smoothing), CE against targets that give every non-target class smoothing / C: the
    other standard way to flatten the non-target softmax. This process's share under ``shards``."""
    if name == "dsl":
        return dsl_classification(logits, labels, shards=shards, **options)
    rows = (shards or ONE_PROCESS).global_count(logits.shape[0], logits)
    if name == "ce":
        return F.cross_entropy(logits, labels, reduction="sum") / rows
    if name == "label_smoothing":
        smoothing = options.get("smoothing", 0.1)
        return F.cross_entropy(logits, labels, label_smoothing=smoothing, reduction="sum") / rows
    raise DistcharError(f"Unknown loss '{name}'; choose 'ce', 'dsl' or 'label_smoothing'.")

"""The paper's observation: does an attack succeed more often where the non-target softmax is uneven?

Wang et al. (2023) link robustness to how flat the non-target part of the softmax is. Per clean,
correctly classified image, two spreads:

- ``spread``: the standard deviation of the C - 1 non-target softmax probabilities (the paper's
  quantity). It shrinks with the target's confidence: when p_target is near 1 every non-target
  probability is near 0, so it also measures how confident the model is.
- ``shape_spread``: the standard deviation of the non-target probabilities renormalised to sum 1,
  p_j / (1 - p_target): the unevenness alone, without the confidence.

``margin`` (target logit minus the largest other) is kept beside them, the quantity attacks work on.
``correlation`` is Spearman's rank correlation of a spread with attack success (1 = the attack
changed a correct prediction), computed within each trained model (seed) and then summarised over
seeds: the mean rho, its t interval and the sign-flip p over seeds. The unit that varies is the
trained model: the same images scored by three models are not three times as many images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from distchar.statistics import seed_interval, sign_flip_p


@torch.no_grad()
def non_target_spreads(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    """Per row: ``spread``, ``shape_spread`` and ``margin`` (see the module docstring)."""
    probabilities = torch.softmax(logits.double(), dim=1)
    target = torch.nn.functional.one_hot(labels, logits.shape[1]).bool()
    others = probabilities[~target].reshape(len(labels), -1)
    shape = others / others.sum(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    best_other = logits.masked_fill(target, float("-inf")).max(dim=1).values
    margin = logits.gather(1, labels[:, None]).squeeze(1) - best_other
    return {
        "spread": others.std(dim=1, unbiased=False).numpy(),
        "shape_spread": shape.std(dim=1, unbiased=False).numpy(),
        "margin": margin.double().numpy(),
    }


@dataclass(frozen=True)
class Correlation:
    rho: float
    low: float
    high: float
    p: float
    p_min: float
    seeds: int
    images: int
    success_rate: float

    def as_dict(self) -> dict:
        return asdict(self)


def correlation(spread, success, seeds, confidence: float = 0.95) -> Correlation:
    """Spearman's rho of ``spread`` with ``success`` (0/1) within each seed's images (``seeds``
    labels each image), then over seeds (see the module docstring). A seed whose images share one
    outcome has no rho and is left out; with none left, rho is NaN."""
    from scipy.stats import spearmanr

    x, s, labels = np.asarray(spread, dtype=float), np.asarray(success, dtype=float), np.asarray(seeds)
    rhos = []
    for label in dict.fromkeys(labels.tolist()):
        pick = labels == label
        if pick.sum() >= 3 and s[pick].min() != s[pick].max():
            rhos.append(float(spearmanr(x[pick], s[pick]).statistic))
    rate = float(s.mean()) if len(s) else np.nan
    if not rhos:
        return Correlation(np.nan, np.nan, np.nan, np.nan, np.nan, 0, len(x), rate)
    mean, low, high = seed_interval(rhos, confidence)
    p, p_min = sign_flip_p(rhos)
    return Correlation(mean, low, high, p, p_min, len(rhos), len(x), rate)

"""The attacks of study 09, all from torchattacks 3.5.1, and what each says about one model.

- **FGSM** and **PGD** (L-infinity, over the radii ``epsilons``; PGD with a random start, step size
  epsilon / 4 and ``pgd_steps`` steps): the white-box attacks of the paper.
- **CW** (Carlini-Wagner L2, constant ``cw_c``): unbounded, so nearly every image falls; what it
  measures is the L2 distance it needed (larger: more robust). As in the authors' code, it works in
  tanh space, where pixels at exactly 0 or 1 (most of a digit's background) hardly move.
- **Square** (black box, L-infinity at ``epsilon``, ``square_queries`` queries): needs no gradient,
  so a model it breaks more often than PGD does is masking its gradients.
- **AutoAttack** (standard: APGD-CE, APGD-T, FAB-T, Square; L-infinity at ``epsilon``): the judge.

An image counts as robust to an attack when the model classifies it correctly both clean and
attacked (``robust``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

ATTACKS = ("fgsm", "pgd", "cw", "square", "autoattack")
N_CLASSES = 10


def make_attack(name: str, model: nn.Module, epsilon: float, *, pgd_steps: int = 40, cw_c: float = 1.0,
                cw_steps: int = 100, square_queries: int = 5000, seed: int = 0):  # fmt: skip
    """The torchattacks attack ``name`` against ``model`` (in eval mode, inputs in [0, 1])."""
    import torchattacks

    if name == "fgsm":
        return torchattacks.FGSM(model, eps=epsilon)
    if name == "pgd":
        return torchattacks.PGD(model, eps=epsilon, alpha=epsilon / 4, steps=pgd_steps, random_start=True)
    if name == "cw":
        return torchattacks.CW(model, c=cw_c, kappa=0, steps=cw_steps, lr=0.01)
    if name == "square":
        return torchattacks.Square(model, norm="Linf", eps=epsilon, n_queries=square_queries, seed=seed)
    if name == "autoattack":
        return torchattacks.AutoAttack(model, norm="Linf", eps=epsilon, version="standard", n_classes=N_CLASSES,
                                       seed=seed)  # fmt: skip
    raise ValueError(f"Unknown attack '{name}'; choose one of {', '.join(ATTACKS)}.")


def attacked_images(attack, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The attack's images for ``x`` (PGD's random start drawn from ``seed``)."""
    torch.manual_seed(seed)
    return attack(x, y).detach()


@torch.no_grad()
def robust(model: nn.Module, x: torch.Tensor, adversarial: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Per image: correct on the clean input and on the attacked one."""
    clean = model(x).argmax(dim=1) == y
    attacked = model(adversarial).argmax(dim=1) == y
    return (clean & attacked).numpy()


def l2_distance(x: torch.Tensor, adversarial: torch.Tensor) -> np.ndarray:
    """Per image: the L2 norm of the perturbation."""
    return (adversarial - x).flatten(1).norm(dim=1).numpy()

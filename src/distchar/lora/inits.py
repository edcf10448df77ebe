"""The LoRA init registry: one table from name to how the adapters of a PEFT LoRA model start.

PEFT's own (``init_lora_weights``): ``default`` (Kaiming-uniform A, B = 0), ``gaussian``,
``pissa`` and ``pissa_niter_4`` (top singular triplets of W moved into the adapter, W
compensated), ``olora`` (QR of W, compensated), ``orthogonal`` (orthogonal halves, B A = 0).

Ours, from the generator's singular-value profiles s (one row per layer and type; only the first
``r`` values are used):

- ``reshaped``: A = c diag(s) Q^T with a random orthonormal Q (in x r), B = 0. c scales A to the
  Frobenius norm PEFT's default A has in expectation, sqrt(r / 3): the profile sets the shape of
  A's spectrum, not its size, so a comparison with ``default`` is one of shape alone.
- ``reshaped_nonzero``: A = diag(sqrt(s / scaling)) Q1^T, B = Q2 diag(sqrt(s / scaling)) with random
  orthonormal Q1, Q2 (as PiSSA, but generated values and random directions); W -= scaling B A.
  The values are used as given; stage 05 gives them the size of PiSSA's adapter (each generated
  row scaled to the Frobenius norm of the real top-r singular values of its layer,
  ``distchar.generator.gp_pareto.match_scale``), so that only the shape and directions differ.
- ``matched_random``: Gaussian A and B rescaled to the Frobenius norms of ``reshaped``'s A and
  ``reshaped_nonzero``'s B, module by module; W -= scaling B A. The control that has the scale of
  ours without its shape (Li et al. 2025: any non-zero init helps; isolate the shape).

Every init here leaves the model's output unchanged at step 0 (B A = 0 or W compensated; tested
to 1e-4 on the logits of the real SmolLM2 in float64; float32 rounding alone moves them by up to
about 1e-3 for PEFT's own pissa and olora). ``apply_init`` takes a base model and returns the PEFT
model; ``init_state`` collects the adapter tensors under model-independent keys
``<type>.<layer>.lora_A`` / ``.lora_B``, and ``apply_state`` puts a saved state on a fresh base
model (the compensated base weight is W - scaling B A, so A and B are all it needs).
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from distchar.errors import DistcharError
from distchar.lora.registry import COMPENSATED, INITS, OURS, PEFT_INITS
from distchar.models.architectures import Architecture

Profiles = dict[str, np.ndarray]
"""Projection type -> generated (layers x k) singular values, rows in layer order."""


def module_key(name: str, architecture: Architecture) -> tuple[str, int] | None:
    """(projection type, layer) of a PEFT module name, by the architecture's tensor-name table."""
    plain = re.sub(r"^base_model\.model\.", "", name) + ".weight"
    for kind, pattern in architecture.compiled("safetensors"):
        match = pattern.fullmatch(plain)
        if match and kind != "qkv":
            return kind, int(match.group("layer"))
    return None


def _orthonormal(rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=generator))
    return q


def _ours(name: str, layer, s: np.ndarray, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) of one of our inits for one LoRA layer (adapter 'default'). Every init draws the same
    random numbers in the same order, so with one seed ``matched_random`` is scaled to the very A and B
    that ``reshaped`` and ``reshaped_nonzero`` make."""
    r = layer.r["default"]
    out_features, in_features = layer.out_features, layer.in_features
    scaling = layer.scaling["default"]
    values = torch.as_tensor(np.asarray(s[:r], dtype=np.float64), dtype=torch.float32)
    q1 = _orthonormal(in_features, r, generator)
    q2 = _orthonormal(out_features, r, generator)
    g_a = torch.randn(r, in_features, generator=generator)
    g_b = torch.randn(out_features, r, generator=generator)
    reshaped_a = torch.diag(values) @ q1.T
    reshaped_a *= math.sqrt(r / 3) / reshaped_a.norm()
    root = torch.sqrt(values / scaling)
    nonzero_a, nonzero_b = torch.diag(root) @ q1.T, q2 @ torch.diag(root)
    if name == "reshaped":
        return reshaped_a, torch.zeros(out_features, r)
    if name == "reshaped_nonzero":
        return nonzero_a, nonzero_b
    return g_a * (reshaped_a.norm() / g_a.norm()), g_b * (nonzero_b.norm() / g_b.norm())


def lora_targets(model: torch.nn.Module, architecture: Architecture) -> dict[str, tuple[str, int]]:
    """Module name -> (projection type, layer) of every projection matrix of ``model`` (``torch.nn.Linear``
    or GPT-2's ``Conv1D``; a fused q/k/v matrix is left out: one adapter would mix three types)."""
    from transformers.pytorch_utils import Conv1D

    targets = {}
    for module_name, module in model.named_modules():
        key = module_key(module_name, architecture) if isinstance(module, (torch.nn.Linear, Conv1D)) else None
        if key:
            targets[module_name] = key
    if not targets:
        raise DistcharError(f"No projection matrix of architecture '{architecture.name}' found in the model.")
    return targets


def lora_config(targets, architecture: Architecture, rank: int, lora_alpha: float, init=True):
    """PEFT's LoraConfig on ``targets``; weights stored (in, out), as GPT-2's, set ``fan_in_fan_out``."""
    from peft import LoraConfig

    transposed = architecture.transposed.get("safetensors", False)
    return LoraConfig(r=rank, lora_alpha=lora_alpha, target_modules=sorted(targets), lora_dropout=0.0,
                      init_lora_weights=init, fan_in_fan_out=transposed)  # fmt: skip


def _check_rank(model: torch.nn.Module, targets, rank: int) -> None:
    for target in targets:
        shape = tuple(model.get_submodule(target).weight.shape)
        if rank > min(shape):
            raise DistcharError(f"LoRA rank {rank} exceeds the smaller side of {target} {tuple(shape)}.")


def _lora_layers(peft_model, architecture: Architecture):
    """(module name, (type, layer), LoraLayer) of every adapted module."""
    from peft.tuners.lora import LoraLayer

    for module_name, layer in peft_model.named_modules():
        if isinstance(layer, LoraLayer) and "default" in layer.lora_A:
            yield module_name, module_key(module_name, architecture), layer


def _compensate(layer, a: torch.Tensor, b: torch.Tensor) -> None:
    """W -= scaling B A (one fused rank-r update in W's dtype)."""
    base = layer.get_base_layer()
    a, b = a.to(base.weight.dtype), b.to(base.weight.dtype)
    if getattr(layer, "fan_in_fan_out", False):
        base.weight.addmm_(a.T, b.T, alpha=-layer.scaling["default"])
    else:
        base.weight.addmm_(b, a, alpha=-layer.scaling["default"])


def _profile_row(profiles: Profiles, module_name: str, kind: str, index: int, rank: int) -> np.ndarray:
    profile = profiles.get(kind)
    if profile is None or index >= len(profile) or len(profile[index]) < rank:
        raise DistcharError(f"No generated profile of length {rank} for {module_name} ({kind}, layer {index}).")
    row = np.asarray(profile[index][:rank], dtype=np.float64)
    if not np.all(np.isfinite(row) & (row > 0)):
        raise DistcharError(
            f"The generated profile for {module_name} ({kind}, layer {index}) is not all finite and > 0."
        )
    return row


def apply_init(
    model: torch.nn.Module,
    name: str,
    architecture: Architecture,
    *,
    rank: int = 8,
    lora_alpha: float = 16,
    profiles: Profiles | None = None,
    seed: int = 0,
):
    """Wrap ``model`` (changed in place) in a PEFT LoRA model on every projection matrix, started by ``name``."""
    from peft import get_peft_model

    if name not in INITS:
        raise DistcharError(f"Unknown LoRA init '{name}'; registered: {', '.join(INITS)}.")
    targets = lora_targets(model, architecture)
    _check_rank(model, targets, rank)
    if name in OURS and not profiles:
        raise DistcharError(f"LoRA init '{name}' needs generated profiles (stage 05).")
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, lora_config(targets, architecture, rank, lora_alpha, PEFT_INITS.get(name, True)))
    if name in OURS:
        write_ours(peft_model, name, architecture, profiles, seed)
    return peft_model


def write_ours(peft_model, name: str, architecture: Architecture, profiles: Profiles, seed: int = 0) -> None:
    """Write one of our inits into every LoRA layer of a PEFT model (compensating W where B A != 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module_name, (kind, index), layer in _lora_layers(peft_model, architecture):
            rank = layer.r["default"]
            a, b = _ours(name, layer, _profile_row(profiles, module_name, kind, index, rank), generator)
            layer.lora_A["default"].weight.copy_(a)
            layer.lora_B["default"].weight.copy_(b)
            if name in COMPENSATED:
                _compensate(layer, a, b)


def init_state(peft_model, architecture: Architecture) -> dict[str, torch.Tensor]:
    """The adapter tensors under ``<type>.<layer>.lora_A`` / ``.lora_B``, contiguous float32 copies."""
    state = {}
    for _, (kind, index), layer in _lora_layers(peft_model, architecture):
        state[f"{kind}.{index}.lora_A"] = layer.lora_A["default"].weight.detach().float().contiguous().clone()
        state[f"{kind}.{index}.lora_B"] = layer.lora_B["default"].weight.detach().float().contiguous().clone()
    return state


def apply_state(
    model: torch.nn.Module,
    architecture: Architecture,
    state: dict[str, torch.Tensor],
    *,
    rank: int,
    lora_alpha: float,
    compensated: bool,
):
    """A PEFT LoRA model on ``model`` (changed in place) started from a saved ``init_state``;
    with ``compensated`` the base weights become W - scaling B A, as the init that made ``state`` did."""
    from peft import get_peft_model

    targets = lora_targets(model, architecture)
    _check_rank(model, targets, rank)
    peft_model = get_peft_model(model, lora_config(targets, architecture, rank, lora_alpha))
    with torch.no_grad():
        for module_name, (kind, index), layer in _lora_layers(peft_model, architecture):
            key = f"{kind}.{index}"
            if f"{key}.lora_A" not in state or f"{key}.lora_B" not in state:
                raise DistcharError(f"The saved init has no tensors for {module_name} ({key}).")
            a, b = state[f"{key}.lora_A"], state[f"{key}.lora_B"]
            if tuple(a.shape) != tuple(layer.lora_A["default"].weight.shape) or tuple(b.shape) != tuple(
                layer.lora_B["default"].weight.shape
            ):
                raise DistcharError(f"The saved init for {module_name} ({key}) has rank or shape unlike this model.")
            layer.lora_A["default"].weight.copy_(a)
            layer.lora_B["default"].weight.copy_(b)
            if compensated:
                _compensate(layer, a, b)
    return peft_model

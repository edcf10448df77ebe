"""The LoRA init registry: every init's name and properties in one table (free of torch, so
``distchar.config`` derives ``lora.inits``' allowed names from it; ``distchar.lora.inits`` makes them).

Columns: ``peft``, PEFT's ``init_lora_weights`` value for PEFT's own inits (None: one of ours,
made by ``distchar.lora.inits`` on top of PEFT's default); ``compensated``, B A != 0 and the
base weight is compensated, W -= scaling B A; ``deterministic``, the init does not depend on the
seed (a full SVD, a QR of W), so stage 05 makes it once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Init:
    peft: bool | str | None
    compensated: bool
    deterministic: bool


INITS: dict[str, Init] = {
    "default": Init(peft=True, compensated=False, deterministic=False),
    "gaussian": Init(peft="gaussian", compensated=False, deterministic=False),
    "pissa": Init(peft="pissa", compensated=True, deterministic=True),
    "pissa_niter_4": Init(peft="pissa_niter_4", compensated=True, deterministic=False),
    "olora": Init(peft="olora", compensated=True, deterministic=True),
    "orthogonal": Init(peft="orthogonal", compensated=False, deterministic=False),
    "reshaped": Init(peft=None, compensated=False, deterministic=False),
    "reshaped_nonzero": Init(peft=None, compensated=True, deterministic=False),
    "matched_random": Init(peft=None, compensated=True, deterministic=False),
}
"""Every registered init, in report order."""

PEFT_INITS = {name: init.peft for name, init in INITS.items() if init.peft is not None}
OURS = tuple(name for name, init in INITS.items() if init.peft is None)
COMPENSATED = frozenset(name for name, init in INITS.items() if init.compensated)
DETERMINISTIC = frozenset(name for name, init in INITS.items() if init.deterministic)

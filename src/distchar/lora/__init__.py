"""LoRA initialisations: PEFT's, and ours reshaped by the generator."""

from distchar.lora.inits import (
    COMPENSATED,
    DETERMINISTIC,
    INITS,
    apply_init,
    apply_state,
    init_state,
    lora_targets,
    module_key,
)

__all__ = [
    "COMPENSATED",
    "DETERMINISTIC",
    "INITS",
    "apply_init",
    "apply_state",
    "init_state",
    "lora_targets",
    "module_key",
]

"""The one place where each architecture's tensor names map to the canonical projection types.

Canonical types are the seven projections of the main study: q, k, v, o (attention) and gate, up,
down (MLP). Every matrix is returned in ``torch.nn.Linear`` orientation, shape (out, in).

To add an architecture, add an ``Architecture`` to ``ARCHITECTURES`` below: the ``model_type``
values of its ``config.json`` (or the ``general.architecture`` of its GGUF file) and one regular
expression per tensor, with a ``layer`` group, for each file format it comes in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from distchar.errors import DistcharError

CANONICAL_TYPES: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down")
"""The projection types of the main study, in the order figures and tables show them."""

FUSED_QKV = "qkv"
"""Marks a tensor that holds q, k and v stacked along the output axis (GPT-2's ``c_attn``)."""

_LAYER = r"(?P<layer>\d+)"
_LLAMA_HF = {
    "q": rf"(?:model\.)?layers\.{_LAYER}\.self_attn\.q_proj\.weight",
    "k": rf"(?:model\.)?layers\.{_LAYER}\.self_attn\.k_proj\.weight",
    "v": rf"(?:model\.)?layers\.{_LAYER}\.self_attn\.v_proj\.weight",
    "o": rf"(?:model\.)?layers\.{_LAYER}\.self_attn\.o_proj\.weight",
    "gate": rf"(?:model\.)?layers\.{_LAYER}\.mlp\.gate_proj\.weight",
    "up": rf"(?:model\.)?layers\.{_LAYER}\.mlp\.up_proj\.weight",
    "down": rf"(?:model\.)?layers\.{_LAYER}\.mlp\.down_proj\.weight",
}
# llama.cpp names every Llama-family model the same way. Its converter permutes the rows of q and
# k for its rotary layout; a row permutation changes neither singular values nor norms, so the
# study's numbers are unaffected and the matrices are used as stored.
_LLAMA_GGUF = {
    "q": rf"blk\.{_LAYER}\.attn_q\.weight",
    "k": rf"blk\.{_LAYER}\.attn_k\.weight",
    "v": rf"blk\.{_LAYER}\.attn_v\.weight",
    "o": rf"blk\.{_LAYER}\.attn_output\.weight",
    "gate": rf"blk\.{_LAYER}\.ffn_gate\.weight",
    "up": rf"blk\.{_LAYER}\.ffn_up\.weight",
    "down": rf"blk\.{_LAYER}\.ffn_down\.weight",
}


@dataclass(frozen=True)
class Architecture:
    """How one architecture names its projection matrices.

    Args:
        name: our name for the architecture, used in messages.
        model_types: ``config.json`` ``model_type`` values (and GGUF ``general.architecture``
            values) that select it.
        patterns: per file format (``safetensors`` or ``gguf``), canonical type (or ``qkv`` for a
            fused tensor) -> regular expression with a ``layer`` group, matched in full.
        transposed: per file format, True where weights are stored (in, out), as GPT-2's Conv1D.
    """

    name: str
    model_types: tuple[str, ...]
    patterns: dict[str, dict[str, str]]
    transposed: dict[str, bool] = field(default_factory=dict)

    def compiled(self, file_format: str) -> list[tuple[str, re.Pattern[str]]]:
        """The (type, compiled pattern) pairs for one file format, in canonical order."""
        if file_format not in self.patterns:
            raise DistcharError(
                f"Architecture '{self.name}' has no tensor-name map for {file_format} files; "
                f"add one in src/distchar/models/architectures.py."
            )
        return [(t, re.compile(p)) for t, p in self.patterns[file_format].items()]


ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture(
        name="llama",
        model_types=("llama", "qwen2", "mistral", "qwen3"),
        patterns={"safetensors": _LLAMA_HF, "gguf": _LLAMA_GGUF},
    ),
    Architecture(
        name="gpt2",
        model_types=("gpt2",),
        patterns={
            "safetensors": {
                FUSED_QKV: rf"(?:transformer\.)?h\.{_LAYER}\.attn\.c_attn\.weight",
                "o": rf"(?:transformer\.)?h\.{_LAYER}\.attn\.c_proj\.weight",
                "up": rf"(?:transformer\.)?h\.{_LAYER}\.mlp\.c_fc\.weight",
                "down": rf"(?:transformer\.)?h\.{_LAYER}\.mlp\.c_proj\.weight",
            },
            "gguf": {
                FUSED_QKV: rf"blk\.{_LAYER}\.attn_qkv\.weight",
                "o": rf"blk\.{_LAYER}\.attn_output\.weight",
                "up": rf"blk\.{_LAYER}\.ffn_up\.weight",
                "down": rf"blk\.{_LAYER}\.ffn_down\.weight",
            },
        },
        # GPT-2's Conv1D stores (in, out); llama.cpp transposes it on conversion.
        transposed={"safetensors": True},
    ),
    Architecture(
        name="bert",
        model_types=("bert",),
        patterns={
            "safetensors": {
                "q": rf"(?:bert\.)?encoder\.layer\.{_LAYER}\.attention\.self\.query\.weight",
                "k": rf"(?:bert\.)?encoder\.layer\.{_LAYER}\.attention\.self\.key\.weight",
                "v": rf"(?:bert\.)?encoder\.layer\.{_LAYER}\.attention\.self\.value\.weight",
                "o": rf"(?:bert\.)?encoder\.layer\.{_LAYER}\.attention\.output\.dense\.weight",
                "up": rf"(?:bert\.)?encoder\.layer\.{_LAYER}\.intermediate\.dense\.weight",
                "down": rf"(?:bert\.)?encoder\.layer\.{_LAYER}\.output\.dense\.weight",
            },
        },
    ),
)


def supported_model_types() -> list[str]:
    """Every ``model_type`` value that some architecture accepts, sorted."""
    return sorted(t for a in ARCHITECTURES for t in a.model_types)


def architecture_for(model_type: str, where: str) -> Architecture:
    """The architecture for a ``model_type``; ``where`` names the file it was read from."""
    for arch in ARCHITECTURES:
        if model_type in arch.model_types:
            return arch
    raise DistcharError(
        f"Architecture '{model_type}' (from {where}) is not supported; supported: "
        f"{', '.join(supported_model_types())}. Add it to ARCHITECTURES in "
        f"src/distchar/models/architectures.py."
    )


def match_projection(arch: Architecture, file_format: str, tensor_name: str) -> tuple[str, int] | None:
    """(type, layer) of a tensor name, ``type`` possibly ``qkv``; None if it is no projection."""
    for proj_type, pattern in arch.compiled(file_format):
        m = pattern.fullmatch(tensor_name)
        if m:
            return proj_type, int(m.group("layer"))
    return None

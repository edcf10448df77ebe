"""Safetensors files that are byte for byte the same on every run.

``safetensors`` writes a file's ``__metadata__`` in the order of a Rust hash map, which changes
from process to process: two runs that compute identical tensors would write files with different
hashes, and DVC would see a changed output. ``save_tensors`` writes the metadata with its keys
sorted (the tensors' entries keep the library's order; their data offsets count from the end of
the header, so rewriting the header moves nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save

ALIGNMENT = 8
"""The header is padded with spaces to a multiple of 8 bytes, as the library pads it."""


def canonical(data: bytes) -> bytes:
    """``data`` (a whole safetensors file) with its metadata keys in sorted order."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    if "__metadata__" in header:
        header = {"__metadata__": dict(sorted(header.pop("__metadata__").items())), **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % ALIGNMENT)
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """``safetensors.torch.save_file`` with a header that does not depend on the process."""
    Path(path).write_bytes(canonical(save(tensors, metadata=metadata)))

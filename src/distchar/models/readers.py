"""Streaming readers: one tensor in memory at a time, whatever the size of the checkpoint.

safetensors files are opened with ``safe_open`` for each tensor and closed again, so the memory map
never keeps more than one tensor's pages resident. GGUF files are indexed once from their
header (``distchar.models.gguf_index``); each tensor's bytes are then read with a plain file read
and dequantised on their own, so the resident set stays at one tensor even for a file larger than
RAM.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distchar.errors import DistcharError
from distchar.models.gguf_index import read_gguf_header


@dataclass(frozen=True)
class TensorRecord:
    """Where one stored tensor lives and what it is.

    Args:
        name: the tensor's name in its file.
        file: the file that holds it.
        dtype: the stored dtype as the file names it (``F32``, ``BF16``, ``Q4_1``, ...).
        shape: the shape of the dequantised array, row-major (for GGUF: reversed ``ne``).
        offset: byte offset of the data in the file (GGUF only).
        n_bytes: byte length of the data in the file (GGUF only).
        raw_shape: shape of the raw array the GGUF reader exposes (GGUF only).
        raw_dtype: numpy dtype of that raw array (GGUF only).
    """

    name: str
    file: Path
    dtype: str
    shape: tuple[int, ...]
    offset: int = 0
    n_bytes: int = 0
    raw_shape: tuple[int, ...] = ()
    raw_dtype: str = ""


def safetensors_index(files: tuple[Path, ...]) -> list[TensorRecord]:
    """Every tensor of a (possibly sharded) safetensors checkpoint, without reading its data."""
    from safetensors import SafetensorError, safe_open

    records = []
    for file in files:
        try:
            with safe_open(file, framework="pt") as handle:
                for name in handle.keys():
                    meta = handle.get_slice(name)
                    records.append(TensorRecord(name, file, meta.get_dtype(), tuple(meta.get_shape())))
        except (SafetensorError, OSError) as exc:
            raise DistcharError(f"Weights file {file} is truncated or corrupt ({exc}).") from exc
    return records


def read_safetensors(record: TensorRecord) -> torch.Tensor:
    """One tensor as float32, shape as stored."""
    from safetensors import safe_open

    with safe_open(record.file, framework="pt") as handle:
        return handle.get_tensor(record.name).to(torch.float32)


@functools.lru_cache(maxsize=8)
def _gguf_index(path: Path, size: int, mtime: float) -> tuple[str, tuple[TensorRecord, ...]]:
    arch, tensors = read_gguf_header(path)
    records = tuple(
        TensorRecord(t["name"], path, t["type"], t["shape"], t["offset"], t["n_bytes"], t["raw_shape"], t["raw_dtype"])
        for t in tensors
    )
    return arch, records


def gguf_index(path: Path) -> tuple[str, tuple[TensorRecord, ...]]:
    """(general.architecture, tensor records) of a GGUF file; checks that no tensor is cut off."""
    stat = path.stat()
    return _gguf_index(path.resolve(), stat.st_size, stat.st_mtime)


def gguf_architecture_name(path: Path) -> str:
    """The ``general.architecture`` value of a GGUF file."""
    return gguf_index(path)[0]


def read_gguf(record: TensorRecord) -> torch.Tensor:
    """One GGUF tensor, dequantised to float32, shape (rows, cols) as a Linear weight."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    with open(record.file, "rb") as handle:
        handle.seek(record.offset)
        raw = np.fromfile(handle, dtype=np.uint8, count=record.n_bytes)
    if raw.size != record.n_bytes:
        raise DistcharError(f"GGUF file {record.file} is truncated inside tensor {record.name}.")
    raw = raw.view(np.dtype(record.raw_dtype)).reshape(record.raw_shape)
    values = dequantize(raw, GGMLQuantizationType[record.dtype])
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32).reshape(record.shape))

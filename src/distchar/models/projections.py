"""The projection matrices of a model, listed without loading and then streamed one at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from distchar.errors import DistcharError
from distchar.models.architectures import CANONICAL_TYPES, FUSED_QKV, match_projection
from distchar.models.readers import TensorRecord, gguf_index, read_gguf, read_safetensors, safetensors_index
from distchar.models.sources import ResolvedSource


@dataclass(frozen=True)
class ProjectionMatrix:
    """One projection matrix of one layer, in Linear orientation (out, in).

    Args:
        layer: the transformer block index, from 0.
        type: one of ``CANONICAL_TYPES``.
        source_tensor: the stored tensor's name; for a fused tensor, with the row range taken.
        dtype: the stored dtype (``F32``, ``BF16``, ``Q4_1``, ...).
        shape: (rows, cols) of the matrix as returned.
        record: where the stored tensor lives.
        transposed: whether the stored tensor is (in, out) and is transposed on reading.
        part: for a fused q/k/v tensor, which third (0, 1, 2) this matrix is; else None.
    """

    layer: int
    type: str
    source_tensor: str
    dtype: str
    shape: tuple[int, int]
    record: TensorRecord
    transposed: bool = False
    part: int | None = None


def list_projections(resolved: ResolvedSource, types: tuple[str, ...] = CANONICAL_TYPES) -> list[ProjectionMatrix]:
    """Every projection matrix of the model whose type is in ``types``, ordered by layer then type.

    Reads only file headers. Raises DistcharError if the model has none of the requested types.
    """
    fmt = resolved.file_format
    records = list(gguf_index(resolved.files[0])[1]) if fmt == "gguf" else safetensors_index(resolved.files)
    transposed = resolved.architecture.transposed.get(fmt, False)
    found: list[ProjectionMatrix] = []
    for record in records:
        hit = match_projection(resolved.architecture, fmt, record.name)
        if hit is None:
            continue
        proj_type, layer = hit
        if len(record.shape) != 2:
            raise DistcharError(f"Tensor {record.name} in {record.file} is not a matrix (shape {record.shape}).")
        rows, cols = (record.shape[1], record.shape[0]) if transposed else record.shape
        if proj_type == FUSED_QKV:
            third = rows // 3
            for part, name in enumerate(("q", "k", "v")):
                label = f"{record.name}[{part * third}:{(part + 1) * third}]"
                found.append(
                    ProjectionMatrix(layer, name, label, record.dtype, (third, cols), record, transposed, part)
                )
        else:
            found.append(
                ProjectionMatrix(layer, proj_type, record.name, record.dtype, (rows, cols), record, transposed)
            )
    selected = [p for p in found if p.type in types]
    if not selected:
        raise DistcharError(
            f"Model source '{resolved.source}' has no {'/'.join(types)} projection tensors under "
            f"the '{resolved.architecture.name}' naming in {resolved.files[0]}."
        )
    order = {t: i for i, t in enumerate(CANONICAL_TYPES)}
    return sorted(selected, key=lambda p: (p.layer, order[p.type]))


def load_projection(matrix: ProjectionMatrix) -> torch.Tensor:
    """The float32 matrix, shape ``matrix.shape``."""
    return _take_part(matrix, _read_oriented(matrix))


def _read_oriented(matrix: ProjectionMatrix) -> torch.Tensor:
    stored = read_gguf(matrix.record) if matrix.record.file.suffix == ".gguf" else read_safetensors(matrix.record)
    return stored.T if matrix.transposed else stored


def _take_part(matrix: ProjectionMatrix, weight: torch.Tensor) -> torch.Tensor:
    if matrix.part is not None:
        rows = matrix.shape[0]
        weight = weight[matrix.part * rows : (matrix.part + 1) * rows]
    return weight.contiguous()


def iter_projection_matrices(
    resolved: ResolvedSource, types: tuple[str, ...] = CANONICAL_TYPES
) -> Iterator[tuple[ProjectionMatrix, torch.Tensor]]:
    """Stream (matrix, float32 tensor) pairs of every projection of ``types``."""
    return stream_projections(list_projections(resolved, types))


def stream_projections(matrices: list[ProjectionMatrix]) -> Iterator[tuple[ProjectionMatrix, torch.Tensor]]:
    """Stream (matrix, float32 tensor) pairs of listed matrices; a fused q/k/v tensor is read once."""
    cache: tuple[TensorRecord, torch.Tensor] | None = None
    for matrix in matrices:
        if matrix.part is None:
            yield matrix, load_projection(matrix)
            continue
        if cache is None or cache[0] != matrix.record:
            cache = (matrix.record, _read_oriented(matrix))
        yield matrix, _take_part(matrix, cache[1])

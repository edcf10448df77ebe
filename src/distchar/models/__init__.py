"""Model sources, architecture maps and streaming readers of projection matrices."""

from distchar.models.architectures import ARCHITECTURES, CANONICAL_TYPES, Architecture, architecture_for
from distchar.models.projections import (
    ProjectionMatrix,
    iter_projection_matrices,
    list_projections,
    load_projection,
    stream_projections,
)
from distchar.models.sources import BUNDLED, ResolvedSource, resolve_source

__all__ = [
    "ARCHITECTURES",
    "BUNDLED",
    "CANONICAL_TYPES",
    "Architecture",
    "ProjectionMatrix",
    "ResolvedSource",
    "architecture_for",
    "iter_projection_matrices",
    "list_projections",
    "load_projection",
    "resolve_source",
    "stream_projections",
]

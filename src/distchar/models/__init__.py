"""Model sources, architecture maps and streaming readers of projection matrices.

Import from the modules themselves (``distchar.models.sources``, ``.architectures``,
``.projections``): the package re-exports nothing, so that ``python -m distchar.config``, which
needs only the architecture names, starts without importing torch (2.2 s on 2 cores, once per
pipeline stage).
"""

"""distchar: distribution characteristics in deep learning, as a reproducible pipeline."""

from distchar.errors import DistcharError

__all__ = ["DistcharError"]
__version__ = "0.1.0"

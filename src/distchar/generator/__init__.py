"""The Gaussian-process + Pareto generator of singular-value profiles, its fidelity and its tuning."""

from distchar.generator.fidelity import fidelity
from distchar.generator.gp_pareto import GeneratorParams, estimate, sample

__all__ = ["GeneratorParams", "estimate", "fidelity", "sample"]

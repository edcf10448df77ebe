"""Singular values of weight matrices and the per-matrix summaries that come with them."""

from distchar.spectra.singular_values import choose_method, randomized_singular_values, top_singular_values
from distchar.spectra.summaries import spectral_summary

__all__ = ["choose_method", "randomized_singular_values", "spectral_summary", "top_singular_values"]

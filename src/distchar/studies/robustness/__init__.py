"""Robustness: the distribution-restrained softmax loss under attack on scikit-learn's digits (Wang et al. 2023)."""

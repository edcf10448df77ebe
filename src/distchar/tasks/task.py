"""The record of one fine-tuning task (see ``distchar.tasks``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from distchar.errors import DistcharError
from distchar.training.examples import Example


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    head: Literal["causal_lm", "sequence_classification"]
    """The transformers head the base model is loaded with."""
    loss_kind: Literal["causal_lm", "classification"]
    """The loss the training loop computes (and the DSL variant it uses)."""
    primary_metric: str
    higher_is_better: bool
    """The direction of the per-example test score (and of the primary metric)."""
    defaults: dict[str, Any]
    """The task's entry under ``training.tasks`` when params.yaml names none."""
    read_examples: Callable[..., list[Example]]
    """(data, split, tokenizer, max_length, limit) -> tokenised examples of one split."""
    read_test: Callable[..., Any]
    """(data, tokenizer, max_length, limit) -> the test set ``test_scores`` takes."""
    test_scores: Callable[..., Any]
    """(model, tokenizer, test, batch_size, max_new_tokens) -> one row per test example with its
    ``score`` (pandas DataFrame)."""
    metrics: Callable[..., dict[str, float]]
    """Per-example scores -> the run's test metrics (the primary one among them)."""
    baseline: Callable[..., dict]
    """(base model, tokenizer, scorer) -> the reference row beside the inits (``init`` names it)."""
    head_modules: frozenset[str] = field(default_factory=frozenset)
    """Modules trained whole beside the adapter (a classifier's fresh head)."""

    def examples(self, data: str | Path, split: str, tokenizer, max_length: int, limit: int = 0) -> list[Example]:
        """``limit`` tokenised examples of ``split`` evenly spread over it (0: all); at least one."""
        examples = self.read_examples(Path(data), split, tokenizer, max_length, limit)
        if not examples:
            raise DistcharError(f"Task '{self.name}' has no {split} examples in {data}.")
        return examples

    def load_model(self, resolved, tokenizer):
        """The base model with this task's head (a classifier gets the tokenizer's pad id)."""
        from distchar.models.loading import load_transformers_model  # lazy: torch (distchar.tasks)

        model = load_transformers_model(resolved, self.head)
        if self.loss_kind == "classification" and getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        return model

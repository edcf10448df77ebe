"""Task metrics of a trained run: validation loss (picks the learning rate) and per-example test scores.

- ``probreason``: the test questions of What Are the Odds? asked through the benchmark harness
  (greedy, the chat template the run was trained with), parsed and scored by the benchmark's
  scorer. The per-example score is the absolute error (percentile points, or percentage points
  for probabilities); an answer that does not parse is scored as the answer 50 would be (the
  always-50 floor), so a run cannot look better by answering less. Lower is better.
- ``sentiment``: the predicted class of every test tweet; accuracy (the per-example score) and
  the F1 of the positive class. Higher is better.

``restore_run`` rebuilds a trained model from the base model, its stage-05 init (which for the
compensated inits also changed the base weights) and the trained tensors of stage 06, then merges
the adapter so evaluation runs at the base model's speed.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch

from distchar.errors import DistcharError
from distchar.training.tasks import IGNORE, Example, collate

HIGHER_IS_BETTER = {"probreason": False, "sentiment": True}
"""The direction of each task's per-example score."""
PRIMARY = {"probreason": "mean_abs_error", "sentiment": "accuracy"}


def restore_run(base, architecture, init_state: dict, compensated: bool, rank: int, lora_alpha: float,
                trained: dict[str, torch.Tensor]) -> torch.nn.Module:  # fmt: skip
    """The trained model of one run, adapter merged into the weights."""
    from distchar.lora import apply_state

    model = apply_state(copy.deepcopy(base), architecture, init_state, rank=rank, lora_alpha=lora_alpha,
                        compensated=compensated)  # fmt: skip
    result = model.load_state_dict(trained, strict=False)
    if result.unexpected_keys:
        raise DistcharError(f"A trained adapter holds tensors this model lacks, e.g. {result.unexpected_keys[0]}.")
    return model.merge_and_unload().eval()


@torch.no_grad()
def validation_loss(model, examples: list[Example], pad_id: int, batch_size: int = 32) -> float:
    """Mean cross-entropy: per answer token for a causal LM, per example for a classifier."""
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], pad_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        labels = batch["labels"]
        if labels.ndim == 2:  # causal LM: the logit at t predicts the token at t + 1
            logits, labels = logits[:, :-1], labels[:, 1:]
            mask = labels != IGNORE
            losses = torch.nn.functional.cross_entropy(logits[mask], labels[mask], reduction="sum")
            total, count = total + float(losses), count + int(mask.sum())
        else:
            total += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            count += len(labels)
    return total / count if count else float("nan")


def probreason_scores(model, tokenizer, rows: list[dict], *, batch_size: int, max_new_tokens: int) -> pd.DataFrame:
    """One row per test question: the answer, its parse and its score (absolute error, lower is better)."""
    from distchar.studies.odds.harness import LanguageModel, generate
    from distchar.studies.odds.scoring import score_rows

    frame = pd.DataFrame(rows)[["id", "task", "group", "truth", "prompt"]]
    answers = generate(LanguageModel(model, tokenizer, "run"), frame["prompt"].tolist(), max_new_tokens=max_new_tokens,
                       batch_size=batch_size, prefill=False, temperature=0.0, progress=False)  # fmt: skip
    scored = score_rows(frame.assign(answer=answers))
    scale = np.where(scored["task"] == "probabilities", 100.0, 1.0)
    always_50 = np.abs(50.0 / scale - scored["truth"].astype(float)) * scale
    scored["score"] = np.where(scored["status"] == "ok", scored["error"], always_50)
    return scored.drop(columns=["prompt"])


@torch.no_grad()
def sentiment_scores(model, examples: list[Example], pad_id: int, batch_size: int = 32) -> pd.DataFrame:
    """One row per test tweet: label, prediction and score (1 when right)."""
    predictions = []
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], pad_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        predictions += logits.argmax(-1).tolist()
    labels = [e.labels for e in examples]
    return pd.DataFrame({"id": range(len(examples)), "label": labels, "prediction": predictions,
                         "score": (np.array(labels) == np.array(predictions)).astype(float)})  # fmt: skip


def f1_positive(labels, predictions) -> float:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    tp = int(((labels == 1) & (predictions == 1)).sum())
    fp = int(((labels == 0) & (predictions == 1)).sum())
    fn = int(((labels == 1) & (predictions == 0)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def run_metrics(task: str, scores: pd.DataFrame) -> dict:
    """The task metrics of one run from its per-example scores."""
    if task == "probreason":
        out = {"mean_abs_error": float(scores["score"].mean()),
               "parse_rate": float((scores["status"] == "ok").mean())}  # fmt: skip
        for name, part in scores.groupby("task"):
            out[f"{name}_abs_error"] = float(part["score"].mean())
        return out
    return {"accuracy": float(scores["score"].mean()), "f1": f1_positive(scores["label"], scores["prediction"])}

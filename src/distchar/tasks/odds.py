"""The ``odds`` task: causal-LM fine-tuning on What Are the Odds? questions (study 08).

Data: stage 08's ``train.jsonl`` / ``validation.jsonl`` / ``test.jsonl`` (results/08_odds_questions),
split by distribution parameters so that test distributions are unseen. An example is the
chat-templated question followed by the target answer ``<answer>X</answer>`` and the end of turn;
only the answer tokens carry labels (the prompt is masked with -100).

Test: the test questions asked through the chat harness (greedy, the chat template the run was
trained with), parsed and scored by the benchmark's scorer. The per-example score is the absolute
error (percentile points, or percentage points for probabilities); an answer that does not parse
is scored as the answer 50 would be (the always-50 floor), so a run cannot look better by
answering less. Lower is better. Baseline: the base model without fine-tuning, asked the same
questions.

torch, pandas and the study's scorer are imported inside the functions (``distchar.tasks``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distchar.results import stage_folder
from distchar.studies.odds.parsing import ANSWER_CLOSE
from distchar.tasks.task import Task
from distchar.training.examples import IGNORE, Example, read_jsonl, spread


def read_examples(questions_dir: Path, split: str, tokenizer, max_length: int = 512, limit: int = 0) -> list[Example]:
    """Tokenised (prompt + answer) examples of one split, ``limit`` of them spread over it (0: all);
    prompts longer than ``max_length`` are cut from the left."""
    from distchar.models.chat import chat_prompt  # lazy: torch (distchar.tasks)

    end = getattr(tokenizer, "eos_token", None) or ""
    examples = []
    for row in spread(read_jsonl(Path(questions_dir) / f"{split}.jsonl"), limit):
        prompt_ids = tokenizer(chat_prompt(tokenizer, row["prompt"]), add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(row["target_answer"] + end, add_special_tokens=False)["input_ids"]
        prompt_ids = prompt_ids[-max(1, max_length - len(answer_ids)) :]
        examples.append(Example(prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids))
    return examples


def read_test(questions_dir: Path, tokenizer, max_length: int, limit: int = 0) -> list[dict]:
    """The test questions (rows of test.jsonl), ``limit`` of them spread over the split."""
    return spread(read_jsonl(Path(questions_dir) / "test.jsonl"), limit)


def test_scores(model, tokenizer, rows: list[dict], batch_size: int, max_new_tokens: int):
    """One row per test question: the answer, its parse and its score (absolute error, lower is better)."""
    import pandas as pd  # see the module docstring

    from distchar.models.chat import LanguageModel, generate  # lazy: torch (distchar.tasks)
    from distchar.studies.odds.scoring import score_rows  # lazy: pandas, SciPy (distchar.tasks)

    frame = pd.DataFrame(rows)[["id", "task", "group", "truth", "prompt"]]
    answers = generate(LanguageModel(model, tokenizer, "run"), frame["prompt"].tolist(), max_new_tokens=max_new_tokens,
                       batch_size=batch_size, stop=ANSWER_CLOSE, temperature=0.0, progress=False)  # fmt: skip
    scored = score_rows(frame.assign(answer=answers))
    scale = np.where(scored["task"] == "probabilities", 100.0, 1.0)
    always_50 = np.abs(50.0 / scale - scored["truth"].astype(float)) * scale
    scored["score"] = np.where(scored["status"] == "ok", scored["error"], always_50)
    return scored.drop(columns=["prompt"])


def metrics(scores) -> dict[str, float]:
    """Mean absolute error (the primary metric), parse rate, and the error per question type."""
    out = {"mean_abs_error": float(scores["score"].mean()), "parse_rate": float((scores["status"] == "ok").mean())}
    for name, part in scores.groupby("task"):
        out[f"{name}_abs_error"] = float(part["score"].mean())
    return out


def baseline(base, tokenizer, scorer) -> dict:
    """The base model, asked the same questions."""
    return {"init": "(base model)", "validation_loss": scorer.validation_loss(base),
            **metrics(scorer.test_scores(base))}  # fmt: skip


TASK = Task(
    name="odds",
    description="causal-LM fine-tuning on What Are the Odds? questions (stage 08's splits)",
    head="causal_lm",
    loss_kind="causal_lm",
    primary_metric="mean_abs_error",
    higher_is_better=False,
    defaults={
        "model": "smollm2-135m-instruct",
        "data": str(stage_folder("odds_questions")),
        "steps": 4,
        "batch_size": 4,
        "eval_size": 24,
    },
    read_examples=read_examples,
    read_test=read_test,
    test_scores=test_scores,
    metrics=metrics,
    baseline=baseline,
)

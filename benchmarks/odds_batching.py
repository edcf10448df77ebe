"""Benchmark: batched generation with shared prefixes against one prompt at a time (What Are the Odds?).

Same model (the bundled SmolLM2-135M-Instruct), same questions, same greedy decoding and stopping
(end of turn or ``</answer>``, at most ``max_new_tokens`` from params.yaml): ``generate``
(batches of ``odds.batch_size``, shared prefixes computed once) against ``generate_one_by_one``
(``model.generate`` per prompt). The questions are whole cells of the default profile: percentiles
(zero-shot and 3 within-distribution shots) and probabilities of two idealized groups, and the
real-world percentiles of one variable under the three conditions. Then the wall time of the whole
default evaluation profile (stage 08 as ``dvc repro`` runs it, model loading included).
Results: benchmarks/results/odds_batching.json.

Run: python benchmarks/odds_batching.py
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from common import write_results

from distchar.config import load_params
from distchar.models.chat import generate, generate_one_by_one, load_language_model
from distchar.stages.odds import run_evaluation
from distchar.stages.odds_questions import run_questions
from distchar.studies.odds.parsing import ANSWER_CLOSE, ANSWER_OPEN
from distchar.studies.odds.profiles import select
from distchar.studies.odds.questions import read_questions
from distchar.timings import read_timings

SOURCE = "bundled:smollm2-135m-instruct"
GROUPS = ["normal", "gamma", "Average Step Count"]


def main() -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(level=logging.WARNING)
    params = load_params(Path(__file__).parents[1] / "params.yaml").odds
    with tempfile.TemporaryDirectory() as tmp:
        run_questions(params, None, Path(tmp) / "questions")
        questions = select(read_questions(Path(tmp) / "questions" / "benchmark.jsonl"), "default")
        chosen = questions[questions["group"].isin(GROUPS) & (questions["task"] != "sampling")]
        prompts = chosen["prompt"].tolist()
        lm = load_language_model(SOURCE)
        prefill = ANSWER_OPEN if params.prefill_answer_tag else ""
        generate(lm, prompts[:4], max_new_tokens=2, progress=False)  # warm-up
        started = time.perf_counter()
        batched = generate(lm, prompts, max_new_tokens=params.max_new_tokens, batch_size=params.batch_size,
                           prefill=prefill, stop=ANSWER_CLOSE, progress=False)  # fmt: skip
        batched_s = time.perf_counter() - started
        started = time.perf_counter()
        single = generate_one_by_one(lm, prompts, max_new_tokens=params.max_new_tokens,
                                     prefill=prefill, stop=ANSWER_CLOSE)  # fmt: skip
        single_s = time.perf_counter() - started
        del lm
        started = time.perf_counter()
        result = run_evaluation("smollm2-135m-instruct", SOURCE, params, Path(tmp) / "questions", Path(tmp) / "eval")
        load_s = read_timings(Path(tmp) / "eval")["load_s"]
        default_s = time.perf_counter() - started
    write_results(
        "odds_batching",
        {
            "speedup": round(single_s / batched_s, 2),
            "default_profile_s": round(default_s, 1),
            "batched_s": round(batched_s, 2),
            "one_by_one_s": round(single_s, 2),
            "questions": len(prompts),
            "identical_answers": sum(a == b for a, b in zip(batched, single, strict=True)),
            "batch_size": params.batch_size,
            "max_new_tokens": params.max_new_tokens,
            "default_profile_questions": result["questions"],
            "default_profile_load_s": load_s,
            "goal": "speedup >= 5 (one-by-one time / batched time)",
        },
    )


if __name__ == "__main__":
    main()

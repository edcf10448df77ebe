"""Benchmark: the What Are the Odds? harness against one prompt at a time and against plain batched ``model.generate``.

Same model (the bundled SmolLM2-135M-Instruct), same questions, same greedy decoding and stopping
(end of turn or ``</answer>``, at most ``max_new_tokens`` from params.yaml), same rendered prompts
(``LanguageModel.render``: chat template, then the prefill) and the same answer text (decoded
without special tokens, the prefill in front, cut after ``</answer>``), all in one process:

- ours: ``generate`` (batches of ``odds.batch_size``, prompts sorted by token ids and grouped so a
  group's shared prefix is computed once);
- ``generate_one_by_one``: ``model.generate`` per prompt;
- the baseline a user would write: one ``model.generate`` per batch of ``odds.batch_size``
  prompts, left-padded by the tokenizer (attention mask), ``do_sample=False``,
  ``stop_strings=["</answer>"]`` and the end-of-turn token; in the questions' given order and
  sorted by token length (the better of the two is the baseline of the ratio).

Questions: the greedy questions of the default profile (its sampling questions, at temperature 1,
cannot be compared answer for answer). Against one prompt at a time: the 97 questions of whole
cells of two idealized groups and one real-world variable (``GROUPS``), as before. Against batched
``model.generate``: half the default profile's greedy questions, every cell of ``SAMPLE_GROUPS``
(7 of the 14 idealized groups, 2 of the 4 real-world variables of each domain; 422 of 844), two
rounds in alternating order, the best round of each method (all 844 twice over would take the
three methods about 14 minutes on 2 cores). On the same 422: the time to the first token
(``max_new_tokens=1``: the prompts alone) of ours and of the better baseline, and the prompt
positions each computes (padding included). Then the wall time of the whole default evaluation
profile (stage 08 as ``dvc repro`` runs it, model loading included).
Results: benchmarks/results/odds_batching.json.

Run: python benchmarks/odds_batching.py
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from common import write_results

from distchar.config import load_params
from distchar.models.chat import LanguageModel, generate, generate_one_by_one, load_language_model, prefix_groups
from distchar.stages.odds import run_evaluation
from distchar.stages.odds_questions import run_questions
from distchar.studies.odds.parsing import ANSWER_CLOSE, ANSWER_OPEN
from distchar.studies.odds.profiles import select
from distchar.studies.odds.questions import read_questions
from distchar.timings import read_timings

SOURCE = "bundled:smollm2-135m-instruct"
GROUPS = ["normal", "gamma", "Average Step Count"]
SAMPLE_GROUPS = [
    *("normal", "log_normal", "uniform", "gamma", "poisson", "binomial", "multinomial_1"),
    *("Average Step Count", "Average Sleep Minutes", "Monthly Gross Rent", "Annual Household Income"),
    *("Average Temperature", "Average Wind Speed"),
]
ROUNDS = 2
SHOWN_DIFFERENCES = 5


def cut(text: str, stop: str) -> str:
    """The answer cut after ``stop`` as the harness cuts it."""
    return text[: text.index(stop) + len(stop)] if stop and stop in text else text


@torch.inference_mode()
def generate_batched(lm: LanguageModel, prompts: list[str], *, max_new_tokens: int, batch_size: int, prefill: str,
                     stop: str, sort_by_length: bool) -> list[str]:  # fmt: skip
    """What a user would write: one ``model.generate`` per batch, left-padded, greedy, stopping at
    the end-of-turn token and at ``stop``; the same rendered prompts and answer text as ``generate``."""
    tokenizer, model = lm.tokenizer, lm.model
    device = next(model.parameters()).device
    texts = [lm.render(p, prefill) for p in prompts]
    order = list(range(len(texts)))
    if sort_by_length:
        lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
        order.sort(key=lambda i: lengths[i])
    answers = [""] * len(texts)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            inputs = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(
                **inputs.to(device), max_new_tokens=max_new_tokens, do_sample=False, tokenizer=tokenizer,
                stop_strings=[stop] if stop else None, pad_token_id=tokenizer.pad_token_id,
                eos_token_id=sorted(lm.stop_ids),
            )  # fmt: skip
            new = out[:, inputs["input_ids"].shape[1] :]
            for i, ids in zip(batch, new, strict=True):
                answers[i] = cut(prefill + tokenizer.decode(ids, skip_special_tokens=True), stop)
    finally:
        tokenizer.padding_side = side
    return answers


def timed(fn, *args, **kwargs) -> tuple[list[str], float]:
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - started


def differences(ids: list[str], prompts: list[str], ours: list[str], theirs: list[str]) -> list[dict]:
    """The first few questions whose answers differ."""
    rows = [{"id": i, "question": p.rsplit("\n", 1)[-1], "ours": a, "batched_generate": b}
            for i, p, a, b in zip(ids, prompts, ours, theirs, strict=True) if a != b]  # fmt: skip
    return rows[:SHOWN_DIFFERENCES]


def prompt_positions(lm: LanguageModel, prompts: list[str], prefill: str, batch_size: int) -> dict:
    """Prompt tokens; the prompt positions (padding included) each method feeds the model, and the
    mean width of its key/value cache when decoding starts (a decoding step attends to all of it):
    ours (per batch, its distinct shared prefixes left-padded, then every member's tail left-padded,
    as ``generate`` batches them) and batched ``model.generate`` (each batch left-padded to its
    longest prompt) in either order."""
    seqs = lm.encode([lm.render(p, prefill) for p in prompts])
    order = sorted(range(len(seqs)), key=lambda i: seqs[i])
    shared = [0] * len(seqs)
    for members, n in prefix_groups([seqs[i] for i in order]):
        for m in members:
            shared[order[m]] = n
    computed, width = {}, {}
    computed["ours"] = width["ours"] = 0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        n = [shared[i] for i in batch] if min(shared[i] for i in batch) > 0 else [0] * len(batch)
        prefix = max(n)
        tail = max(len(seqs[i]) - k for i, k in zip(batch, n, strict=True))
        distinct = len({tuple(seqs[i][:k]) for i, k in zip(batch, n, strict=True)})
        computed["ours"] += distinct * prefix + len(batch) * tail
        width["ours"] += len(batch) * (prefix + tail)
    by_length = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for name, given in (("given_order", list(range(len(seqs)))), ("sorted_by_length", by_length)):
        batches = [given[s : s + batch_size] for s in range(0, len(given), batch_size)]
        computed[name] = width[name] = sum(len(b) * max(len(seqs[i]) for i in b) for b in batches)
    return {"tokens": sum(map(len, seqs)), "computed": computed,
            "cache_width": {name: round(w / len(seqs), 1) for name, w in width.items()}}  # fmt: skip


def main() -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    params = load_params(Path(__file__).parents[1] / "params.yaml").odds
    begun = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_questions(params, None, Path(tmp) / "questions")
        questions = select(read_questions(Path(tmp) / "questions" / "benchmark.jsonl"), "default")
        greedy = questions[questions["task"] != "sampling"]
        chosen = greedy[greedy["group"].isin(GROUPS)]
        prompts = chosen["prompt"].tolist()
        sample = greedy[greedy["group"].isin(SAMPLE_GROUPS)]
        sample_prompts = sample["prompt"].tolist()
        lm = load_language_model(SOURCE)
        common = {"max_new_tokens": params.max_new_tokens, "prefill": ANSWER_OPEN if params.prefill_answer_tag else "",
                  "stop": ANSWER_CLOSE}  # fmt: skip
        ours_kw = {**common, "batch_size": params.batch_size, "progress": False}
        theirs_kw = {**common, "batch_size": params.batch_size}
        generate(lm, prompts[:4], **{**ours_kw, "max_new_tokens": 2})  # warm-up
        generate_batched(lm, prompts[:4], **{**theirs_kw, "max_new_tokens": 2}, sort_by_length=False)  # warm-up

        # ours against one prompt at a time (the 97 questions of GROUPS)
        batched, batched_s = timed(generate, lm, prompts, **ours_kw)
        single, single_s = timed(generate_one_by_one, lm, prompts, **common)

        # ours against batched model.generate (SAMPLE_GROUPS), alternating order, best round of each
        methods = {
            "ours": partial(generate, lm, sample_prompts, **ours_kw),
            "given_order": partial(generate_batched, lm, sample_prompts, **theirs_kw, sort_by_length=False),
            "sorted_by_length": partial(generate_batched, lm, sample_prompts, **theirs_kw, sort_by_length=True),
        }
        seconds: dict[str, list[float]] = {name: [] for name in methods}
        answers: dict[str, list[str]] = {}
        for round_ in range(ROUNDS):
            for name in methods if round_ % 2 == 0 else reversed(methods):
                answers[name], took = timed(methods[name])
                seconds[name].append(round(took, 2))
                print(f"round {round_ + 1}: {name} {took:.1f} s", flush=True)
        best = {name: min(s) for name, s in seconds.items()}
        baseline = min(("given_order", "sorted_by_length"), key=best.get)
        identical = {name: sum(a == b for a, b in zip(answers["ours"], answers[name], strict=True))
                     for name in ("given_order", "sorted_by_length")}  # fmt: skip
        shown = differences(sample["id"].tolist(), sample_prompts, answers["ours"], answers[baseline])
        for row in shown:
            print("differs:", row)

        # the prompts alone (max_new_tokens=1) on the same questions: what the shared prefixes save
        first = {**theirs_kw, "max_new_tokens": 1}
        _, first_ours_s = timed(generate, lm, sample_prompts, **first, progress=False)
        _, first_theirs_s = timed(generate_batched, lm, sample_prompts, **first,
                                  sort_by_length=baseline == "sorted_by_length")  # fmt: skip
        positions = prompt_positions(lm, sample_prompts, common["prefill"], params.batch_size)
        methods_s = time.perf_counter() - begun
        del lm, methods
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
            "goal": "speedup >= 5 (one-by-one time / batched time); speedup_vs_batched_generate >= 1.5",
            "speedup_vs_batched_generate": round(best[baseline] / best["ours"], 2),
            "identical_answers_batched_generate": identical[baseline],
            "batched_generate_questions": len(sample_prompts),
            "batched_generate_s": best[baseline],
            "batched_generate_order": baseline,
            "ours_on_batched_generate_questions_s": best["ours"],
            "batched_generate_given_order_s": best["given_order"],
            "batched_generate_sorted_by_length_s": best["sorted_by_length"],
            "speedup_vs_batched_generate_given_order": round(best["given_order"] / best["ours"], 2),
            "identical_answers_batched_generate_given_order": identical["given_order"],
            "identical_answers_batched_generate_sorted_by_length": identical["sorted_by_length"],
            "batched_generate_rounds_s": seconds,
            "batched_generate_differences": shown,
            "batched_generate_groups": SAMPLE_GROUPS,
            "default_profile_greedy_questions": len(greedy),
            "first_token_ours_s": round(first_ours_s, 2),
            "first_token_batched_generate_s": round(first_theirs_s, 2),
            "prompt_positions": positions,
            "methods_s": round(methods_s, 1),
        },
    )


if __name__ == "__main__":
    main()

"""Questions of What Are the Odds?, deterministic from a seed, with their ground truth.

A question is a dict (one JSON line): the task (``percentiles``, ``probabilities``,
``sampling``), where it comes from (``idealized`` group or ``real_world`` variable), the context
``condition``, the shots (``shot_kind`` none / within / within_intermediate / family and their
number), what is queried (``value`` or ``low``/``high``), the ``truth`` and the user ``prompt``.
Prompts start with the answer instruction and end with the queried value, so the questions of one
cell (same distribution, task, condition and shots) share every token but the last few: the
harness computes that shared prefix once.

Shots (the paper's sets): within-distribution shots state the value at fixed percentiles (1 shot:
50; 3: 30, 50, 70; 5: 10, 30, 50, 70, 90; 7: 1, 10, 30, 50, 70, 90, 99; 9: 1, 10, 20, 30, 50, 70,
80, 90, 99), so a query can equal a shot; the intermediate variant uses the percentiles 5, 15, ...,
95 (our choice of which: ``INTERMEDIATE_SHOTS``) so that shots never equal queries; family shots
are other members of the family with random parameters from the paper's ranges, one example each.
For probabilities a percentile shot p becomes the central range of mass p/100 with its realised
share; for sampling, shots are draws from the distribution. Real-world questions are zero-shot,
under three conditions (our reading of the paper):

- ``fitted_family``: the variable and its unit, said to follow its fitted family with parameters;
- ``real_world_context``: the population described, the variable, its mean and standard deviation;
- ``normal_approximation``: the same context, the variable called normal with that mean and SD.

Real-world sampling is not asked: the released tables hold quantiles, not the samples a KS test needs.

The fine-tuning splits (``finetuning_splits``) are questions about random members of every family
(zero-shot percentiles and probabilities, idealized wording). The unit of the split is one
parameter draw: all questions about one distribution are in one split, so test distributions are
unseen in training. The benchmark's fixed distributions are never drawn into any split.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from distchar.errors import DistcharError
from distchar.studies.odds.distributions import (
    CANONICAL,
    DEFAULT_SEED,
    FAMILIES,
    PERCENTILE_TARGETS,
    PROBABILITY_MASSES,
    REFERENCE_SIZE,
    Distribution,
    RealWorldVariable,
    Reference,
    idealized_groups,
    random_parameters,
)

TASKS = ("percentiles", "probabilities", "sampling")
SHOT_COUNTS = (1, 3, 5, 7, 9)
WITHIN_SHOTS = {1: (50,), 3: (30, 50, 70), 5: (10, 30, 50, 70, 90), 7: (1, 10, 30, 50, 70, 90, 99),
                9: (1, 10, 20, 30, 50, 70, 80, 90, 99)}  # fmt: skip
INTERMEDIATE_SHOTS = {1: (45,), 3: (25, 45, 65), 5: (5, 25, 45, 65, 85), 7: (5, 15, 35, 45, 55, 75, 95),
                      9: (5, 15, 25, 35, 45, 55, 65, 75, 95)}  # fmt: skip
SHOT_KINDS = ("none", "within", "within_intermediate", "family")
CONDITIONS = ("idealized", "fitted_family", "real_world_context", "normal_approximation")

INSTRUCTION = {
    "percentiles": "Answer with the percentile, a number between 0 and 100, inside <answer></answer> tags.",
    "probabilities": "Answer with the probability, a number between 0 and 1, inside <answer></answer> tags.",
    "sampling": "Answer with one sampled value inside <answer></answer> tags.",
}


def fmt(x: float) -> str:
    """A number as prompts show it: at most 3 decimals, no trailing zeros."""
    text = f"{float(x):.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def ask(task: str, value: float | None = None, low: float | None = None, high: float | None = None) -> str:
    """The final question of a prompt."""
    if task == "percentiles":
        return f"What is the percentile of the value {fmt(value)}?"
    if task == "probabilities":
        return f"What is the probability that a value drawn from it lies between {fmt(low)} and {fmt(high)}?"
    return "Draw one random sample from it."


def _shot_line(task: str, ref: Reference, p: float, rng: np.random.Generator) -> str:
    if task == "percentiles":
        return f"The value {fmt(ref.value_at(p))} is at percentile {fmt(p)}."
    if task == "probabilities":
        low, high = ref.central_range(p / 100)
        return (
            f"The probability of a value between {fmt(low)} and {fmt(high)} is {fmt(ref.fraction_between(low, high))}."
        )
    return f"A sample: {fmt(rng.choice(ref.values))}."


def _cell_rng(seed: int, *parts) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32("|".join(map(str, parts)).encode())])


def shots_text(task: str, dist: Distribution, kind: str, count: int, seed: int, ref: Reference) -> str:
    """The shots of one cell (identical for every query of the cell)."""
    rng = _cell_rng(seed, "shots", task, dist.group, kind, count)
    if kind == "none":
        return ""
    if kind in ("within", "within_intermediate"):
        table = WITHIN_SHOTS if kind == "within" else INTERMEDIATE_SHOTS
        lines = [_shot_line(task, ref, p, rng) for p in table[count]]
        return "Examples from this distribution:\n" + "\n".join(f"- {line}" for line in lines)
    if kind == "family":
        lines = []
        for _ in range(count):
            other = Distribution(dist.family, random_parameters(dist.family, rng), dist.outcome)
            other_ref = other.reference(seed, 20_000)
            p = float(rng.choice(PERCENTILE_TARGETS[1:-1]))
            line = _shot_line(task, other_ref, p, rng)
            lines.append(f"For {other.describe()}: {line[0].lower()}{line[1:]}")
        return f"Examples from other {dist.family.replace('_', '-')} distributions:\n" + "\n".join(
            f"- {line}" for line in lines
        )
    raise DistcharError(f"Unknown shot kind '{kind}'; known: {', '.join(SHOT_KINDS)}.")


def _prompt(task: str, context: str, shots: str, question: str) -> str:
    return "\n\n".join(part for part in (INSTRUCTION[task], context, shots, question) if part)


def _queries(task: str, ref: Reference) -> Iterator[dict]:
    if task == "percentiles":
        for p in PERCENTILE_TARGETS:
            v = float(ref.value_at(p))
            yield {"target": p, "value": v, "truth": float(ref.percentile_of(v))}
    elif task == "probabilities":
        for mass in PROBABILITY_MASSES:
            low, high = ref.central_range(mass)
            yield {"target": mass, "low": low, "high": high, "truth": float(ref.fraction_between(low, high))}
    else:
        yield {"target": None, "truth": None}


def idealized_questions(dist: Distribution, task: str, kind: str, count: int, seed: int, ref: Reference) -> list[dict]:
    """Every question of one idealized cell."""
    context = f"Consider {dist.describe()}."
    shots = shots_text(task, dist, kind, count, seed, ref)
    return [
        {"source": "idealized", "group": dist.group, "family": dist.family, "domain": "idealized", "task": task,
         "condition": "idealized", "shot_kind": kind, "shots": count, **query,
         "prompt": _prompt(task, context, shots, ask(task, query.get("value"), query.get("low"), query.get("high")))}
        for query in _queries(task, ref)
    ]  # fmt: skip


def real_world_context(var: RealWorldVariable, condition: str) -> str:
    """The description of a real-world variable under one condition."""
    what = f"{var.name.lower()} ({var.unit})"
    stats_ = f"mean {fmt(var.shown_mean)} and standard deviation {fmt(var.shown_std)}"
    if condition == "fitted_family":
        return f"Consider {what}, which follows {var.describe_fitted()}."
    if condition == "real_world_context":
        return f"{var.context} Consider {what} in this population; it has {stats_}."
    if condition == "normal_approximation":
        return f"{var.context} Consider {what} in this population; it is normally distributed with {stats_}."
    raise DistcharError(f"Unknown real-world condition '{condition}'; known: {', '.join(CONDITIONS[1:])}.")


def real_world_questions(var: RealWorldVariable, task: str, condition: str) -> list[dict]:
    """Every question of one real-world cell (zero-shot)."""
    if task == "percentiles":
        queries = [{"target": p, "value": q, "truth": p} for p, q in sorted(var.quantiles.items())]
    elif task == "probabilities":
        queries = [{"target": m, "low": a, "high": b, "truth": m} for m, (a, b) in sorted(var.central_ranges.items())]
    else:
        raise DistcharError("Real-world questions are percentiles or probabilities (no samples to test draws against).")
    context = real_world_context(var, condition)
    return [
        {"source": "real_world", "group": var.name, "family": var.fitted_family, "domain": var.domain, "task": task,
         "condition": condition, "shot_kind": "none", "shots": 0, **query,
         "prompt": _prompt(task, context, "", ask(task, query.get("value"), query.get("low"), query.get("high")))}
        for query in queries
    ]  # fmt: skip


def shot_settings() -> list[tuple[str, int]]:
    """Zero-shot, then every shot kind at 1, 3, 5, 7, 9 shots."""
    return [("none", 0)] + [(kind, n) for kind in SHOT_KINDS[1:] for n in SHOT_COUNTS]


def benchmark_questions(
    real_world: dict[str, RealWorldVariable], seed: int = DEFAULT_SEED, size: int = REFERENCE_SIZE
) -> list[dict]:
    """The whole benchmark grid: idealized tasks x shot settings, real-world tasks x conditions."""
    rows = []
    for dist in idealized_groups():
        ref = dist.reference(seed, size)
        for task in TASKS:
            for kind, count in shot_settings():
                rows += idealized_questions(dist, task, kind, count, seed, ref)
    for var in real_world.values():
        for task in ("percentiles", "probabilities"):
            for condition in CONDITIONS[1:]:
                rows += real_world_questions(var, task, condition)
    for i, row in enumerate(rows):
        row["id"] = f"q{i:05d}"
        row["split"] = "benchmark"
    return rows


def answer_text(task: str, truth: float) -> str:
    """The target answer of a fine-tuning question."""
    return f"<answer>{truth:.1f}</answer>" if task == "percentiles" else f"<answer>{truth:.3f}</answer>"


def finetuning_splits(
    draws_per_family: int, shares: tuple[float, float, float], seed: int = DEFAULT_SEED, size: int = REFERENCE_SIZE
) -> dict[str, list[dict]]:
    """Train / validation / test questions about random members of every family, split by draw."""
    names = ("train", "validation", "test")
    out: dict[str, list[dict]] = {name: [] for name in names}
    for family in FAMILIES:
        rng = _cell_rng(seed, "finetune", family)
        draws, seen = [], {Distribution(family, CANONICAL[family]).key}
        while len(draws) < draws_per_family:
            params = random_parameters(family, rng)
            if family == "uniform" and params["high"] <= params["low"]:
                continue
            key = Distribution(family, params).key
            if key not in seen:  # distinct draws, never the benchmark's own parameters
                seen.add(key)
                draws.append(params)
        cut = np.cumsum(np.round(np.array(shares) / sum(shares) * draws_per_family)).astype(int)
        for index, params in enumerate(draws):
            split = names[int(np.searchsorted(cut, index, side="right"))] if index < cut[-1] else names[-1]
            outcomes = range(len(params["probs"])) if family == "multinomial" else [None]
            for outcome in outcomes:
                dist = Distribution(family, params, outcome)
                ref = dist.reference(seed, size)
                for task in ("percentiles", "probabilities"):
                    for row in idealized_questions(dist, task, "none", 0, seed, ref):
                        row.update(split=split, params=params, target_answer=answer_text(task, row["truth"]))
                        out[split].append(row)
    for name in names:
        for i, row in enumerate(out[name]):
            row["id"] = f"{name[0]}{i:05d}"
    return out


def repeat_sampling(questions, n: int):
    """Sampling questions repeated ``n`` times (one generation each, temperature 1), with ``sample``."""
    import pandas as pd

    sampling = questions["task"] == "sampling"
    repeated = questions[sampling].loc[lambda f: f.index.repeat(n)].copy()
    repeated["sample"] = repeated.groupby(level=0).cumcount()
    return pd.concat([questions[~sampling].assign(sample=0), repeated], ignore_index=True)


def write_jsonl(rows: list[dict], path: Path) -> None:
    with open(path, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row, sort_keys=True) + "\n")


def read_questions(path: Path) -> pd.DataFrame:
    """A question file as a DataFrame (every column present, None where a task has no such field)."""
    if not path.exists():
        raise DistcharError(f"No question set at {path}; run `dvc repro odds_questions` first.")
    frame = pd.read_json(path, lines=True, dtype=False)
    for column in ("value", "low", "high", "truth"):
        if column not in frame:
            frame[column] = math.nan
    return frame

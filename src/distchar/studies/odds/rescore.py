"""Re-score a CSV of answers (ours or a published run's) against our ground truth.

    python -m distchar.studies.odds.rescore answers.csv [--out scores.csv] [--seed 1337]

Columns (``distchar.studies.odds.scoring.ANSWER_COLUMNS``): ``task``, ``group``, ``answer``
always; ``value`` for percentiles; ``low`` and ``high`` for probabilities; optional
``condition``, ``shot_kind``, ``shots``. Prints mean +- SEM over groups per setting (real-world
also per domain) and writes the per-question scores to ``--out`` if given. A malformed row stops
with one sentence naming the row and the column.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from distchar.errors import DistcharError
from distchar.studies.odds.distributions import DEFAULT_SEED, REFERENCE_SIZE, load_real_world
from distchar.studies.odds.scoring import attach_truth, group_errors, score_rows, summarise


def rescore(path: Path, seed: int = DEFAULT_SEED, size: int = REFERENCE_SIZE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-question scores, summary with real-world rows also per domain) of a CSV of answers."""
    try:
        frame = pd.read_csv(path, dtype={"answer": str}, keep_default_na=False, na_values=[""])
    except FileNotFoundError as exc:
        raise DistcharError(f"{path} does not exist.") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DistcharError(f"{path} is not a readable CSV ({exc}).") from exc
    rows = attach_truth(frame, load_real_world(), str(path), seed, size)
    scored = score_rows(rows, seed, size)
    groups = group_errors(scored, seed, size)
    real = groups[groups["source"] == "real_world"]
    summary = pd.concat([summarise(groups), summarise(real, by=["domain"]) if len(real) else None], ignore_index=True)
    return scored, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("answers", type=Path)
    parser.add_argument("--out", type=Path, help="where to write the per-question scores (CSV)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="reference-sample seed (default 1337)")
    args = parser.parse_args(argv)
    try:
        scored, summary = rescore(args.answers, args.seed)
    except DistcharError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    columns = ["task", "setting", *(["domain"] if "domain" in summary else []), "mean", "sem", "groups", "questions",
               "unparseable_share", "out_of_range_share"]  # fmt: skip
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(summary[columns].round(3).to_string(index=False))
    if args.out:
        scored.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

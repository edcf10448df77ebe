"""Stage 08a (odds_questions): the question sets of What Are the Odds? and the reference floors.

Writes, in ``results/08_odds_questions/`` (from ``data/what_are_the_odds_real_world.json`` and
the ``odds`` section of params.yaml):

- ``benchmark.jsonl``: the whole grid (idealized 14 groups x 3 tasks x 16 shot settings;
  real-world 12 variables x 2 tasks x 3 conditions), one question per line, with ground truth;
- ``train.jsonl``, ``validation.jsonl``, ``test.jsonl``: fine-tuning questions about random
  family members, split by parameter draw (``split.json`` says how many of each);
- ``floors.csv`` and ``floors.json`` (DVC metrics): the reference strategies, scored by the
  same scorer on the zero-shot questions (idealized per setting, real-world overall and per domain).

Run: ``python -m distchar.stages.odds_questions [params.yaml]``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd

from distchar.atomic import atomic_directory
from distchar.config import OddsParams, load_params
from distchar.errors import command
from distchar.results import stage_folder
from distchar.studies.odds.distributions import load_real_world
from distchar.studies.odds.floors import floors
from distchar.studies.odds.questions import benchmark_questions, finetuning_splits, repeat_sampling, write_jsonl

log = logging.getLogger(__name__)
TABLES = Path("data/what_are_the_odds_real_world.json")
OUT = stage_folder("odds_questions")


def floor_metrics(table: pd.DataFrame) -> dict:
    """floors.json: strategy -> task -> setting (or domain) -> mean error."""
    out: dict = {}
    for row in table.to_dict("records"):
        domain = row.get("domain")
        where = (
            f"idealized/{row['setting']}"
            if row["source"] == "idealized"
            else "real_world/" + ("all" if pd.isna(domain) else domain)
        )
        out.setdefault(row["strategy"], {}).setdefault(row["task"], {})[where] = round(row["mean"], 4)
    return out


def run_questions(params: OddsParams, tables: Path, out_dir: Path) -> dict:
    """Stage 08a; see the module docstring. Returns split.json's content."""
    started = time.perf_counter()
    real_world = load_real_world(tables)
    rows = benchmark_questions(real_world, params.seed, params.reference_samples)
    splits = finetuning_splits(params.finetune_draws, params.split, params.seed, params.reference_samples)
    frame = pd.DataFrame.from_records(rows)
    zero = frame[(frame["shot_kind"] == "none")]
    ideal = repeat_sampling(zero[zero["source"] == "idealized"], params.sampling_n)
    real = zero[(zero["source"] == "real_world") & (zero["condition"] == "normal_approximation")]
    table = pd.concat(
        [floors(ideal, real_world, seed=params.seed, size=params.reference_samples),
         floors(real, real_world, seed=params.seed, size=params.reference_samples),
         floors(real, real_world, by=["domain"], seed=params.seed, size=params.reference_samples)],
        ignore_index=True,
    )  # fmt: skip
    info = {
        "benchmark_questions": len(rows),
        **{f"{name}_questions": len(part) for name, part in splits.items()},
        **{f"{name}_distributions": len({(r["family"], json.dumps(r["params"], sort_keys=True)) for r in part})
           for name, part in splits.items()},
        "split_unit": "one random parameter draw of a family: all its questions are in one split",
        "shares": list(params.split),
        "draws_per_family": params.finetune_draws,
    }  # fmt: skip
    with atomic_directory(out_dir) as scratch:
        write_jsonl(rows, scratch / "benchmark.jsonl")
        for name, part in splits.items():
            write_jsonl(part, scratch / f"{name}.jsonl")
        table.to_csv(scratch / "floors.csv", index=False)
        (scratch / "floors.json").write_text(json.dumps(floor_metrics(table), indent=1) + "\n")
        (scratch / "split.json").write_text(json.dumps(info, indent=1) + "\n")
    log.info("%d benchmark questions, splits %s, floors in %.1f s", len(rows),
             {k: len(v) for k, v in splits.items()}, time.perf_counter() - started)  # fmt: skip
    return info


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s odds_questions %(levelname)s %(message)s")
    return command(lambda: run_questions(load_params(args[0] if args else "params.yaml").odds, TABLES, OUT))


if __name__ == "__main__":
    raise SystemExit(main())

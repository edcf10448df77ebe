"""A profile's learning-rate pilot: each init's rate, picked on the validation split before the profile runs.

``python -m distchar.pilot PROFILE TASK --seeds 0 --rates INIT=R1,R2,... [INIT=...]`` trains every
named init at each of its candidate rates on the pilot seeds, with every other setting of the
profile's documented preset (``PRESETS``: steps, batch size, data, validation curve) applied to
this workspace's params.yaml, as stage 06 trains (``distchar.stages.train.run_training``). Each
run is then scored on the task's validation split as stage 07 scores it; the test split is never
read. The pick of an init is the rate with the lowest mean validation loss over the pilot seeds;
it is *bracketed* when a lower and a higher candidate both did worse (the optimum lies between
them). Where the pick lies at the edge of the candidates, the pilot tries the next rate beyond it
(half the lowest or twice the highest) and picks again, up to ``--widen`` times (3).

The runs start from stage 05's inits in this workspace (``results/05_generator/<model>/inits``),
so the pilot seeds must be among the seeds stage 05 made. Runs train in
``checkpoints/pilot/<profile>/`` (a killed pilot resumes there); the outcome goes to
``results/<profile>/pilot/<task>/``, which ``distchar.profiles.save`` keeps:

- ``runs.csv``: init, seed, learning rate, validation loss, final training loss, seconds;
- ``curves.csv``: the validation-loss curve of each run (init, learning rate, seed, step, loss);
- ``picks.json``: the pilot's settings and, per init, its candidates, pick and whether it is bracketed.

A test (``tests/test_config.py``) checks that the preset trains each init at the rate picked here.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd
import yaml
from safetensors.torch import load_file

from distchar.atomic import atomic_directory
from distchar.config import Params, parse_params
from distchar.errors import DistcharError, command
from distchar.evaluation.comparisons import best_learning_rates
from distchar.evaluation.runs import restore_run, validation_loss
from distchar.lora.saved import load_index
from distchar.models.loading import load_tokenizer
from distchar.models.sources import resolve_source
from distchar.profiles import PRESETS, apply_preset, documented_preset, pilot_folder
from distchar.results import inits_folder
from distchar.stages.train import run_training
from distchar.tasks import get_task
from distchar.training.runs import ADAPTER, CHECKPOINTS, loss_curve, run_name

log = logging.getLogger(__name__)
PILOT_CHECKPOINTS = CHECKPOINTS / "pilot"


def preset_params(profile: str, params_file: Path = Path("params.yaml")) -> Params:
    """``params_file`` with the documented preset of ``profile`` applied, validated."""
    marker, page = PRESETS[profile]
    raw = apply_preset(yaml.safe_load(Path(params_file).read_text()), documented_preset(marker, page))
    return parse_params(raw, f"{params_file} with the {profile} preset")


def bracketed(candidates: list[float], means: dict[float, float], pick: float) -> bool:
    """True when a lower and a higher candidate rate both had a higher mean validation loss."""
    lower = [means[r] for r in candidates if r < pick]
    higher = [means[r] for r in candidates if r > pick]
    return bool(lower and higher and min(lower) > means[pick] and min(higher) > means[pick])


def pick_rates(runs: pd.DataFrame) -> dict[str, dict]:
    """Per init: its candidates, the rate of lowest mean validation loss over seeds, and whether it is bracketed."""
    best = best_learning_rates(runs)
    picks = {}
    for init, part in runs.groupby("init", sort=False):
        means = part.groupby("learning_rate")["validation_loss"].mean().to_dict()
        candidates = sorted(means)
        picks[init] = {"candidates": candidates, "learning_rate": best[init],
                       "validation_loss": round(means[best[init]], 5),
                       "bracketed": bracketed(candidates, means, best[init])}  # fmt: skip
    return picks


def next_candidate(candidates: list[float], means: dict[float, float]) -> float | None:
    """The rate to try next for an unbracketed pick: half the lowest candidate when it is the pick,
    twice the highest when that is; None when the pick is bracketed."""
    pick = min(candidates, key=lambda r: (means[r], r))
    if bracketed(candidates, means, pick) or min(candidates) < pick < max(candidates):
        return None  # bracketed, or an inner pick tied with a neighbour: a further rate would not help
    return pick / 2 if pick == min(candidates) else pick * 2


def run_pilot(params: Params, profile: str, task: str, seeds: list[int], rates: dict[str, list[float]],
              widen: int = 3) -> Path:  # fmt: skip
    """Train and score the pilot's runs with ``params`` (the profile's, ``preset_params``); where an
    init's pick lies at the edge of its candidates, try the next rate beyond it (a factor of 2),
    up to ``widen`` times. Returns the folder of its tables."""
    if task not in params.training.tasks:
        raise DistcharError(f"The {profile} profile trains no task '{task}' (it has {sorted(params.training.tasks)}).")
    unknown = sorted(set(rates) - set(params.lora.inits))
    if unknown:
        raise DistcharError(f"The pilot names init '{unknown[0]}', which the {profile} profile's lora.inits lacks.")
    settings = params.training.task(task)
    record_of = get_task(task)
    inits_dir = inits_folder(settings.model)
    index = load_index(inits_dir, list(rates), seeds)  # says which init or seed stage 05 did not make
    source = params.model_source(settings.model)
    lora = params.lora.model_copy(update={"seeds": seeds})
    started = time.perf_counter()
    out_dir = PILOT_CHECKPOINTS / profile / "runs" / task
    resolved = resolve_source(source)
    tokenizer = load_tokenizer(resolved)
    base = record_of.load_model(resolved, tokenizer)
    validation = record_of.examples(settings.data, "validation", tokenizer, settings.max_length, settings.eval_size)

    def trained(init: str, rate: float) -> list[dict]:
        """One rate of one init on every pilot seed, scored; a run finished earlier is reused
        (each run's fingerprint holds its own rate alone)."""
        task_settings = settings.model_copy(update={"inits": [init], "seeds": seeds, "learning_rates": [rate]})
        training = params.training.model_copy(update={"tasks": {task: task_settings}, "launch": ""})
        scored = []
        for record in run_training(task, source, inits_dir, training, lora, out_dir, PILOT_CHECKPOINTS / profile):
            run_dir = out_dir / init / run_name(record["seed"], rate)
            row = index[(init, record["seed"])]
            model = restore_run(base, resolved.architecture, load_file(inits_dir / row["file"]), row["compensated"],
                                lora.rank, lora.alpha, load_file(run_dir / ADAPTER))  # fmt: skip
            loss = validation_loss(model, validation, tokenizer.pad_token_id, params.evaluate.batch_size)
            del model
            log.info("pilot %s %s seed %d lr %g: validation loss %.4f", task, init, record["seed"], rate, loss)
            curve = loss_curve(run_dir, "val")
            scored.append({"init": init, "seed": record["seed"], "learning_rate": rate, "validation_loss": loss,
                           "final_train_loss": record["final_loss"], "seconds": record.get("seconds"),
                           "curve": {} if curve is None else {int(k): float(v) for k, v in curve.items()}})  # fmt: skip
        return scored

    records = []
    for init, candidates in rates.items():
        tried = sorted(candidates)
        records += [r for rate in tried for r in trained(init, rate)]
        for _ in range(widen):
            mine = pd.DataFrame([r for r in records if r["init"] == init])
            rate = next_candidate(tried, mine.groupby("learning_rate")["validation_loss"].mean().to_dict())
            if rate is None or not 0 < rate <= 1:
                break
            log.info("pilot %s %s: the pick lies at the edge of %s; trying %g", task, init, tried, rate)
            tried = sorted([*tried, rate])
            records += trained(init, rate)
    curves = [{**{k: r[k] for k in ("init", "seed", "learning_rate")}, "step": step, "val_loss": value}
              for r in records for step, value in r.pop("curve").items()]  # fmt: skip
    table = pd.DataFrame(records)
    summary = {"profile": profile, "task": task, "seeds": seeds, "steps": settings.steps,
               "batch_size": settings.batch_size, "validation_examples": len(validation),
               "wall_s": round(time.perf_counter() - started, 1), "inits": pick_rates(table)}  # fmt: skip
    folder = pilot_folder(profile, task)
    with atomic_directory(folder) as scratch:
        table.to_csv(scratch / "runs.csv", index=False)
        pd.DataFrame(curves).to_csv(scratch / "curves.csv", index=False)
        (scratch / "picks.json").write_text(json.dumps(summary, indent=1) + "\n")
    return folder


def parse_rates(items: list[str]) -> dict[str, list[float]]:
    rates = {}
    for item in items:
        init, sep, values = item.partition("=")
        try:
            parsed = [float(v) for v in values.split(",")] if sep else []
        except ValueError:
            parsed = []
        if not parsed or any(not 0 < r <= 1 for r in parsed):
            raise DistcharError(f"--rates takes INIT=R1,R2,... with rates in (0, 1], not '{item}'.")
        rates[init] = parsed
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distchar.pilot", description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", choices=sorted(PRESETS))
    parser.add_argument("task")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--rates", nargs="+", required=True, metavar="INIT=R1,R2,...")
    parser.add_argument("--widen", type=int, default=3, help="times an edge pick may add the next rate beyond it")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pilot %(levelname)s %(message)s")

    def work():
        rates = parse_rates(args.rates)
        print(f"wrote {run_pilot(preset_params(args.profile), args.profile, args.task, args.seeds, rates, args.widen)}")

    return command(work)


if __name__ == "__main__":
    raise SystemExit(main())

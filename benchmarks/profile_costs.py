"""Benchmark: what the `powered` profile costs on this machine, measured before running it.

Reads the profile's `dvc exp run -S ...` block (docs/pipeline.md, ``<!-- powered-profile -->``),
applies it to params.yaml and, for each task of stage 06, measures on the real models and data:

- ``step_s``: seconds per optimizer step at the profile's batch size and length (stage 06's own
  code, ``run_training``, on ``MEASURE_STEPS`` steps of one run; validation excluded), and the
  setup of a run (``run_s`` minus the steps: deep copy, adapter, checkpoints);
- ``curve_point_s``: one point of the validation-loss curve (``curve_size`` examples);
- ``validation_s`` and ``test_s``: stage 07's validation loss and test scores of one run, timed on
  ``SAMPLE`` examples and scaled to the profile's ``eval_size``;

and, for study 09, ``seconds_per_model`` (one MLP and one CNN trained with cross-entropy and
attacked at the profile's settings, one thread each, as its workers run). From these it predicts
the wall time of each part of the profile (``predicted_s``). Run it after ``make run`` (it reads
stage 05's inits and stage 08's question splits):

    python benchmarks/profile_costs.py      # results: benchmarks/results/profile_costs.json
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import torch
from common import write_results

from distchar.config import Params
from distchar.evaluation.runs import validation_loss
from distchar.models.loading import load_tokenizer
from distchar.models.sources import resolve_source
from distchar.pilot import preset_params
from distchar.results import inits_folder
from distchar.stages.train import run_training
from distchar.tasks import get_task

MEASURE_STEPS = {"odds": 8, "sentiment": 40}
SAMPLE = {"odds": 16, "sentiment": 256}


def task_costs(params: Params, task: str) -> dict:
    """Measured seconds of one task's parts, and the predicted wall time of its stages 06 and 07."""
    record, settings = get_task(task), params.training.task(task)
    grid = params.training.grid(task, params.lora)
    source = params.model_source(settings.model)
    steps = MEASURE_STEPS[task]
    with tempfile.TemporaryDirectory() as scratch:
        one_run = settings.model_copy(
            update={
                "steps": steps,
                "eval_every": 0,
                "inits": [grid.inits[0]],
                "seeds": [grid.seeds[0]],
                "learning_rates": [grid.learning_rates[grid.inits[0]][0]],
            }
        )
        short = params.training.model_copy(update={"tasks": {task: one_run}})
        started = time.perf_counter()
        [run] = run_training(task, source, inits_folder(settings.model), short, params.lora, Path(scratch) / "out",
                             Path(scratch) / "checkpoints")  # fmt: skip
        run_s = time.perf_counter() - started
    resolved = resolve_source(source)
    tokenizer = load_tokenizer(resolved)
    model = record.load_model(resolved, tokenizer).eval()
    load_s = run_s - run["seconds"]  # model load, tokenising, copy, adapter, files: paid once per run here
    pad = tokenizer.pad_token_id
    batch = params.evaluate.batch_size

    def timed(work) -> float:
        started = time.perf_counter()
        work()
        return time.perf_counter() - started

    curve = record.examples(settings.data, "validation", tokenizer, settings.max_length, settings.curve_size)
    curve_point_s = timed(lambda: validation_loss(model, curve, pad, batch))
    sample = record.examples(settings.data, "validation", tokenizer, settings.max_length, SAMPLE[task])
    size = len(record.examples(settings.data, "validation", tokenizer, settings.max_length, settings.eval_size))
    validation_s = timed(lambda: validation_loss(model, sample, pad, batch)) / len(sample) * size
    test = record.read_test(settings.data, tokenizer, settings.max_length, SAMPLE[task])
    test_size = len(record.read_test(settings.data, tokenizer, settings.max_length, settings.eval_size))
    with torch.no_grad():
        test_s = timed(lambda: record.test_scores(model, tokenizer, test, batch, params.odds.max_new_tokens))
    test_s = test_s / len(test) * test_size
    runs = grid.runs
    points = (settings.steps // settings.eval_every + 2) if settings.eval_every else 0
    step_s = run["seconds"] / steps
    # load_s holds the model load and tokenising, paid once per stage: a run pays at most its copy and adapter
    train_s = runs * (settings.steps * step_s + points * curve_point_s + min(load_s, 5.0))
    evaluate_s = runs * validation_s + (len(grid.inits) * len(grid.seeds) + 1) * test_s + validation_s
    return {"runs": runs, "steps": settings.steps, "batch_size": settings.batch_size, "step_s": round(step_s, 4),
            "run_setup_s": round(load_s, 2), "curve_point_s": round(curve_point_s, 3), "curve_points": points,
            "validation_examples": size, "validation_s": round(validation_s, 2), "test_examples": test_size,
            "test_s": round(test_s, 2),
            "predicted_s": {"train": round(train_s), "evaluate": round(evaluate_s)}}  # fmt: skip


def robustness_costs(params: Params) -> dict:
    from distchar.studies.robustness.study import run_one
    from distchar.studies.robustness.testbed import loss_specs

    settings = params.robustness
    specs = loss_specs(settings.losses, settings.dsl_b, settings.label_smoothing, settings.dsl_reduction)
    ce = next(spec for spec in specs if spec.label == "ce")
    seconds = {}
    for architecture in settings.architectures:
        _, _, timings = run_one((architecture, ce, 0, settings, 1))
        seconds[architecture] = round(timings["train_seconds"] + timings["attack_seconds"], 1)
    models = len(settings.architectures) * len(specs) * settings.seeds
    per_model = sum(seconds.values()) / len(seconds)
    return {"seconds_per_model": seconds, "models": models, "jobs": settings.jobs,
            "predicted_s": round(models * per_model / settings.jobs)}  # fmt: skip


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    params = preset_params("powered")
    results = {"profile": "powered", "tasks": {task: task_costs(params, task) for task in params.training.tasks},
               "robustness": robustness_costs(params)}  # fmt: skip
    parts = [s for t in results["tasks"].values() for s in t["predicted_s"].values()]
    results["predicted_total_s"] = round(sum(parts) + results["robustness"]["predicted_s"])
    write_results("profile_costs", results)


if __name__ == "__main__":
    main()

"""Stage 07 evaluate: every run of stage 06 scored, the inits compared at tuned learning rates.

Runs where training runs (``training.device``: ``auto`` is CUDA when present). For one task, from
``results/06_train/<task>`` (the trained tensors), ``results/05_generator/
<model>/inits`` (the starts) and the task's data, writes in ``results/07_evaluate/<task>/``:

- ``runs.csv``: every init x seed x learning rate with its validation loss and training loss,
  and the task's test metrics (``distchar.tasks``; odds: mean absolute error, per question type,
  parse rate; sentiment: accuracy, F1) of the runs at each init's tuned learning rate (of every run with
  ``evaluate.test_all_runs``); ``examples.csv``: their per-example test scores (for re-analysis);
- ``summary.csv``: per init (of the task's ``TrainingParams.grid``) its tuned learning rate (lowest
  validation loss over seeds) and the mean over seeds with a t interval of each test metric, beside
  the task's baseline row (odds: the model without fine-tuning, asked the same questions;
  sentiment: the majority class);
- ``comparisons.csv``: every init against ``default`` and the claim init against every baseline:
  the mean over seeds of each seed's paired difference, its t interval over seeds, the exact
  sign-flip p over seeds, the effect size d_z over seeds and the per-seed precision ``example_se``;
- ``claims.csv`` and ``claims.md``: does ``evaluate.claim_init`` beat each of
  ``evaluate.baselines``? yes / no / inconclusive (Holm over the baselines), or
  ``underpowered (n seeds)`` when n seeds cannot reach significance whatever the data;
- ``loss_curves.csv`` (training loss per step, mean over seeds at the tuned rate, one column per
  init: ``dvc plots show``), ``validation_curves.csv`` (the validation loss logged while training,
  same layout; no rows unless the task sets ``eval_every``) and summary.csv's ``validation_last_quarter``
  (its relative change over the last quarter of the steps), ``validation_last_quarter_share`` (the
  part of its whole fall that came in that quarter) and ``validation_last_quarter_flattened`` (that
  part below ``FLATTENED``, 5%);
  ``loss_curves.png`` (mean and min-max band of each), ``differences.png``;
- ``metrics.json`` (DVC metrics).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.torch import load_file

from distchar.atomic import atomic_directory
from distchar.config import EvaluateParams, LoraParams, OddsParams, TaskSettings, TrainingParams
from distchar.devices import resolve_device
from distchar.evaluation.comparisons import best_learning_rates, claim_table
from distchar.evaluation.runs import restore_run, validation_loss
from distchar.lora.saved import load_index
from distchar.models.loading import load_tokenizer
from distchar.models.sources import resolve_source
from distchar.plots import save_figure, use_style
from distchar.progress import each
from distchar.statistics import paired_comparison, seed_interval
from distchar.tasks import Task, get_task
from distchar.timings import write_timings
from distchar.training.runs import ADAPTER, loss_curve, read_runs

log = logging.getLogger(__name__)


class Scorer:
    """Scores one model on the task's validation and test examples (the data is read once)."""

    def __init__(self, task: Task, settings: TaskSettings, tokenizer, evaluate: EvaluateParams, odds: OddsParams):
        self.task, self.settings, self.tokenizer, self.evaluate, self.odds = task, settings, tokenizer, evaluate, odds
        self.validation = task.examples(settings.data, "validation", tokenizer, settings.max_length, settings.eval_size)
        self.test = task.read_test(settings.data, tokenizer, settings.max_length, settings.eval_size)

    def validation_loss(self, model) -> float:
        return validation_loss(model, self.validation, self.tokenizer.pad_token_id, self.evaluate.batch_size)

    def test_scores(self, model) -> pd.DataFrame:
        return self.task.test_scores(
            model, self.tokenizer, self.test, self.evaluate.batch_size, self.odds.max_new_tokens
        )


def compare_inits(examples: pd.DataFrame, best: dict[str, float], task: Task, evaluate: EvaluateParams,
                  inits: list[str]) -> pd.DataFrame:  # fmt: skip
    """Every init against default, and the claim init against each baseline, at tuned learning rates."""
    sign = 1.0 if task.higher_is_better else -1.0
    tuned = examples[[best[i] == lr for i, lr in zip(examples["init"], examples["learning_rate"], strict=True)]]
    matrix = {init: part.pivot(index="seed", columns="example", values="score").sort_index()
              for init, part in tuned.groupby("init")}  # fmt: skip
    pairs = [(init, "default") for init in inits if init != "default" and "default" in inits]
    pairs += [(evaluate.claim_init, b) for b in evaluate.baselines if (evaluate.claim_init, b) not in pairs]
    rows = []
    for a, b in pairs:
        if a == b or a not in matrix or b not in matrix:
            continue
        comparison = paired_comparison(sign * matrix[a].to_numpy(), sign * matrix[b].to_numpy(),
                                       evaluate.permutations, evaluate.confidence, evaluate.seed)  # fmt: skip
        rows.append({"task": task.name, "a": a, "b": b, "lr_a": best[a], "lr_b": best[b], **comparison.as_dict()})
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, best: dict[str, float], metric_names: list[str], confidence: float) -> pd.DataFrame:
    rows = []
    for init, part in runs.groupby("init", sort=False):
        tuned = part[part["learning_rate"] == best[init]]
        row = {"init": init, "learning_rate": best[init], "seeds": len(tuned),
               "validation_loss": float(tuned["validation_loss"].mean())}  # fmt: skip
        for name in metric_names:
            mean, low, high = seed_interval(tuned[name], confidence)
            row |= {name: mean, f"{name}_low": low, f"{name}_high": high}
        rows.append(row)
    return pd.DataFrame(rows)


def tuned_curves(runs: list[dict], best: dict[str, float], inits: list[str], split: str) -> dict[str, pd.DataFrame]:
    """init -> its loss curves at the tuned learning rate, one column per seed (``split``: train or
    val); {} when the runs logged no validation curve."""
    curves = {}
    for init in inits:
        tuned = {r["seed"]: loss_curve(Path(r["dir"]), split) for r in runs
                 if r["init"] == init and r["learning_rate"] == best[init]}  # fmt: skip
        if any(curve is None for curve in tuned.values()):
            return {}
        curves[init] = pd.concat(tuned, axis=1)
    return curves


FLATTENED = 0.05
"""A loss curve has flattened when its last quarter of steps brought less than this share of its whole fall."""


def last_quarter(curve: pd.Series) -> dict[str, float | bool]:
    """How much a loss curve still moved over its last quarter of steps: ``change``, relative to its
    value at 75% of the steps ((end - at 75%) / at 75%); ``share``, the part of its whole fall from
    step 0 that came then ((at 75% - end) / (start - end); NaN when it did not fall); ``flattened``,
    share below ``FLATTENED``."""
    at, start, end = curve[curve.index <= 0.75 * curve.index.max()].iloc[-1], curve.iloc[0], curve.iloc[-1]
    share = float((at - end) / (start - end)) if start > end else float("nan")
    return {"change": float((end - at) / at), "share": share, "flattened": bool(share < FLATTENED)}


def plot_loss_curves(curves: dict[str, pd.DataFrame], validation: dict[str, pd.DataFrame], task: str):
    import matplotlib.pyplot as plt

    use_style()
    panels = [("training loss", curves)] + ([("validation loss", validation)] if validation else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.2), layout="constrained", squeeze=False)
    for ax, (label, frames) in zip(axes[0], panels, strict=True):
        for init, frame in frames.items():
            mean = frame.mean(axis=1)
            line = ax.plot(mean.index, mean, label=init, lw=1.4, marker="." if label.startswith("val") else None)[0]
            ax.fill_between(mean.index, frame.min(axis=1), frame.max(axis=1), color=line.get_color(), alpha=0.15)
        ax.set(xlabel="step", ylabel=label,
               title=f"{task}: {label} at each init's tuned learning rate\n(mean and range over seeds)")  # fmt: skip
        ax.legend(fontsize=7, ncol=3)
    return fig


def plot_differences(comparisons: pd.DataFrame, task: Task):
    import matplotlib.pyplot as plt

    use_style()
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * max(len(comparisons), 3) + 1.2), layout="constrained")
    labels = [f"{a} vs {b}" for a, b in zip(comparisons["a"], comparisons["b"], strict=True)]
    y = np.arange(len(comparisons))
    ax.errorbar(comparisons["difference"], y, xerr=[comparisons["difference"] - comparisons["low"],
                comparisons["high"] - comparisons["difference"]], fmt="o", capsize=3)  # fmt: skip
    ax.axvline(0, color="grey", lw=1, ls="--")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    direction = "higher" if task.higher_is_better else "lower"
    ax.set(xlabel=f"paired difference in {task.primary_metric}\n(positive: the first init is better; "
                  f"{direction} is better)",
           title=f"{task.name}: paired differences at tuned learning rates\n(Student-t interval over "
                 "seeds)")  # fmt: skip
    return fig


def claims_markdown(claims: pd.DataFrame, task: str, model: str, metric: str, seeds: int) -> str:
    lines = [f"Does `{claims['a'].iloc[0]}` beat each baseline on `{task}` ({model}, {metric}, {seeds} seeds, "
             "tuned learning rates)?" if len(claims) else f"No claim rows for {task}.", "",
             "| baseline | difference | interval over seeds | p (sign-flip over seeds) | p (Holm) | d_z | "
             "per-seed SE | detectable at 80% power | claim |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in claims.to_dict("records"):
        detectable = "-" if pd.isna(r["detectable"]) else f"{r['detectable']:.4f}"
        lines.append(f"| {r['b']} | {r['difference']:+.4f} | [{r['low']:+.4f}, {r['high']:+.4f}] | "
                     f"{r['p']:.3f} | {r['p_holm']:.3f} | {r['effect_size']:+.3f} | {r['example_se']:.4f} | "
                     f"{detectable} | **{r['claim']}** |")  # fmt: skip
    if len(claims):
        lines += ["", "Detectable: the smallest true difference this many seeds would find with 80% power at "
                  "level (1 - confidence) / baselines, from the spread of the per-seed differences."]  # fmt: skip
    return "\n".join(lines) + "\n"


def run_evaluation(task: str, model_name: str, source: str, settings: TaskSettings, inits_dir: Path, train_dir: Path,
                   training: TrainingParams, lora: LoraParams, evaluate: EvaluateParams, odds: OddsParams,
                   out_dir: Path) -> dict:  # fmt: skip
    """Stage 07 for one task; see the module docstring. Returns the metrics."""
    started = time.perf_counter()
    record_of = get_task(task)
    grid = training.grid(task, lora)
    runs = read_runs(train_dir, grid.inits, grid.seeds, grid.learning_rates)
    index = load_index(inits_dir, grid.inits, grid.seeds)
    resolved = resolve_source(source)
    tokenizer = load_tokenizer(resolved)
    scorer = Scorer(record_of, settings, tokenizer, evaluate, odds)
    base = record_of.load_model(resolved, tokenizer).to(resolve_device(training.device, "training.device"))

    def restored(run):  # the init file is read per restore: small, and cheaper than holding every init in memory
        row = index[(run["init"], run["seed"])]
        return restore_run(base, resolved.architecture, load_file(Path(inits_dir) / row["file"]), row["compensated"],
                           lora.rank, lora.alpha, load_file(Path(run["dir"]) / ADAPTER))  # fmt: skip

    records = []
    for run in each(runs, desc=f"validate {task}", unit="run"):  # validation loss of every run picks each init's rate
        model = restored(run)
        records.append({"init": run["init"], "seed": run["seed"], "learning_rate": run["learning_rate"],
                        "validation_loss": scorer.validation_loss(model),
                        "final_train_loss": run["final_loss"]})  # fmt: skip
        del model
        log.info("%s %s seed %d lr %g: validation loss %.4f", task, run["init"], run["seed"], run["learning_rate"],
                 records[-1]["validation_loss"])  # fmt: skip
    best = best_learning_rates(pd.DataFrame(records))
    example_frames = []
    tested = [(run, record) for run, record in zip(runs, records, strict=True)
              if evaluate.test_all_runs or best[run["init"]] == run["learning_rate"]]  # fmt: skip
    for run, record in each(tested, desc=f"test {task}", unit="run"):  # the test split, at the tuned rates
        model = restored(run)
        scores = scorer.test_scores(model)
        del model
        metrics = record_of.metrics(scores)
        record.update(metrics)
        keys = {"init": run["init"], "seed": run["seed"], "learning_rate": run["learning_rate"]}
        example_frames.append(scores.assign(**keys, example=np.arange(len(scores))))
        log.info("%s %s seed %d lr %g: %s", task, run["init"], run["seed"], run["learning_rate"], metrics)
    runs_table = pd.DataFrame(records)
    examples = pd.concat(example_frames, ignore_index=True)
    base_row = record_of.baseline(base, tokenizer, scorer)  # the task's reference beside the fine-tuned runs
    not_metrics = ("init", "seed", "learning_rate", "validation_loss", "final_train_loss")
    metric_names = [c for c in runs_table.columns if c not in not_metrics]
    curves, validation = tuned_curves(runs, best, grid.inits, "train"), tuned_curves(runs, best, grid.inits, "val")
    summary = summarise(runs_table, best, metric_names, evaluate.confidence)
    if validation:
        moved = {init: last_quarter(frame.mean(axis=1)) for init, frame in validation.items()}
        for key in ("change", "share", "flattened"):
            summary[f"validation_last_quarter{'' if key == 'change' else '_' + key}"] = summary["init"].map(
                {init: m[key] for init, m in moved.items()})  # fmt: skip
    summary = pd.concat([summary, pd.DataFrame([base_row])], ignore_index=True)
    comparisons = compare_inits(examples, best, record_of, evaluate, grid.inits)
    claims = claim_table(comparisons, evaluate.claim_init, evaluate.baselines, evaluate.confidence)
    wide = pd.DataFrame({init: frame.mean(axis=1) for init, frame in curves.items()}).rename_axis("step")
    metric = record_of.primary_metric
    result = {
        "task": task, "model": model_name, "runs": len(runs_table), "seeds": len(grid.seeds),
        "primary_metric": metric, "higher_is_better": record_of.higher_is_better,
        "tuned": {r["init"]: {"learning_rate": r["learning_rate"], metric: round(r[metric], 5),
                              "low": round(r[f"{metric}_low"], 5), "high": round(r[f"{metric}_high"], 5)}
                  for r in summary.to_dict("records") if r["init"] in best},
        "baseline": {base_row["init"]: round(base_row[metric], 5)},
        "claims": {r["b"]: {"claim": r["claim"], "difference": round(r["difference"], 5),
                            "p_holm": round(r["p_holm"], 4)} for r in claims.to_dict("records")},
    }  # fmt: skip
    with atomic_directory(out_dir) as scratch:
        runs_table.to_csv(scratch / "runs.csv", index=False)
        examples.to_csv(scratch / "examples.csv", index=False)
        summary.to_csv(scratch / "summary.csv", index=False)
        comparisons.to_csv(scratch / "comparisons.csv", index=False)
        claims.to_csv(scratch / "claims.csv", index=False)
        (scratch / "claims.md").write_text(claims_markdown(claims, task, model_name, metric, len(grid.seeds)))
        wide.to_csv(scratch / "loss_curves.csv")
        validation_wide = pd.DataFrame({init: frame.mean(axis=1) for init, frame in validation.items()},
                                       columns=grid.inits).rename_axis("step")  # fmt: skip
        validation_wide.to_csv(scratch / "validation_curves.csv")  # no rows without the task's eval_every
        (scratch / "metrics.json").write_text(json.dumps(result, indent=1) + "\n")
        save_figure(plot_loss_curves(curves, validation, task), scratch / "loss_curves.png")
        save_figure(plot_differences(comparisons, record_of), scratch / "differences.png")
    wall_s = round(time.perf_counter() - started, 1)
    # tied to this metrics.json: a rerun DVC restores from its run cache leaves another run's seconds here
    digest = hashlib.sha256((out_dir / "metrics.json").read_bytes()).hexdigest()
    write_timings(out_dir, {"wall_s": wall_s, "metrics_sha256": digest})
    log.info("%s: %d runs evaluated in %.1f s", task, len(runs_table), wall_s)
    return result

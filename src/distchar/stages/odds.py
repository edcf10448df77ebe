"""Stage 08 (odds@MODEL): one causal LM on the What Are the Odds? profile.

Reads ``results/08_odds_questions/benchmark.jsonl`` and ``floors.csv``, asks the questions of
``odds.profile`` (sampling questions ``odds.sampling_n`` times at temperature 1, the rest
greedily), and writes in ``results/08_odds/<model>/``:

- ``answers.csv``: every question with the raw answer; its columns are the re-scoring format
  (``python -m distchar.studies.odds.rescore answers.csv`` reproduces the scores);
- ``groups.csv`` (error per setting and group), ``summary.csv`` (mean +- SEM over groups per
  setting, real-world also per domain, each row beside the floors of its setting);
- ``metrics.json`` (DVC metrics), and figures: ``by_family.png``, ``by_shots.png``,
  ``by_condition.png``, ``predicted_vs_true.png``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from distchar.atomic import atomic_directory
from distchar.config import OddsParams
from distchar.models.chat import generate, load_language_model
from distchar.plots import save_figure, use_style
from distchar.studies.odds.parsing import ANSWER_CLOSE, ANSWER_OPEN
from distchar.studies.odds.profiles import select
from distchar.studies.odds.questions import read_questions, repeat_sampling
from distchar.studies.odds.scoring import group_errors, metrics, noise_floor, score_rows, summarise
from distchar.timings import write_timings

log = logging.getLogger(__name__)
ANSWER_CSV_COLUMNS = ["id", "task", "source", "domain", "group", "family", "condition", "shot_kind", "shots", "value",
                      "low", "high", "sample", "truth", "answer", "parsed", "status", "method", "error"]  # fmt: skip


def ask_model(lm, questions: pd.DataFrame, params: OddsParams) -> tuple[list[str], dict]:
    """Raw answers in question order, and timings."""
    answers = [""] * len(questions)
    sampling = (questions["task"] == "sampling").to_numpy()
    timings = {}
    for mask, temperature, name in ((~sampling, 0.0, "greedy"), (sampling, 1.0, "sampling")):
        index = np.flatnonzero(mask)
        if not len(index):
            continue
        started = time.perf_counter()
        out = generate(lm, questions["prompt"].iloc[index].tolist(), max_new_tokens=params.max_new_tokens,
                       batch_size=params.batch_size, prefill=ANSWER_OPEN if params.prefill_answer_tag else "",
                       stop=ANSWER_CLOSE, temperature=temperature, seed=params.seed)  # fmt: skip
        timings[f"{name}_s"] = round(time.perf_counter() - started, 2)
        for i, text in zip(index, out, strict=True):
            answers[i] = text
    return answers, timings


def beside_floors(summary: pd.DataFrame, floor_table: pd.DataFrame) -> pd.DataFrame:
    """The summary with one column per floor strategy, matched on task and setting (or domain)."""

    def where(frame):
        domain = frame["domain"].fillna("all") if "domain" in frame else "all"
        return np.where(frame["source"] == "real_world", domain, frame["setting"])

    floors_ = floor_table.assign(where=where(floor_table)).pivot_table(
        index=["task", "where"], columns="strategy", values="mean", aggfunc="first"
    )
    ideal_zero = floor_table[floor_table["source"] == "idealized"].assign(where="any")
    ideal_zero = ideal_zero.pivot_table(index="task", columns="strategy", values="mean", aggfunc="first")
    out = summary.copy()
    for strategy in floors_.columns:
        values = []
        for row in out.to_dict("records"):
            if row["source"] == "idealized":  # floors do not depend on shots: the zero-shot floor
                values.append(ideal_zero.get(strategy, pd.Series(dtype=float)).get(row["task"], math.nan))
            else:
                domain = row.get("domain", "all")
                values.append(floors_[strategy].get((row["task"], "all" if pd.isna(domain) else domain), math.nan))
        out[f"floor_{strategy}"] = values
    return out  # fmt: skip


def plot_by_family(groups: pd.DataFrame, model_name: str):
    import matplotlib.pyplot as plt
    import seaborn as sns

    use_style()
    ideal = groups[groups["source"] == "idealized"].copy()
    ideal["setting"] = ideal.apply(
        lambda r: "0-shot" if r["shot_kind"] == "none" else f"{r['shot_kind']}-{r['shots']}", axis=1
    )
    tasks = [t for t in ("percentiles", "probabilities", "sampling") if t in set(ideal["task"])]
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(5.5 * max(len(tasks), 1), 4.2), squeeze=False,
                             layout="constrained")  # fmt: skip
    labels = {"percentiles": "abs. error (percentile points)", "probabilities": "abs. error (percentage points)",
              "sampling": "KS statistic"}  # fmt: skip
    for ax, task in zip(axes[0], tasks, strict=False):
        part = ideal[ideal["task"] == task]
        sns.barplot(data=part, y="group", x="error", hue="setting", ax=ax, orient="h")
        ax.set(title=task, xlabel=labels[task], ylabel="")
    fig.suptitle(f"{model_name}: error by family (idealized distributions)")
    return fig


def plot_by_shots(summary: pd.DataFrame, model_name: str):
    import matplotlib.pyplot as plt

    use_style()
    ideal = summary[summary["source"] == "idealized"]
    tasks = [t for t in ("percentiles", "probabilities", "sampling") if t in set(ideal["task"])]
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(4.6 * max(len(tasks), 1), 3.6), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, task in zip(axes[0], tasks, strict=False):
        part = ideal[ideal["task"] == task]
        zero = part[part["shot_kind"] == "none"]
        for kind, rows in part[part["shot_kind"] != "none"].groupby("shot_kind"):
            rows = pd.concat([zero, rows]).sort_values("shots")
            ax.errorbar(rows["shots"], rows["mean"], yerr=rows["sem"], marker="o", capsize=3, label=kind)
        if part["shot_kind"].eq("none").all():
            ax.errorbar(zero["shots"], zero["mean"], yerr=zero["sem"], marker="o", capsize=3, label="zero-shot")
        floor = part["floor_always_50"] if "floor_always_50" in part else pd.Series(dtype=float)
        if floor.notna().any():
            ax.axhline(floor.dropna().iloc[0], color="grey", ls="--", lw=1, label="always 50")
        ax.set(title=task, xlabel="shots", ylabel="mean error +- SEM over groups")
        ax.legend(fontsize=7)
    fig.suptitle(f"{model_name}: error against shots")
    return fig


def plot_by_condition(domains: pd.DataFrame, model_name: str):
    import matplotlib.pyplot as plt

    use_style()
    real = domains[domains["source"] == "real_world"]
    tasks = [t for t in ("percentiles", "probabilities") if t in set(real["task"])]
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(6 * max(len(tasks), 1), 3.8), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, task in zip(axes[0], tasks, strict=False):
        part = real[real["task"] == task]
        conditions = list(dict.fromkeys(part["condition"]))
        domains_ = list(dict.fromkeys(part["domain"]))
        width = 0.8 / max(len(conditions), 1)
        for j, condition in enumerate(conditions):
            rows = part[part["condition"] == condition].set_index("domain").reindex(domains_)
            ax.bar(np.arange(len(domains_)) + j * width, rows["mean"], width, yerr=rows["sem"], capsize=3,
                   label=condition)  # fmt: skip
        floor = part.drop_duplicates("domain").set_index("domain").reindex(domains_)
        if "floor_normal_approximation" in floor:
            ax.scatter(np.arange(len(domains_)) + 0.4 - width / 2, floor["floor_normal_approximation"], marker="_",
                       s=400, color="black", label="normal-approx. calculator", zorder=3)  # fmt: skip
        ax.set_xticks(np.arange(len(domains_)) + 0.4 - width / 2, domains_)
        ax.set(title=f"real-world {task}", ylabel="mean error +- SEM over variables")
        ax.legend(fontsize=7)
    fig.suptitle(f"{model_name}: real-world error by context condition")
    return fig


def plot_predicted(scored: pd.DataFrame, model_name: str):
    import matplotlib.pyplot as plt
    import seaborn as sns

    use_style()
    part = scored[(scored["task"] == "percentiles") & (scored["status"] == "ok")]
    fig, ax = plt.subplots(figsize=(5, 4.6), layout="constrained")
    if len(part):
        sns.scatterplot(data=part, x="truth", y="parsed", hue="source", style="source", alpha=0.6, ax=ax)
    ax.plot([0, 100], [0, 100], color="grey", lw=1, ls="--")
    ax.set(xlim=(-2, 102), ylim=(-2, 102), xlabel="true percentile", ylabel="answered percentile",
           title=f"{model_name}: answered against true percentile")  # fmt: skip
    return fig


def run_evaluation(model_name: str, source: str, params: OddsParams, questions_dir: Path, out_dir: Path) -> dict:
    """Stage 08 for one model; see the module docstring. Returns the metrics."""
    started = time.perf_counter()
    questions = repeat_sampling(select(read_questions(questions_dir / "benchmark.jsonl"), params.profile),
                                params.sampling_n)  # fmt: skip
    floor_table = pd.read_csv(questions_dir / "floors.csv")
    lm = load_language_model(source, params.device)
    loaded = time.perf_counter()
    answers, timings = ask_model(lm, questions, params)
    scored = score_rows(questions.assign(answer=answers), params.seed, params.reference_samples)
    groups = group_errors(scored, params.seed, params.reference_samples)
    summary = beside_floors(summarise(groups), floor_table)
    domains = beside_floors(summarise(groups[groups["source"] == "real_world"], by=["domain"]), floor_table)
    result = {
        "model": model_name, "profile": params.profile, "questions": len(scored),
        "unparseable_share": round(float((scored["status"] == "unparseable").mean()), 4),
        "out_of_range_share": round(float((scored["status"] == "out_of_range").mean()), 4),
        "no_closing_tag_share": round(float((scored["method"] != "tags").mean()), 4),
        "sampling_noise_floor": round(noise_floor(params.sampling_n), 4),
        **metrics(summary),
        "real_world_by_domain": metrics(domains),
    }  # fmt: skip
    with atomic_directory(out_dir) as scratch:
        scored[[c for c in ANSWER_CSV_COLUMNS if c in scored]].to_csv(scratch / "answers.csv", index=False)
        groups.to_csv(scratch / "groups.csv", index=False)
        pd.concat([summary, domains], ignore_index=True).to_csv(scratch / "summary.csv", index=False)
        (scratch / "metrics.json").write_text(json.dumps(result, indent=1) + "\n")
        save_figure(plot_by_family(groups, model_name), scratch / "by_family.png")
        save_figure(plot_by_shots(summary, model_name), scratch / "by_shots.png")
        save_figure(plot_by_condition(domains, model_name), scratch / "by_condition.png")
        save_figure(plot_predicted(scored, model_name), scratch / "predicted_vs_true.png")
    timings = {"load_s": round(loaded - started, 2), **timings, "wall_s": round(time.perf_counter() - started, 2)}
    write_timings(out_dir, timings)
    log.info("%s: %d questions in %.1f s (%s)", model_name, len(scored), timings["wall_s"], timings)
    return result

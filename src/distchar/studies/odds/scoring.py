"""Scoring answers against our own ground truth, and the summary tables.

Errors: percentiles, the absolute error in percentile points; probabilities, the absolute error in
percentage points; sampling, the Kolmogorov-Smirnov statistic between a group's parsed samples and
its reference sample (with N samples the KS statistic of a perfect sampler is still about
1.36 / sqrt(N) at the 95th percentile: the noise floor printed beside it). Unparseable and
out-of-range answers are dropped and counted. Aggregation: each group's mean error, then the mean
+- SEM over groups, per setting (task, source, condition, shot kind, shots).

Re-scoring someone else's answers (``python -m distchar.studies.odds.rescore answers.csv``) needs
only the columns of ``ANSWER_COLUMNS``; ground truth is recomputed from our generator.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pandas as pd

from distchar.errors import DistcharError
from distchar.studies.odds.distributions import (
    DEFAULT_SEED,
    REFERENCE_SIZE,
    RealWorldVariable,
    Reference,
    idealized_groups,
)
from distchar.studies.odds.parsing import parse_answer

ANSWER_COLUMNS = {
    "task": "percentiles, probabilities or sampling (required)",
    "group": "idealized group (normal, log_normal, ..., multinomial_1..3) or real-world variable name (required)",
    "value": "the queried value (required for percentiles)",
    "low": "lower end of the queried range (required for probabilities)",
    "high": "upper end of the queried range (required for probabilities)",
    "answer": "the raw answer text, tags and all (required; empty means no answer)",
    "condition": "optional: idealized, fitted_family, real_world_context, normal_approximation",
    "shot_kind": "optional: none, within, within_intermediate, family (default none)",
    "shots": "optional: number of shots (default 0)",
}
SETTING = ["task", "source", "condition", "shot_kind", "shots"]


def _norm(name: str) -> str:
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


IDEALIZED = {d.group: d for d in idealized_groups()}


@cache
def reference_of(group: str, seed: int = DEFAULT_SEED, size: int = REFERENCE_SIZE) -> Reference:
    """The reference sample of an idealized group."""
    return IDEALIZED[group].reference(seed, size)


def ks_statistic(samples: np.ndarray, reference: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(samples, reference).statistic) if len(samples) else math.nan


def noise_floor(n: int) -> float:
    """The 95% KS critical value 1.36 / sqrt(n) of a perfect sampler with n draws."""
    return 1.36 / math.sqrt(n) if n else math.nan


def score_rows(rows: pd.DataFrame, seed: int = DEFAULT_SEED, size: int = REFERENCE_SIZE) -> pd.DataFrame:
    """Parse every answer and add ``parsed``, ``status``, ``method`` and ``error`` (per question;
    sampling rows get their group's KS statistic in ``error`` of the cell's first valid row only)."""
    out = rows.copy()
    parsed = [parse_answer(a if isinstance(a, str) else "", t) for a, t in zip(out["answer"], out["task"], strict=True)]
    out["parsed"] = [p.value for p in parsed]
    out["status"] = [p.status for p in parsed]
    out["method"] = [p.method for p in parsed]
    scale = np.where(out["task"] == "probabilities", 100.0, 1.0)
    out["error"] = np.abs(out["parsed"].astype(float) - out["truth"].astype(float)) * scale
    out.loc[out["task"] == "sampling", "error"] = np.nan
    return out


def group_errors(scored: pd.DataFrame, seed: int = DEFAULT_SEED, size: int = REFERENCE_SIZE) -> pd.DataFrame:
    """One row per setting and group: mean error (or KS), questions, unparseable and out-of-range counts."""
    keys = [*SETTING, "domain", "group"]
    records = []
    for key, part in scored.groupby(keys, sort=False, dropna=False):
        ok = part[part["status"] == "ok"]
        if key[0] == "sampling":
            error = ks_statistic(ok["parsed"].to_numpy(float), reference_of(key[-1], seed, size).values)
        else:
            error = float(ok["error"].mean()) if len(ok) else math.nan
        records.append({**dict(zip(keys, key, strict=True)), "error": error, "questions": len(part),
                        "unparseable": int((part["status"] == "unparseable").sum()),
                        "out_of_range": int((part["status"] == "out_of_range").sum()),
                        "no_closing_tag": int((part["method"] != "tags").sum())})  # fmt: skip
    return pd.DataFrame.from_records(records)


def setting_label(row) -> str:
    """A short name of a setting: '0-shot', 'within-3', 'family-5', or the real-world condition."""
    if row["source"] == "real_world":
        return str(row["condition"])
    return "0-shot" if row["shot_kind"] == "none" else f"{row['shot_kind']}-{int(row['shots'])}"


def summarise(groups: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Mean +- SEM over groups per setting (and any extra ``by`` columns, e.g. domain)."""
    keys = [*SETTING, *(by or [])]
    records = []
    for key, part in groups.groupby(keys, sort=False, dropna=False):
        errors = part["error"].dropna().to_numpy(float)
        n = len(errors)
        questions = int(part["questions"].sum())
        records.append({**dict(zip(keys, key, strict=True)), "mean": float(errors.mean()) if n else math.nan,
                        "sem": float(errors.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                        "groups": n, "questions": questions,
                        "unparseable_share": float(part["unparseable"].sum() / questions) if questions else math.nan,
                        "out_of_range_share": float(part["out_of_range"].sum() / questions) if questions else math.nan,
                        })  # fmt: skip
    table = pd.DataFrame.from_records(records)
    if len(table):
        table.insert(0, "setting", table.apply(setting_label, axis=1))
    return table


def metrics(summary: pd.DataFrame) -> dict:
    """Nested dict for ``dvc metrics show``: task -> source/setting -> mean, sem, groups, unparseable_share."""
    out: dict = {}
    for row in summary.to_dict("records"):
        name = f"{row['source']}/{row['setting']}" + (f"/{row['domain']}" if "domain" in row else "")
        out.setdefault(row["task"], {})[name] = {
            k: (None if isinstance(row[k], float) and math.isnan(row[k]) else round(row[k], 4))
            for k in ("mean", "sem", "groups", "unparseable_share")
        }
    return out


# ------------------------------------------------------------------ re-scoring a published CSV


def _number(frame: pd.DataFrame, i: int, column: str, path: str) -> float:
    raw = frame.at[i, column] if column in frame.columns else None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise DistcharError(f"{path} row {i + 1}, column '{column}': {raw!r} is not a number.")
    return value


def attach_truth(frame: pd.DataFrame, real_world: dict[str, RealWorldVariable], path: str = "answers.csv",
                 seed: int = DEFAULT_SEED, size: int = REFERENCE_SIZE) -> pd.DataFrame:  # fmt: skip
    """Validate a CSV of answers (``ANSWER_COLUMNS``) and add source, domain, family and truth."""
    missing = [c for c in ("task", "group", "answer") if c not in frame.columns]
    if missing:
        raise DistcharError(f"{path} has no column '{missing[0]}'; required: task, group, answer (see ANSWER_COLUMNS).")
    frame = frame.reset_index(drop=True).copy()
    variables = {_norm(name): var for name, var in real_world.items()}
    records = []
    for i in range(len(frame)):
        task, group = str(frame.at[i, "task"]).strip().lower(), frame.at[i, "group"]
        if task not in ("percentiles", "probabilities", "sampling"):
            raise DistcharError(
                f"{path} row {i + 1}, column 'task': {task!r} is not percentiles, probabilities or sampling."
            )
        name = _norm(group)
        if name in IDEALIZED:
            source, dist, var = "idealized", IDEALIZED[name], None
        elif name in variables:
            source, dist, var = "real_world", None, variables[name]
        else:
            raise DistcharError(f"{path} row {i + 1}, column 'group': {group!r} is neither an idealized group "
                                f"({', '.join(IDEALIZED)}) nor a real-world variable.")  # fmt: skip
        if var is not None and task == "sampling":
            raise DistcharError(f"{path} row {i + 1}: real-world sampling cannot be scored (no reference samples).")
        truth = math.nan
        if task == "percentiles":
            value = _number(frame, i, "value", path)
            truth = (
                float(reference_of(name, seed, size).percentile_of(value)) if dist else float(var.percentile_of(value))
            )
        elif task == "probabilities":
            low, high = _number(frame, i, "low", path), _number(frame, i, "high", path)
            if dist:
                truth = float(reference_of(name, seed, size).fraction_between(low, high))
            else:
                truth = float(var.fraction_between(low, high)[0])
        if task != "sampling" and not math.isfinite(truth):
            raise DistcharError(f"{path} row {i + 1}: the queried value lies outside the released table of {group!r}.")
        records.append({"task": task, "group": dist.group if dist else var.name, "source": source,
                        "domain": "idealized" if dist else var.domain,
                        "family": dist.family if dist else var.fitted_family, "truth": truth})  # fmt: skip
    derived = pd.DataFrame.from_records(records)
    out = frame.drop(columns=[c for c in derived.columns if c in frame.columns]).join(derived)
    out["condition"] = frame["condition"] if "condition" in frame else np.where(
        out["source"] == "idealized", "idealized", "unspecified")  # fmt: skip
    out["shot_kind"] = frame["shot_kind"] if "shot_kind" in frame else "none"
    out["shots"] = pd.to_numeric(frame["shots"], errors="coerce").fillna(0).astype(int) if "shots" in frame else 0
    out["answer"] = frame["answer"].fillna("").astype(str)
    return out

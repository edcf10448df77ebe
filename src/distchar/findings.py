"""The findings tables of the docs, rendered from result files: no number in them is typed by hand.

A generated block in README.md or docs/*.md sits between two markers::

    <!-- findings: generator smollm2-135m-instruct -->
    ... (rewritten by ``python -m distchar.findings``) ...
    <!-- /findings -->

The first word after ``findings:`` names a renderer of ``RENDERERS``, the rest is its argument.
``python -m distchar.findings`` rewrites every block from ``results/``; ``--check`` rewrites
nothing and exits 1 naming each block whose text differs from what the result files render; a
missing result file stops either with one sentence (exit 2). Renderers read only the result
files committed in git (the ``cache: false`` outputs of dvc.yaml), so a clone can check its docs.
Prose around the blocks is written by people and reads the tables; the tables are the record.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from distchar.errors import DistcharError
from distchar.fits.comparison import SIGNIFICANCE
from distchar.fits.description import FAMILY_WORDS
from distchar.profiles import pilot_folder, profile_folder
from distchar.results import ROOT, stage_folder

BLOCK = re.compile(r"(<!-- findings: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /findings -->)", re.S)
DOCS = ("README.md", "docs/*.md")


def _read(path: Path) -> str:
    if not path.exists():
        raise DistcharError(f"{path} does not exist; run the stage that writes it (dvc repro) or dvc pull.")
    return path.read_text()


def _json(path: Path):
    return json.loads(_read(path))


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(_read(path)))


def _fmt(value, spec: str) -> str:
    """``value`` formatted, or "-" where it is missing (NaN, None)."""
    return "-" if value is None or pd.isna(value) else format(value, spec)


def _names(rows: list[dict], key: str = "type") -> str:
    return ", ".join(str(r[key]) for r in rows) or "none"


def stage_markdown(relative: str) -> str:
    """A markdown file a stage wrote, as it is: ``results/<relative>``."""
    return _read(ROOT / relative).rstrip("\n") + "\n"


def generator_table(model: str) -> str:
    """Stage 05's fidelity per type: start (maximum likelihood) against the tuned knee."""
    report = json.loads(_read(stage_folder("generator", model) / "generator.json"))
    settings = report["settings"]
    draws = f"{settings['check_draws']} " if "check_draws" in settings else ""
    lines = [
        f"Mean over {draws}fresh draws per type (`results/05_generator/{model}/generator.json`; start = the "
        "maximum-likelihood estimate, tuned = the knee of the NSGA-II front).",
        "",
        "| type | real alpha | distance KS start / tuned | alpha gap start / tuned "
        "| log-spectrum Wasserstein start / tuned | tuned alpha, tilt |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, row in report["types"].items():
        start, tuned = row["fidelity_start"], row["fidelity_chosen"]
        cells = [f"{start[o]['mean']:.2f} / {tuned[o]['mean']:.2f}" for o in
                 ("distance_ks", "alpha_gap", "spectrum_wasserstein")]  # fmt: skip
        chosen = row["chosen"]
        lines.append(f"| {kind} | {row['alpha_target']:.2f} | {' | '.join(cells)} | "
                     f"{chosen['alpha']:.2f}, {chosen.get('tilt_scale', 0.0):.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def evaluated(argument: str) -> Path:
    """Stage 07's folder for ``TASK [PROFILE]``: the default run's, or a profile's published run
    (``distchar.profiles``)."""
    task, _, profile = argument.partition(" ")
    return profile_folder(profile.strip(), "evaluate", task) if profile.strip() else stage_folder("evaluate", task)


def _cell(column: str, value) -> str:
    if column == "validation_last_quarter_flattened":
        return "-" if pd.isna(value) else ("yes" if value in (True, "True") else "no")
    return _fmt(value, {"validation_last_quarter": "+.1%", "validation_last_quarter_share": ".0%"}.get(column, ".3f"))


def inits_table(argument: str) -> str:
    """Stage 07's per-init means over seeds at each init's tuned learning rate, base model beside
    (``TASK [PROFILE]``); with a validation curve, its change over the last quarter of the steps, the
    share of its whole fall that came then and whether it has flattened (stage 07's ``last_quarter``)."""
    folder = evaluated(argument)
    metrics = json.loads(_read(folder / "metrics.json"))
    summary = pd.read_csv(io.StringIO(_read(folder / "summary.csv")))
    metric = metrics["primary_metric"]
    names = {"parse_rate": "parse_rate", "f1": "f1", "validation_last_quarter": "validation loss, last quarter",
             "validation_last_quarter_share": "share of its fall in the last quarter",
             "validation_last_quarter_flattened": "flattened"}  # fmt: skip
    extra = [c for c in names if c in summary.columns]
    header = ["init", "lr", "seeds", "validation loss", f"{metric} [t interval]", *(names[c] for c in extra)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in summary.to_dict("records"):
        tuned = pd.notna(r.get("learning_rate"))
        interval = f" [{r[f'{metric}_low']:.3f}, {r[f'{metric}_high']:.3f}]" if tuned else ""
        cells = [f"`{r['init']}`" if tuned else str(r["init"]), f"{r['learning_rate']:g}" if tuned else "-",
                 f"{int(r['seeds'])}" if tuned else "-",
                 f"{r['validation_loss']:.4f}" if pd.notna(r.get("validation_loss")) else "-",
                 f"{r[metric]:.3f}{interval}",
                 *(_cell(c, r[c]) for c in extra)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def powerlaw_table(model: str) -> str:
    """Stage 04's fits of one model's layer distances, per type and pooled, and what they say in
    one line each (alpha range, the log-normal and truncated power law against the power law, the
    preferred family, the trend with layer gap: the thresholds of ``distchar.fits.description``)."""
    table = _csv(stage_folder("powerlaw", model) / "description.csv")
    extract = _json(stage_folder("extract", model) / "summary.json")
    svd = _json(stage_folder("svd", model) / "summary.json")
    rows = table.to_dict("records")
    lines = [
        f"`{model}`: {extract['n_layers']} layers ({', '.join(extract['dtypes'])}), the top {svd['k']} singular "
        f"values per matrix; cosine distances between layers per type, and pooled "
        f"(`results/04_powerlaw/{model}/description.csv`). R < 0 favours the rival over the power law; "
        f"p below {SIGNIFICANCE:g} counts as significant (optimistic: the distances are not independent).",
        "",
        "| type | distances | xmin | tail share | alpha +- sigma | KS D | bootstrap p | vs log-normal R (p) "
        "| vs truncated power law R (p) | preferred | Spearman rho (distance, gap) | layer clusters |",
        "|" + " --- |" * 12,
    ]
    for r in rows:
        cells = [r["type"], f"{int(r['n'])}", _fmt(r["xmin"], ".3g"), _fmt(r["tail_share"], ".0%"),
                 f"{_fmt(r['alpha'], '.2f')} +- {_fmt(r['sigma'], '.2f')}", _fmt(r["D"], ".3f"),
                 _fmt(r["gof_p"], ".2f"), f"{_fmt(r['R_lognormal'], '.2f')} ({_fmt(r['p_lognormal'], '.2f')})",
                 f"{_fmt(r['R_truncated_power_law'], '.2f')} ({_fmt(r['p_truncated_power_law'], '.2f')})",
                 str(r["preferred"]).replace("_", " "), _fmt(r["spearman_rho"], ".2f"),
                 "" if pd.isna(r.get("clusters")) else str(r["clusters"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    fitted = [r for r in rows if r["preferred"] != "insufficient"]
    types = [r for r in fitted if r["type"] != "pooled"]
    lines.append("")
    if types:
        low, high = min(types, key=lambda r: r["alpha"]), max(types, key=lambda r: r["alpha"])
        lines.append(f"- alpha over the types: {low['alpha']:.2f} ({low['type']}) to {high['alpha']:.2f} "
                     f"({high['type']}).")  # fmt: skip
    for rival in ("lognormal", "truncated_power_law"):
        likelier = [r for r in fitted if r[f"R_{rival}"] < 0]
        significant = [r for r in likelier if r[f"p_{rival}"] < SIGNIFICANCE]
        lines.append(f"- {FAMILY_WORDS[rival]} has higher likelihood than the power law (R < 0) in "
                     f"{len(likelier)} of {len(fitted)} groups: {_names(likelier)}; significantly in "
                     f"{len(significant)}: {_names(significant)}.")  # fmt: skip
    preferred = {}
    for r in rows:
        preferred.setdefault(str(r["preferred"]).replace("_", " "), []).append(r)
    lines.append("- preferred family: " + "; ".join(f"{name} ({_names(group)})" for name, group in preferred.items())
                 + ".")  # fmt: skip
    trends = {"grows": [], "barely changes": [], "shrinks": []}
    for r in (r for r in rows if pd.notna(r["spearman_rho"])):
        rho = r["spearman_rho"]
        trends["grows" if rho > 0.1 else "shrinks" if rho < -0.1 else "barely changes"].append(r)
    said = "; ".join(f"{trend} in {_names(group)}" for trend, group in trends.items() if group)
    lines.append(f"- distance with layer gap (Spearman rho above 0.1 / below -0.1): {said}.")
    return "\n".join(lines) + "\n"


FLOOR_STRATEGIES = {
    "always_50": "always 50",
    "best_constant_probability": "best constant probability",
    "normal_approximation": "Normal approximation (exact)",
    "fitted_family": "fitted family (exact)",
}


def odds_floors_table(_: str = "") -> str:
    """Stage 08a's reference floors (``floors.csv``): every strategy's mean error on the zero-shot
    questions, idealized and real-world (overall and per domain), the best constant beside its error."""
    floors = _csv(stage_folder("odds_questions") / "floors.csv")
    domains = list(dict.fromkeys(floors["domain"].dropna()))

    def cell(strategy: str, task: str, source: str, domain=None) -> str:
        rows = floors[(floors["strategy"] == strategy) & (floors["task"] == task) & (floors["source"] == source)]
        rows = rows[rows["domain"].isna()] if domain is None else rows[rows["domain"] == domain]
        if rows.empty:
            return ""
        row = rows.iloc[0]
        constant = f" ({row['constant']:.3f})" if pd.notna(row.get("constant")) and domain is None else ""
        return f"{row['mean']:.2f}{constant}"

    where = " / ".join(["all", *domains])
    header = ["strategy", "idealized percentiles", "idealized probabilities", "idealized sampling (KS)",
              f"real-world percentiles {where}", f"real-world probabilities {where}"]  # fmt: skip
    lines = [
        "Mean error over the zero-shot questions (`results/08_odds_questions/floors.csv`; the best constant "
        "in brackets; real-world questions under the Normal-approximation condition).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    for strategy, label in FLOOR_STRATEGIES.items():
        if not (floors["strategy"] == strategy).any():
            continue
        real = [[cell(strategy, task, "real_world"), *(cell(strategy, task, "real_world", d) for d in domains)]
                for task in ("percentiles", "probabilities")]  # fmt: skip
        real = [" / ".join(parts) if any(parts) else "" for parts in real]
        cells = [label, *(cell(strategy, t, "idealized") for t in ("percentiles", "probabilities", "sampling")), *real]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def odds_split_table(_: str = "") -> str:
    """Stage 08a's question counts (``split.json``): the benchmark grid and the fine-tuning splits."""
    split = _json(stage_folder("odds_questions") / "split.json")
    names = ("train", "validation", "test")
    shares = " / ".join(f"{share:.0%}" for share in split["shares"])
    return "\n".join([
        f"The benchmark grid: {split['benchmark_questions']:,} questions. Fine-tuning: "
        f"{split['draws_per_family']} draws per family, split {shares} "
        "(`results/08_odds_questions/split.json`):",
        "",
        "| | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
        "| distributions | " + " | ".join(f"{split[f'{n}_distributions']:,}" for n in names) + " |",
        "| questions | " + " | ".join(f"{split[f'{n}_questions']:,}" for n in names) + " |",
    ]) + "\n"  # fmt: skip


def odds_table(model: str) -> str:
    """Stage 08's result for one model (``summary.csv``, ``metrics.json``): per setting the mean
    error +- SEM over groups beside the floors of its setting, and the unparsed shares."""
    folder = stage_folder("odds", model)
    metrics = _json(folder / "metrics.json")
    summary = _csv(folder / "summary.csv")
    if "domain" in summary:
        summary = summary[summary["domain"].isna()]
    lines = [
        f"`{model}` on the `{metrics['profile']}` profile: {metrics['questions']:,} generations, one greedy run "
        "(sampling at temperature 1); mean +- SEM over groups (idealized families or real-world variables) with a "
        f"valid answer (`results/08_odds/{model}/summary.csv`); errors in percentile points, percentage points, KS "
        f"(KS noise floor 1.36/sqrt(N): {metrics['sampling_noise_floor']:.2f}).",
        "",
        "| task | setting | model | always 50 / best constant | Normal approx. | fitted family "
        "| unparseable + out of range |",
        "|" + " --- |" * 7,
    ]
    for r in summary.to_dict("records"):
        source = "idealized" if r["source"] == "idealized" else "real world"
        floor = r.get("floor_always_50") if r["task"] == "percentiles" else r.get("floor_best_constant_probability")
        model_cell = (f"{_fmt(r['mean'], '.3g')} +- {_fmt(r['sem'], '.2g')} ({int(r['groups'])} groups)"
                      if pd.notna(r["mean"]) else "- (no valid answer)")  # fmt: skip
        floors = [("" if floor is None or pd.isna(floor) else f"{floor:.3g}") for floor in
                  (floor, r.get("floor_normal_approximation"), r.get("floor_fitted_family"))]  # fmt: skip
        cells = [r["task"], f"{source}, {str(r['setting']).replace('_', ' ')}", model_cell, *floors,
                 f"{r['unparseable_share']:.0%} + {r['out_of_range_share']:.0%}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def curves_table(argument: str) -> str:
    """The validation-loss curves logged while training (``TASK [PROFILE]``): per init, the mean
    over seeds at its tuned learning rate at the start, at each quarter of the steps and at the end."""
    folder = evaluated(argument)
    curves = _csv(folder / "validation_curves.csv").set_index("step")
    if curves.empty:
        return "No validation curve: this run's task settings have `eval_every: 0`.\n"
    last = curves.index.max()
    points = [curves.index[curves.index <= q * last].max() for q in (0, 0.25, 0.5, 0.75, 1.0)]
    points = list(dict.fromkeys(points))
    lines = [f"Validation loss while training, mean over seeds at each init's tuned learning rate "
             f"(`{folder.as_posix()}/validation_curves.csv`; step 0 is the model before training).", "",
             "| init | " + " | ".join(f"step {int(p)}" for p in points) + " |",
             "|" + " --- |" * (len(points) + 1)]  # fmt: skip
    for init in curves.columns:
        lines.append(f"| `{init}` | " + " | ".join(f"{curves.loc[p, init]:.4f}" for p in points) + " |")
    return "\n".join(lines) + "\n"


def pilot_table(argument: str) -> str:
    """A profile's learning-rate pilot (``TASK PROFILE``, ``distchar.pilot``): per init, the mean
    validation loss at each candidate rate, the pick in bold, and whether the candidates bracket it."""
    task, profile = argument.split()
    folder = pilot_folder(profile, task)
    picks = _json(folder / "picks.json")
    runs = _csv(folder / "runs.csv")
    means = runs.groupby(["init", "learning_rate"])["validation_loss"].mean()
    rates = sorted(runs["learning_rate"].unique())
    seeds = ", ".join(str(s) for s in picks["seeds"])
    lines = [f"Validation loss ({picks['validation_examples']:,} validation examples) after {picks['steps']} steps of "
             f"{picks['batch_size']}, mean over pilot seed(s) {seeds}, at each candidate rate; the pick in bold "
             f"(`{folder.as_posix()}/`; {len(runs)} runs, median {runs['seconds'].median():.0f} s of training each).",
             "",
             "| init | " + " | ".join(f"{r:g}" for r in rates) + " | pick | bracketed |",
             "|" + " --- |" * (len(rates) + 3)]  # fmt: skip
    for init, pick in picks["inits"].items():
        cells = []
        for rate in rates:
            value = means.get((init, rate))
            text = "" if value is None else f"{value:.4f}"
            cells.append(f"**{text}**" if rate == pick["learning_rate"] else text)
        bracketed = "yes" if pick["bracketed"] else "no: widen the candidates"
        lines.append(f"| `{init}` | " + " | ".join(cells) + f" | {pick['learning_rate']:g} | {bracketed} |")
    return "\n".join(lines) + "\n"


def claim_sentences(argument: str) -> str:
    """Stage 07's claims in plain sentences (``TASK [PROFILE]``): per baseline, the difference, its
    interval over seeds, the Holm-adjusted p, the verdict and the smallest effect the run could
    detect, and which learning rate each side was tuned to."""
    folder = evaluated(argument)
    metrics = _json(folder / "metrics.json")
    claims = _csv(folder / "claims.csv")
    metric, better = metrics["primary_metric"].replace("_", " "), "higher" if metrics["higher_is_better"] else "lower"
    lines = []
    for r in claims.to_dict("records"):
        side = "better" if r["difference"] > 0 else "worse"
        lines.append(
            f"- `{r['a']}` against `{r['b']}`: {abs(r['difference']):.4f} {side} in {metric} ({better} is better), "
            f"interval over {int(r['seeds'])} seeds [{r['low']:+.4f}, {r['high']:+.4f}] (positive: `{r['a']}` better), "
            f"p (Holm) {r['p_holm']:.3f}: "
            f"**{r['claim']}**. The run could detect a true difference of {_fmt(r['detectable'], '.4f')} with 80% "
            f"power. Tuned learning rates: {r['lr_a']:g} and {r['lr_b']:g}.")  # fmt: skip
    return "\n".join(lines or [f"No claim rows in `{folder.as_posix()}/claims.csv`."]) + "\n"


def profile_timings(profile: str) -> str:
    """Wall time of each part of a published profile's run (``results/<profile>/timings.json``); a part
    DVC restored from its run cache (no timings of its own) says so."""
    parts = _json(ROOT / profile / "timings.json")
    lines = ["| part | runs | steps | seconds | seconds per step |", "| --- | --- | --- | --- | --- |"]
    for model, seconds in parts.get("generator", {}).items():
        lines.append(f"| stage 05, `{model}` (tuning and inits) | | | {seconds:,.0f} | |")
    for task, row in parts["train"].items():
        lines.append(f"| stage 06, `{task}` | {row['runs']} | {row['steps']:,} | {_seconds(row['seconds'])} | "
                     f"{_fmt(row['seconds_per_step'], '.3f')} |")  # fmt: skip
    for task, seconds in parts["evaluate"].items():
        lines.append(f"| stage 07, `{task}` | | | {_seconds(seconds)} | |")
    if "robustness" in parts:
        row = parts["robustness"]
        seconds = _seconds(row["seconds"])
        lines.append(f"| study 09 ({row['models']} models, summed over its workers) | | | {seconds} | |")
    if parts.get("untimed"):
        lines += ["", "Not timed in this run: the timings file of each part so marked times another run than the "
                      "outputs published (DVC restored the part from its run cache, an earlier run of the same code "
                      "and params, or its checkpoint is gone)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _seconds(seconds: float | None) -> str:
    return "not timed in this run" if seconds is None else f"{seconds:,.0f}"


def profile_costs(_: str = "") -> str:
    """The measured per-step costs and predicted wall time of the powered profile
    (``benchmarks/results/profile_costs.json``, written by ``benchmarks/profile_costs.py``)."""
    costs = _json(Path("benchmarks/results/profile_costs.json"))
    lines = [f"Measured by `{costs['command']}` ({costs['machine']}) before the run:", "",
             "| task | runs | steps x batch | seconds per step | curve point | validation of a run | test of a run "
             "| predicted stage 06 / 07 |", "|" + " --- |" * 8]  # fmt: skip
    for task, row in costs["tasks"].items():
        predicted = row["predicted_s"]
        lines.append(f"| `{task}` | {row['runs']} | {row['steps']} x {row['batch_size']} | {row['step_s']:.3f} s | "
                     f"{row['curve_point_s']:.2f} s ({row['curve_points']} per run) | {row['validation_s']:.1f} s "
                     f"({row['validation_examples']:,} examples) | {row['test_s']:.1f} s ({row['test_examples']:,}) | "
                     f"{predicted['train'] / 60:.0f} / {predicted['evaluate'] / 60:.0f} min |")  # fmt: skip
    robustness = costs["robustness"]
    per_model = ", ".join(f"{k} {v:.0f} s" for k, v in robustness["seconds_per_model"].items())
    lines += ["", f"Study 09: {robustness['models']} models at {per_model} each on {robustness['jobs']} workers: "
              f"{robustness['predicted_s'] / 60:.0f} min. Predicted in all: "
              f"{costs['predicted_total_s'] / 60:.0f} min."]  # fmt: skip
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[str], str]] = {
    "claims": claim_sentences,
    "profile_costs": profile_costs,
    "curves": curves_table,
    "profile_timings": profile_timings,
    "pilot": pilot_table,
    "file": stage_markdown,
    "generator": generator_table,
    "inits": inits_table,
    "powerlaw": powerlaw_table,
    "odds": odds_table,
    "odds_floors": odds_floors_table,
    "odds_split": odds_split_table,
}


def render(spec: str) -> str:
    name, _, argument = spec.strip().partition(" ")
    if name not in RENDERERS:
        raise DistcharError(f"Unknown findings block '{name}'; known: {', '.join(RENDERERS)}.")
    return RENDERERS[name](argument.strip())


def refresh(text: str) -> tuple[str, list[str]]:
    """``text`` with every block rendered afresh, and the specs of the blocks that changed."""
    changed: list[str] = []

    def one(match: re.Match) -> str:
        body = render(match["spec"])
        if body != match["body"]:
            changed.append(match["spec"])
        return match[1] + body + match[4]

    return BLOCK.sub(one, text), changed


def doc_files(root: Path = Path(".")) -> list[Path]:
    return sorted({p for pattern in DOCS for p in root.glob(pattern)})


def main(argv: list[str] | None = None) -> int:
    """``python -m distchar.findings [--check]`` from the project root."""
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    stale, rewritten = [], {}
    for path in doc_files():
        try:
            new, changed = refresh(path.read_text())
        except DistcharError as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            return 2  # before writing anything: a page is never left half rendered
        stale += [f"{path}: {spec}" for spec in changed]
        if changed:
            rewritten[path] = new
    if not check:
        for path, new in rewritten.items():
            path.write_text(new)
    for line in stale:
        print(("differs from the result files: " if check else "rewrote: ") + line)
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())

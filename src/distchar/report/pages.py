"""What each page of the report shows: the index with the claim verdicts first, then one page per
study (the main study's stages 01-07, What Are the Odds? 08, the DSL loss under attack 09, NSGA-II
crowding 10), each read from a ``ResultsTree``.

Tables are the committed result files, rendered by ``distchar.findings`` wherever the docs render
them too; the figures are the stages' PNGs; two charts are drawn here because hovering helps there:
the singular-value spectra (from stage 02's per-matrix summaries, always committed, and its
``singular_values.npz``) and the cosine-distance heatmaps (stage 03's ``distances.npz``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from distchar.report.html import PageLink, badge, esc, table
from distchar.report.sources import ResultsTree, dvc_stage
from distchar.report.svg import TYPE_COLOURS, Series, heatmap_panel, line_chart, number, spectra_panel, with_readout
from distchar.results import ROOT, stage_folder


def _figures(tree: ResultsTree, stage: str, key: str | None, figures: list[tuple[str, str]]) -> list[str]:
    """The stage's PNGs (file name, caption), embedded, or noted missing."""
    return tree.figures(stage_folder(stage, key), dvc_stage(stage, key), figures)


def _types(names) -> list[str]:
    """Projection types in the figures' order (q, k, v, o, gate, up, down), unknown ones after, sorted."""
    names = set(names)
    return [t for t in TYPE_COLOURS if t in names] + sorted(names - set(TYPE_COLOURS))


def _colour(kind: str) -> str:
    return TYPE_COLOURS.get(kind, "#555555")


def by_type(metrics: dict, rows: dict[str, Callable[[dict, str], float | None]], types) -> str:
    """A table with a column per projection type and a row per named figure of ``metrics``."""
    kinds = _types(types)
    cells = [
        [esc(name), *("" if (v := read(metrics, k)) is None else number(v) for k in kinds)]
        for name, read in rows.items()
    ]
    return table(["", *map(esc, kinds)], cells)


# ---- main study, stages 01-07 ---------------------------------------------------------------


def extract_section(tree: ResultsTree, model: str) -> list[str]:
    """Stage 01 of one model: what was read, the mean norm per type, the norms figure."""
    folder = stage_folder("extract", model)
    summary, metrics = tree.json(folder / "summary.json"), tree.json(folder / "metrics.json")
    out = [f"<h3>{esc(model)}</h3>"]
    if summary is None:
        out.append(tree.absent(folder / "summary.json", dvc_stage("extract", model), cached=False))
    else:
        out.append(
            f'<p class="facts">{summary["n_matrices"]} matrices over {summary["n_layers"]} layers; types '
            f"{esc(', '.join(summary['types']))}; stored as {esc(', '.join(summary['dtypes']))}; source "
            f"<code>{esc(summary['source'])}</code>; non-finite matrices: {summary['n_nonfinite_matrices']}.</p>"
        )
    if metrics is not None:
        out.append(
            by_type(
                metrics,
                {"mean Frobenius norm": lambda m, t: m["mean_frobenius_norm"].get(t)},
                metrics["mean_frobenius_norm"],
            )
        )
    return out + _figures(tree, "extract", model, [("norms.png", "Frobenius norm and RMS entry by layer, per type")])


def summary_charts(summaries: pd.DataFrame, model: str) -> str:
    """Stage 02's per-matrix summaries by layer, a line per type: spectral norm, stable rank, ESD alpha."""
    charts = []
    for column, label, log in (
        ("spectral_norm", "spectral norm s_1", True),
        ("stable_rank", "stable rank", True),
        ("esd_alpha", "ESD power-law alpha", False),
    ):
        series = []
        for kind in _types(summaries["type"].unique()):
            rows = summaries[summaries["type"] == kind].sort_values("layer")
            points = [
                (
                    float(r.layer),
                    float(r[column]),
                    f"{kind}, layer {r.layer} ({r.rows} x {r.cols}): {label} = {number(r[column])}",
                )
                for _, r in rows.iterrows()
            ]
            series.append(Series(kind, _colour(kind), points))
        charts.append(line_chart(series, f"{model}: {label} by layer", "layer", label, log_y=log))
    return with_readout(*charts)


def spectra_charts(arrays: dict[str, np.ndarray]) -> str:
    """Stage 02's S_t, a panel per type on one shared scale (as ``spectra.png``)."""
    kinds = _types(k for k in arrays if f"{k}_layers" in arrays)
    values = np.concatenate([arrays[k].ravel() for k in kinds]) if kinds else np.array([1.0])
    positive = values[np.isfinite(values) & (values > 0)]
    y_range = (float(positive.min()), float(positive.max())) if positive.size else (1.0, 10.0)
    return with_readout(*(spectra_panel(k, arrays[k], arrays[f"{k}_layers"], y_range) for k in kinds))


def svd_section(tree: ResultsTree, model: str) -> list[str]:
    """Stage 02 of one model: the method and its check, the per-matrix charts, the spectra (hover)."""
    folder = stage_folder("svd", model)
    stage = dvc_stage("svd", model)
    out = [f"<h3>{esc(model)}</h3>"]
    summary, check = tree.json(folder / "summary.json"), tree.json(folder / "check.json")
    if summary is not None:
        methods = ", ".join(f"{n} {esc(m)}" for m, n in sorted(summary["methods"].items()))
        checked = (
            f"; checked against float64 LAPACK on {check['checked']} matrices ({esc(check['compared'])}): max "
            f"relative error {number(check['max_relative_error'])}, tolerance {number(check['tolerance'])}"
            + ("; recomputed in float64" if check.get("fallback") else "")
            if check and check.get("checked")
            else ""
        )
        out.append(
            f'<p class="facts">Top k = {summary["k"]} singular values of {summary["n_matrices"]} matrices '
            f"({methods}){checked}.</p>"
        )
    summaries = tree.csv(folder / "summaries.csv")
    if summaries is None:
        out.append(tree.absent(folder / "summaries.csv", stage, cached=False))
    else:
        out += ["<h4>Per matrix, by layer (hover a point)</h4>", summary_charts(summaries, model)]
    arrays = tree.arrays(folder / "singular_values.npz")
    out.append("<h4>Singular-value spectra (hover a line for its layer, elsewhere for the index)</h4>")
    out.append(
        spectra_charts(arrays) if arrays else tree.absent(folder / "singular_values.npz", stage, "The spectra's arrays")
    )
    return out + _figures(tree, "svd", model, [("spectra.png", "Top singular values by layer (dark: first layer)")])


def heatmap_charts(arrays: dict[str, np.ndarray]) -> str:
    """Stage 03's distance matrix of every type, a panel each."""
    kinds = _types(k for k in arrays if f"{k}_layers" in arrays)
    return with_readout(*(heatmap_panel(k, arrays[k], arrays[f"{k}_layers"]) for k in kinds))


def distances_section(tree: ResultsTree, model: str) -> list[str]:
    """Stage 03 of one model: counts, mean and median distance per type, the heatmaps (hover)."""
    folder = stage_folder("distances", model)
    out = [f"<h3>{esc(model)}</h3>"]
    summary, metrics = tree.json(folder / "summary.json"), tree.json(folder / "metrics.json")
    if summary is not None:
        zeros = "; ".join(f"{esc(t)}: {layers}" for t, layers in summary["zero_profile_layers"].items()) or "none"
        out.append(
            f'<p class="facts">Layer pairs per type: {sum(summary["pairs_per_type"].values())} in all; '
            f"undefined distances: {summary['undefined_pairs']}; layers with all-zero profiles: {zeros}.</p>"
        )
    if metrics is not None:
        rows = {
            "mean distance": lambda m, t: m[t]["mean_distance"],
            "median distance": lambda m, t: m[t]["median_distance"],
        }
        out.append(by_type(metrics, rows, metrics))
    arrays = tree.arrays(folder / "distances.npz")
    out.append("<h4>Cosine distance between layers (hover a cell)</h4>")
    out.append(
        heatmap_charts(arrays)
        if arrays
        else tree.absent(folder / "distances.npz", dvc_stage("distances", model), "The heatmaps' arrays")
    )
    return out + _figures(
        tree,
        "distances",
        model,
        [
            ("heatmaps.png", "Cosine distance between layers' singular-value profiles (log colour)"),
            ("gap.png", "Distance against layer gap: median and 25-75% band per type"),
            ("cross_types.png", "Mean distance between types"),
        ],
    )


def fingerprint_table(tree: ResultsTree) -> list[str]:
    """Stage 04's fingerprint: per type (rows) and model (columns), alpha and the preferred family."""
    relative = stage_folder("fingerprint") / "fingerprint.csv"
    fingerprint = tree.csv(relative)
    if fingerprint is None:
        return [tree.absent(relative, "fingerprint", cached=False)]
    models = sorted(str(m) for m in fingerprint["model"].unique())
    cell = {(str(r["model"]), r["type"]): r for r in fingerprint.to_dict("records")}
    rows = []
    for kind in _types(fingerprint["type"].unique()):
        cells = []
        for model in models:
            r = cell.get((model, kind))
            alpha = "" if r is None else "-" if pd.isna(r["alpha"]) else f"{r['alpha']:.2f}"
            cells.append("" if r is None else f"{alpha} ({esc(str(r['preferred']).replace('_', ' '))})")
        rows.append([esc(kind), *cells])
    return [
        "<p>Power-law alpha of the layer distances per type and model, the preferred family in brackets "
        f"(<code>{relative.as_posix()}</code>).</p>",
        table(["type", *(f"<code>{esc(m)}</code>" for m in models)], rows),
    ]


def main_study(tree: ResultsTree) -> str:
    out = [
        "<h1>Main study: the spectra of LLM weights (stages 01-07)</h1>",
        '<p class="lead">From the projection matrices of each model to its singular-value spectra, the '
        "distances between layers and their power-law fits, a generator of LoRA inits that mimics them, "
        "and the inits' fine-tuning test.</p>",
    ]
    sections: list[tuple[str, str, Callable[[ResultsTree, str], list[str]]]] = [
        ("extract", "01 Extract: the projection matrices", extract_section),
        ("svd", "02 SVD: singular values of every matrix", svd_section),
        ("distances", "03 Distances: cosine distances between layers", distances_section),
    ]
    for stage, title, section in sections:
        out.append(f"<h2>{title}</h2>")
        models = tree.keys(stage)
        out += [part for model in models for part in section(tree, model)] or [
            tree.absent(stage_folder(stage), stage, "Result folder", cached=False)
        ]
    out.append("<h2>04 Power law: fits of the layer distances against the rivals</h2>")
    for model in tree.keys("powerlaw"):
        folder = stage_folder("powerlaw", model)
        out += [
            f"<h3>{esc(model)}</h3>",
            tree.findings(f"powerlaw {model}"),
            "<details><summary>In words (<code>description.md</code>)</summary>",
            tree.findings(f"file {_under_results(folder)}/description.md", heading_level=5),
            "</details>",
            *_figures(tree, "powerlaw", model, [("ccdf.png", "Empirical CCDFs with the fitted candidates")]),
        ]
    out += [
        "<h3>Every model side by side (fingerprint)</h3>",
        *fingerprint_table(tree),
        *_figures(tree, "fingerprint", None, [("fingerprint.png", "Alpha and preferred family per model and type")]),
    ]
    out.append("<h2>05 Generator: the tuned GP + Pareto generator of LoRA inits</h2>")
    for model in tree.keys("generator"):
        out += [
            f"<h3>{esc(model)}</h3>",
            tree.findings(f"generator {model}"),
            *_figures(
                tree,
                "generator",
                model,
                [
                    ("front.png", "NSGA-II Pareto front of the generator's fidelity objectives, knee marked"),
                    ("ccdf.png", "Distance CCDFs, real against generated"),
                    ("heatmaps.png", "Distance heatmaps, real against generated"),
                ],
            ),
        ]
    out.append("<h2>06-07 LoRA fine-tuning and evaluation</h2>")
    out.append(
        f"<p>Stage 06's runs (adapters, logs) live in the DVC cache under <code>{stage_folder('train').as_posix()}/"
        "</code>; "
        "stage 07 tests every init at its tuned learning rate.</p>"
    )
    for task in tree.keys("evaluate"):
        folder = stage_folder("evaluate", task)
        out += [
            f"<h3>Task <code>{esc(task)}</code></h3>",
            tree.findings(f"file {_under_results(folder)}/claims.md"),
            "<h4>Each init at its tuned learning rate (mean over seeds, t interval)</h4>",
            tree.findings(f"inits {task}"),
            *_figures(
                tree,
                "evaluate",
                task,
                [
                    ("loss_curves.png", "Training loss at each init's tuned learning rate: mean and min-max band"),
                    ("differences.png", "Paired differences against the baselines, interval over seeds"),
                ],
            ),
        ]
    return "\n".join(out)


def _under_results(folder: Path) -> str:
    """``folder`` relative to ``results/``, as ``findings``' ``file`` renderer spells it."""
    return folder.relative_to(ROOT).as_posix()


# ---- companion studies ------------------------------------------------------------------------


def odds_study(tree: ResultsTree) -> str:
    out = [
        "<h1>What Are the Odds? (study 08)</h1>",
        '<p class="lead">Does a small causal LM know distributions: percentiles, probabilities and samples of '
        "idealized families and real-world variables, against the floors of simple strategies.</p>",
        "<h2>Questions and splits</h2>",
        tree.findings("odds_split"),
        "<h2>Reference floors</h2>",
        tree.findings("odds_floors"),
        "<h2>Models</h2>",
    ]
    for model in tree.keys("odds"):
        out += [
            f"<h3>{esc(model)}</h3>",
            tree.findings(f"odds {model}"),
            *_figures(
                tree,
                "odds",
                model,
                [
                    ("by_family.png", "Error by distribution family"),
                    ("by_shots.png", "Error by number of in-context examples"),
                    ("by_condition.png", "Real-world questions: error by condition and domain"),
                    ("predicted_vs_true.png", "Predicted against true values"),
                ],
            ),
        ]
    return "\n".join(out)


def robustness_study(tree: ResultsTree) -> str:
    return "\n".join(
        [
            "<h1>The distribution-restrained softmax loss under attack (study 09)</h1>",
            '<p class="lead">MLPs and CNNs trained on digits with cross-entropy, the DSL loss and label smoothing, '
            "attacked with FGSM, PGD, Square, AutoAttack and CW.</p>",
            tree.findings(f"file {_under_results(stage_folder('robustness'))}/table.md"),
            *_figures(
                tree,
                "robustness",
                None,
                [
                    ("robustness.png", "Accuracy against the attack radius, per loss"),
                    ("spread.png", "PGD's success against the non-target spread"),
                ],
            ),
        ]
    )


def nsga2_study(tree: ResultsTree) -> str:
    return "\n".join(
        [
            "<h1>NSGA-II crowding distances (study 10)</h1>",
            '<p class="lead">NSGA-II with the improved crowding distance of Chu and Yu (2018) and pymoo\'s '
            "alternatives against the original <code>cd</code>, on nine test problems.</p>",
            tree.findings(f"file {_under_results(stage_folder('nsga2'))}/table.md"),
            *_figures(
                tree,
                "nsga2",
                None,
                [
                    ("fronts.png", "Final front of each variant (the run of median IGD) on the true front"),
                    ("convergence.png", "IGD against generation: median and quartile band per variant"),
                ],
            ),
        ]
    )


# ---- the index: verdicts first ----------------------------------------------------------------


def robustness_verdicts(tree: ResultsTree) -> str:
    """Study 09's comparisons with ce: per model and loss, each measure's difference and verdict."""
    relative = stage_folder("robustness") / "comparisons.csv"
    comparisons = tree.csv(relative)
    if comparisons is None:
        return tree.absent(relative, "robustness", cached=False)
    measures = list(dict.fromkeys(comparisons["measure"]))
    rows = []
    for (model, loss), group in comparisons.groupby(["architecture", "loss"], sort=False):
        by_measure = {r["measure"]: r for r in group.to_dict("records")}
        cells = [
            f"{100 * r['difference']:+.1f} [{100 * r['low']:+.1f}, {100 * r['high']:+.1f}] {badge(r['verdict'])}"
            if (r := by_measure.get(m)) is not None
            else ""
            for m in measures
        ]
        rows.append([esc(model), esc(loss), *cells])
    return (
        "<p>Accuracy against <code>ce</code> in points (95% interval over seeds) and the verdict: paired by "
        "seed, exact sign-flip test, Holm over the losses of a model and measure "
        f"(<code>{relative.as_posix()}</code>).</p>" + table(["model", "loss", *map(esc, measures)], rows)
    )


def nsga2_verdicts(tree: ResultsTree) -> str:
    """Study 10's comparisons with cd: per variant and metric, problems better / worse, and the verdicts."""
    relative = stage_folder("nsga2") / "comparisons.csv"
    comparisons = tree.csv(relative)
    if comparisons is None:
        return tree.absent(relative, "nsga2", cached=False)
    metrics = list(dict.fromkeys(comparisons["metric"]))
    rows = []
    for variant, group in comparisons.groupby("variant", sort=False):
        cells = []
        for metric in metrics:
            rows_ = group[group["metric"] == metric]
            better, worse = int((rows_["direction"] == "better").sum()), int((rows_["direction"] == "worse").sum())
            cells.append(f"{better} / {worse}<br>{tally(rows_['verdict'])}")
        rows.append([f"<code>{esc(variant)}</code>", *cells])
    problems = comparisons["problem"].nunique()
    return (
        f"<p>Problems (of {problems}) where the variant's median beats / trails <code>cd</code>'s, then the "
        "verdicts and how many problems carry each: two-sided Mann-Whitney over seeds, Holm over the problems "
        f"(<code>{relative.as_posix()}</code>).</p>" + table(["variant", *map(esc, metrics)], rows)
    )


def tally(verdicts) -> str:
    """Each distinct verdict as a badge with how often it occurs, sorted."""
    return " ".join(f"{badge(str(v))}&nbsp;{n}" for v, n in sorted(Counter(verdicts).items()))


def verdict_counts(tree: ResultsTree) -> str:
    """One line per study: how many claims or comparisons, and their verdicts, at a glance."""
    claims = [tree.csv(stage_folder("evaluate", task) / "claims.csv") for task in tree.keys("evaluate")]
    claims = [c for c in claims if c is not None]
    sources = [
        ("Main study, the claim table", "claims", pd.concat(claims)["claim"] if claims else None),
        ("Study 09, each loss against <code>ce</code>", "comparisons",
         _column(tree, stage_folder("robustness") / "comparisons.csv", "verdict")),
        ("Study 10, each crowding distance against <code>cd</code>", "comparisons",
         _column(tree, stage_folder("nsga2") / "comparisons.csv", "verdict")),
    ]  # fmt: skip
    lines = [
        f"<li>{where}: {len(found)} {what}, {tally(found)}</li>" for where, what, found in sources if found is not None
    ]
    return f'<ul class="tally">{"".join(lines)}</ul>' if lines else ""


def _column(tree: ResultsTree, relative: Path, column: str) -> pd.Series | None:
    table_ = tree.csv(relative)
    return None if table_ is None else table_[column]


def verdicts(tree: ResultsTree) -> str:
    """The claims' verdicts, the top of the index: a count per study, then each study's table."""
    out = [
        '<section class="verdicts" id="verdicts"><h2>Verdicts</h2>',
        verdict_counts(tree),
        "<h3>Main study: does the reshaped init beat each baseline?</h3>",
    ]
    tasks = tree.keys("evaluate")
    out += [tree.findings(f"file {_under_results(stage_folder('evaluate', t))}/claims.md") for t in tasks] or [
        tree.absent(stage_folder("evaluate"), "evaluate", "Result folder", cached=False)
    ]
    out += [
        "<h3>Study 09: does a loss beat cross-entropy under attack?</h3>",
        robustness_verdicts(tree),
        "<h3>Study 10: does a crowding distance beat NSGA-II's own?</h3>",
        nsga2_verdicts(tree),
        "</section>",
    ]
    return "\n".join(out)


@dataclass(frozen=True)
class StudyPage:
    """A page of the report: its navigation entry, what it covers, and how its body is read."""

    link: PageLink
    covers: str
    body: Callable[[ResultsTree], str]


STUDY_PAGES = (
    StudyPage(
        PageLink("main.html", "Main study (01-07)"),
        "the spectra of LLM weights: extraction, SVD, layer distances, power-law fits, the LoRA-init "
        "generator, fine-tuning and the claim table",
        main_study,
    ),
    StudyPage(
        PageLink("odds.html", "What Are the Odds? (08)"),
        "a causal LM asked for percentiles, probabilities and samples, against reference floors",
        odds_study,
    ),
    StudyPage(
        PageLink("robustness.html", "DSL under attack (09)"),
        "the distribution-restrained softmax loss against cross-entropy and label smoothing under strong attacks",
        robustness_study,
    ),
    StudyPage(
        PageLink("nsga2.html", "NSGA-II crowding (10)"),
        "the improved crowding distance against NSGA-II's own on nine problems",
        nsga2_study,
    ),
)
INDEX = PageLink("index.html", "Overview")


def index(tree: ResultsTree) -> str:
    """The overview: verdicts, the pages, and which cached files the pages lacked (read after the
    study pages were built, whose figures it counts)."""
    pages = "".join(f'<li><a href="{p.link.file}">{esc(p.link.name)}</a>: {esc(p.covers)}.</li>' for p in STUDY_PAGES)
    shown, missing = len(tree.shown), len(tree.missing)
    out = [
        "<h1>distchar: results</h1>",
        "<p class=\"lead\">The pipeline's results, rendered from <code>results/</code>: the claims' verdicts "
        "first, then a page per study.</p>",
        verdicts(tree),
        "<h2>Pages</h2>",
        f"<ul>{pages}</ul>",
        "<h2>Figures and arrays</h2>",
    ]
    if missing:
        listed = "".join(f"<li><code>{esc(m)}</code></li>" for m in tree.missing)
        out += [
            f"<p>{shown} figure{'' if shown == 1 else 's'} shown; {missing} cached files (figures, arrays of the "
            "interactive charts) are "
            "not here. They live in the DVC cache, not in git: <code>dvc pull</code> fetches the committed "
            "run's, <code>dvc repro</code> makes them afresh; then build the report again.</p>",
            f"<details><summary>The {missing} missing files</summary><ul>{listed}</ul></details>",
        ]
    else:
        out.append(f"<p>All {shown} figures and every chart's arrays are here.</p>")
    return "\n".join(out)

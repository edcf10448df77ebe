"""The generated tables of benchmarks/README.md, from the committed results files.

    python benchmarks/readme_tables.py          # rewrite every table between its markers, and the plots
    python benchmarks/readme_tables.py --check  # exit 1 if a table differs from its results file

A generated table sits between ``<!-- table: NAME -->`` and ``<!-- /table -->``; NAME is one of
``TABLES``. Numbers outside those markers are not generated: the prose around them says what the
tables show without repeating their figures.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
README = HERE / "README.md"
RESULTS = HERE / "results"
GROWTH_PLOT = RESULTS / "analysis_at_scale_growth.png"


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def rows(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join([*lines, *("| " + " | ".join(str(c) for c in row) + " |" for row in body)])


def svd_methods() -> str:
    data = load("svd_methods")
    shapes = list(dict.fromkeys(r["shape"] for r in data["rows"]))
    methods = list(dict.fromkeys(r["method"] for r in data["rows"]))
    cell = {(r["shape"], r["method"], r["spectrum"]): r for r in data["rows"]}
    body = []
    for method in methods:
        row = [f"`{method}`"]
        for shape in shapes:
            flat, heavy = cell[(shape, method, "gaussian")], cell[(shape, method, "heavy_tailed")]
            row.append(f"{flat['seconds']:.3f} / {heavy['seconds']:.3f} "
                       f"({flat['max_rel_error']:.1e} / {heavy['max_rel_error']:.1e})")  # fmt: skip
        body.append(row)
    header = ["method", *(f"{s}: s (max rel. error, flat / heavy-tailed)" for s in shapes)]
    return f"float32 GEMM on this machine: {data['gemm_gflops']} GFLOP/s, k = {data['k']}.\n\n" + rows(header, body)


def _goal(met: bool) -> str:
    return "met" if met else "**missed**"


def analysis_at_scale() -> str:
    d = load("analysis_at_scale")
    ww = d["ww_s"]
    body = [
        ["model on disk", f"{d['model_gb_on_disk']} GB bf16, {d['layers']} layers", ""],
        [f"floor: reading and converting every matrix once + symmetric Gram and eigen flops at "
         f"{d['gemm_gflops']} GFLOP/s", f"{d['floor_read_s']} + {d['floor_arithmetic_s']} = {d['floor_s']} s", ""],
        ["the floor with LAPACK's float32 solver as measured (one Gram matrix per shape)",
         f"{d['floor_with_measured_solver_s']} s (solver {d['solver_measured_s']} s)", ""],
        ["ours, stages 01-04 with k = 64",
         f"{d['ours_topk_s']} s = **{d['floor_ratio']}x the floor** "
         f"({d['floor_with_measured_solver_ratio']}x the measured-solver floor)",
         f"<= 2x: {_goal(d['floor_ratio'] <= 2)}"],
        ["ours, every singular value and the ESD alpha (`svd.k: all`)", f"{d['ours_full_s']} s", ""],
        ["WeightWatcher, `from_pretrained` + `analyze()`", f"{ww} s", ""],
        ["speed-up over WeightWatcher, full spectra", f"**{d['ratio_full_vs_weightwatcher']}x**",
         f">= 3x: {_goal(d['ratio_full_vs_weightwatcher'] >= 3)}"],
        ["speed-up over WeightWatcher, top 64", f"**{d['ratio_topk_vs_weightwatcher']}x**",
         f">= 8x: {_goal(d['ratio_topk_vs_weightwatcher'] >= 8)}"],
        ["peak memory, ours top 64 / full / WeightWatcher",
         f"{d['peak_rss_gb']} / {d['peak_rss_full_gb']} / {d['ww_peak_rss_gb']} GB",
         f"3x lower: {_goal(3 * max(d['peak_rss_gb'], d['peak_rss_full_gb']) <= d['ww_peak_rss_gb'])}"],
        ["top-64 values against LAPACK float64, 8 matrices", f"**{d['topk_max_rel_error']:.1e}** max relative error",
         f"<= 1e-4: {_goal(d['topk_max_rel_error'] <= 1e-4)}"],
        ["ESD alpha (full spectra) against WeightWatcher's, matrices with the same xmin",
         f"{d['alpha_matrices_compared']} of {d['alpha_matrices_total']}: max difference "
         f"{d['alpha_max_abs_diff']:.2e}", f"within 1e-6: {_goal(d['alpha_max_abs_diff'] <= 1e-6)}"],
        ["ESD alpha of the top-64 run (float32 Gram matrix) against the full run's (float64)",
         f"max difference {d['topk_alpha_max_abs_diff_vs_full']:.2e}", ""],
    ]  # fmt: skip
    growth = [
        [g["model"], g["matrices"], g["seconds"], g["seconds_per_matrix"],
         f"{g['floor_arithmetic_s_per_matrix']} ({g['floor_arithmetic_ratio']}x)", g["peak_rss_gb"],
         " / ".join(str(g["stages_s"][k]) for k in ("extract", "svd", "fits"))]
        for g in d["growth"]
    ]  # fmt: skip
    growth_header = [
        "model",
        "matrices",
        "seconds",
        "seconds per matrix",
        "floor arithmetic per matrix (ours / it)",
        "peak RSS (GB)",
        "stages 01 / 02 / 03-04 s",
    ]
    return (
        rows(["measure", "value", "goal"], body)
        + "\n\nGrowth (k = 64):\n\n"
        + rows(growth_header, growth)
        + f"\n\n![Seconds per matrix and peak memory by model size]({GROWTH_PLOT.relative_to(HERE)})"
    )


def odds_batching() -> str:
    d = load("odds_batching")
    n, m = d["questions"], d["batched_generate_questions"]
    body = [
        ["ours, `generate`", n, d["batched_s"], "", ""],
        ["`model.generate`, one prompt at a time", n, d["one_by_one_s"], f"**{d['speedup']}x** (goal 5)",
         f"{d['identical_answers']} of {n}"],
        ["ours, `generate`", m, d["ours_on_batched_generate_questions_s"], "", ""],
        ["batched `model.generate`, given order", m, d["batched_generate_given_order_s"],
         f"{d['speedup_vs_batched_generate_given_order']}x",
         f"{d['identical_answers_batched_generate_given_order']} of {m}"],
        ["batched `model.generate`, sorted by length", m, d["batched_generate_sorted_by_length_s"],
         f"{round(d['batched_generate_sorted_by_length_s'] / d['ours_on_batched_generate_questions_s'], 2)}x",
         f"{d['identical_answers_batched_generate_sorted_by_length']} of {m}"],
        ["the baseline (the faster batched order) against ours", m, d["batched_generate_s"],
         f"**{d['speedup_vs_batched_generate']}x** (goal 1.5: {_goal(d['speedup_vs_batched_generate'] >= 1.5)})",
         f"{d['identical_answers_batched_generate']} of {m}"],
        [f"the whole default profile (stage 08: {d['default_profile_questions']:,} generations, scoring, figures)",
         "", d["default_profile_s"], "", ""],
    ]  # fmt: skip
    p = d["prompt_positions"]
    first_ours, first_base = d["first_token_ours_s"], d["first_token_batched_generate_s"]
    where = [
        [f"prompt positions computed, padding included ({p['tokens']:,} prompt tokens)",
         f"{p['computed']['ours']:,}", f"{p['computed']['sorted_by_length']:,}"],
        ["the prompts alone (`max_new_tokens=1`)", f"{first_ours} s", f"{first_base} s"],
        ["decoding (the total minus the prompts)",
         f"{round(d['ours_on_batched_generate_questions_s'] - first_ours, 1)} s",
         f"{round(d['batched_generate_sorted_by_length_s'] - first_base, 1)} s"],
        ["mean key/value cache width when decoding starts", p["cache_width"]["ours"],
         p["cache_width"]["sorted_by_length"]],
    ]  # fmt: skip
    return (
        rows(["", "questions", "seconds", "ours faster by", "answers identical to ours"], body)
        + "\n\nWhere the time goes, on the same questions:\n\n"
        + rows(["", "ours", "batched `model.generate`, sorted by length"], where)
    )


TABLES = {"svd_methods": svd_methods, "analysis_at_scale": analysis_at_scale, "odds_batching": odds_batching}


def plot_growth() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    growth = load("analysis_at_scale")["growth"]
    labels = [g["model"] for g in growth]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 2.6), layout="constrained")
    left.bar(labels, [g["seconds_per_matrix"] for g in growth], color="#4c72b0", label="ours")
    left.plot(
        labels,
        [g["floor_arithmetic_s_per_matrix"] for g in growth],
        "k_",
        markersize=30,
        mew=2,
        label="floor arithmetic",
    )
    left.set_ylabel("seconds per matrix")
    left.legend(fontsize=7, frameon=False)
    right.bar(labels, [g["peak_rss_gb"] for g in growth], color="#dd8452")
    right.set_ylabel("peak RSS (GB)")
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle("distchar stages 01-04 (k = 64) by model size", fontsize=10)
    fig.savefig(GROWTH_PLOT, dpi=110, metadata={"Software": None})
    plt.close(fig)


def render(text: str) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        return f"<!-- table: {name} -->\n{TABLES[name]()}\n<!-- /table -->"

    return re.sub(r"<!-- table: (\w+) -->\n.*?<!-- /table -->", replace, text, flags=re.S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = README.read_text()
    rendered = render(text)
    if args.check:
        if rendered != text:
            sys.exit("benchmarks/README.md: a generated table differs from its results file; run "
                     "python benchmarks/readme_tables.py")  # fmt: skip
        print("benchmarks/README.md: every generated table matches its results file")
        return
    README.write_text(rendered)
    plot_growth()


if __name__ == "__main__":
    main()

"""The findings tables of the docs, rendered from result files: no number in them is typed by hand.

A generated block in README.md or docs/*.md sits between two markers::

    <!-- findings: generator smollm2-135m-instruct -->
    ... (rewritten by ``python -m distchar.findings``) ...
    <!-- /findings -->

The first word after ``findings:`` names a renderer of ``RENDERERS``, the rest is its argument.
``python -m distchar.findings`` rewrites every block from ``results/``; ``--check`` rewrites
nothing and exits 1 naming each block whose text differs from what the result files render.
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
from distchar.results import ROOT, stage_folder

BLOCK = re.compile(r"(<!-- findings: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /findings -->)", re.S)
DOCS = ("README.md", "docs/*.md")


def _read(path: Path) -> str:
    if not path.exists():
        raise DistcharError(f"{path} does not exist; run the stage that writes it (dvc repro) or dvc pull.")
    return path.read_text()


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


def inits_table(task: str) -> str:
    """Stage 07's per-init means over seeds at each init's tuned learning rate, base model beside."""
    folder = stage_folder("evaluate", task)
    metrics = json.loads(_read(folder / "metrics.json"))
    summary = pd.read_csv(io.StringIO(_read(folder / "summary.csv")))
    metric = metrics["primary_metric"]
    extra = [c for c in ("parse_rate", "f1") if c in summary.columns]
    header = ["init", "lr", "seeds", "validation loss", f"{metric} [t interval]", *extra]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in summary.to_dict("records"):
        tuned = pd.notna(r.get("learning_rate"))
        interval = f" [{r[f'{metric}_low']:.3f}, {r[f'{metric}_high']:.3f}]" if tuned else ""
        cells = [f"`{r['init']}`" if tuned else str(r["init"]), f"{r['learning_rate']:g}" if tuned else "-",
                 f"{int(r['seeds'])}" if tuned else "-",
                 f"{r['validation_loss']:.4f}" if pd.notna(r.get("validation_loss")) else "-",
                 f"{r[metric]:.3f}{interval}", *(f"{r[c]:.3f}" for c in extra)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[str], str]] = {
    "file": stage_markdown,
    "generator": generator_table,
    "inits": inits_table,
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
    stale = []
    for path in doc_files():
        text = path.read_text()
        new, changed = refresh(text)
        stale += [f"{path}: {spec}" for spec in changed]
        if changed and not check:
            path.write_text(new)
    for line in stale:
        print(("differs from the result files: " if check else "rewrote: ") + line)
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())

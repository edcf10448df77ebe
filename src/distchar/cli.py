"""The ``distchar`` command: the pipeline's analyses for one model, without DVC.

    distchar analyze SOURCE [--out DIR] [--k 64] [--types q,k,v]   stages 01-04 for one model + an HTML page
    distchar init SOURCE --init reshaped --rank 8 --out DIR           a PEFT adapter folder of a LoRA init
    distchar report [--root .] [--out results/report]                 the offline HTML report of a pipeline run
    distchar check-params [params.yaml]                               validate a params file
    distchar rescore answers.csv [--out scores.csv]                   score What Are the Odds? answers

Every command runs the same functions as the pipeline's stages, so its numbers are the pipeline's.
Bad input stops with one sentence naming the culprit (``error: ...``), exit status 2, and nothing
written; ``--quiet`` turns the progress bars off (``distchar.progress``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from distchar.errors import DistcharError
from distchar.models.architectures import CANONICAL_TYPES
from distchar.progress import QUIET

app = typer.Typer(
    name="distchar",
    help="Distribution characteristics of LLM weights: spectra, distances, power-law fits, LoRA inits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _run(work: Callable[[], object], quiet: bool) -> None:
    """Run a command's work: a DistcharError becomes its sentence on stderr and exit status 2."""
    if quiet:
        os.environ[QUIET] = "1"
    try:
        work()
    except DistcharError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _types(value: list[str] | None) -> tuple[str, ...]:
    if not value:
        return CANONICAL_TYPES
    types = [t.strip() for item in value for t in item.split(",") if t.strip()]
    unknown = [t for t in types if t not in CANONICAL_TYPES]
    if unknown:
        raise DistcharError(f"--types: unknown type '{unknown[0]}'; the types are {', '.join(CANONICAL_TYPES)}.")
    return tuple(dict.fromkeys(types))


def _k(value: str | None) -> str | int | None:
    if value is None or value == "all":
        return value
    try:
        k = int(value)
    except ValueError:
        k = 0
    if k < 1:
        raise DistcharError(f"--k must be a whole number of at least 1 or 'all' (got {value!r}).")
    return k


@app.command()
def analyze(
    source: Annotated[str, typer.Argument(help="bundled:NAME, a .gguf file, a Hugging Face folder or a hub id.")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: analysis/NAME).")] = None,
    k: Annotated[
        str | None, typer.Option(help="Singular values kept per matrix, or 'all' (default: 64, or --params' svd.k).")
    ] = None,
    types: Annotated[list[str] | None, typer.Option(help="Projection types, e.g. q,k,v (default: all seven).")] = None,
    name: Annotated[str | None, typer.Option(help="The model's name in titles (default: from SOURCE).")] = None,
    params_file: Annotated[
        Path | None,
        typer.Option("--params", help="Take the svd and powerlaw settings from this params.yaml (default: defaults)."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Stages 01-04 (extract, SVD, distances, power-law fits) for one model, plus an HTML page."""

    def work():
        kinds, top_k = _types(types), _k(k)  # before the slow imports: a typo answers at once
        from distchar.analysis import analyze_model  # lazy: keeps --help fast

        result = analyze_model(source, out=out, k=top_k, types=kinds, name=name, params_file=params_file)
        typer.echo(result.description.strip())
        typer.echo(f"\nwrote {result.out} (open {result.page})")

    _run(work, quiet)


@app.command()
def init(
    source: Annotated[str, typer.Argument(help="The base model: bundled:NAME, a .gguf file, a folder or a hub id.")],
    init_name: Annotated[str, typer.Option("--init", help="A registered init (distchar.lora.registry).")],
    out: Annotated[Path, typer.Option(help="The adapter folder to write (PEFT format).")],
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    lora_alpha: Annotated[
        float, typer.Option("--alpha", help="LoRA alpha (the adapter is scaled by alpha/rank).")
    ] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the random inits.")] = 0,
    generator: Annotated[
        Path | None,
        typer.Option(help="Stage 05's folder for this model (results/05_generator/NAME), for the reshaped inits."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """A standard PEFT adapter folder of a LoRA init, for PeftModel.from_pretrained(base, OUT)."""
    from distchar.lora.peft_adapter import describe_export, export_adapter  # lazy: keeps --help fast

    def work():
        written = export_adapter(source, init_name, rank, out, lora_alpha=lora_alpha, seed=seed, generator=generator)
        typer.echo(describe_export(written))

    _run(work, quiet)


@app.command()
def report(
    root: Annotated[Path, typer.Option(help="The project whose results/ the report shows.")] = Path("."),
    out: Annotated[Path | None, typer.Option(help="Output folder (default: ROOT/results/report).")] = None,
) -> None:
    """The offline HTML report of a pipeline run (index.html and a page per study)."""
    from distchar.report import build_report  # lazy: keeps --help fast
    from distchar.report.build import DEFAULT_OUT  # lazy: keeps --help fast

    def work():
        pages = build_report(root, out if out is not None else root / DEFAULT_OUT)
        typer.echo(f"wrote {len(pages)} pages; open {pages[0]}")

    _run(work, quiet=True)


@app.command("check-params")
def check_params(
    path: Annotated[Path, typer.Argument(help="The params file.")] = Path("params.yaml"),
) -> None:
    """Validate a params.yaml: one sentence naming the first bad key, exit status 2."""
    from distchar.config import load_params  # lazy: keeps --help fast

    def work():
        params = load_params(path)
        typer.echo(f"{path} is valid: {len(params.models)} model(s): {', '.join(params.models)}.")

    _run(work, quiet=True)


@app.command()
def rescore(
    answers: Annotated[Path, typer.Argument(help="CSV of answers (distchar.studies.odds.scoring.ANSWER_COLUMNS).")],
    out: Annotated[Path | None, typer.Option(help="Where to write the per-question scores (CSV).")] = None,
    seed: Annotated[int | None, typer.Option(help="Reference-sample seed (default 1337, the pipeline's).")] = None,
) -> None:
    """Score What Are the Odds? answers (ours or a published run's) against our ground truth."""
    from distchar.studies.odds import rescore as module  # lazy: keeps --help fast

    args = [str(answers), *(["--out", str(out)] if out else []), *(["--seed", str(seed)] if seed is not None else [])]
    raise typer.Exit(module.main(args))


def main() -> None:
    """The console script (``[project.scripts]`` in pyproject.toml)."""
    app(prog_name="distchar")


if __name__ == "__main__":
    sys.exit(main())

"""Build the report: every page from one read of the results tree, written whole or not at all.

``python -m distchar.report [--root .] [--out results/report]`` (and ``distchar report``) writes
``index.html`` and a page per study into ``--out``. The same results give the same bytes: nothing
in a page depends on the clock, the machine or where the tree lies, and every listing is sorted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from distchar.atomic import atomic_directory
from distchar.errors import DistcharError, command
from distchar.report.html import page
from distchar.report.pages import INDEX, STUDY_PAGES, index
from distchar.report.sources import ResultsTree
from distchar.results import ROOT

DEFAULT_OUT = ROOT / "report"
"""Where ``python -m distchar.report`` writes, relative to the project root (the DVC stage's output)."""

LINKS = (INDEX, *(p.link for p in STUDY_PAGES))


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that holds more than a report: the write replaces ``out`` whole,
    and a slip such as ``--out results`` must not cost the results."""
    if out.exists() and (not out.is_dir() or any(p.suffix != ".html" or p.is_dir() for p in out.iterdir())):
        raise DistcharError(
            f"{out} exists and holds more than a report's .html pages, and building replaces it whole; "
            "give --out a new folder or an earlier report's."
        )


def build_report(root: Path, out: Path) -> list[Path]:
    """Write the report of ``root/results`` into ``out`` (replaced whole, on success only); return its pages.

    Raises DistcharError when ``root/results`` does not exist or ``out`` holds anything else."""
    tree = ResultsTree(Path(root))
    out = Path(out)
    _check_out(out)
    bodies = {p.link.file: (p.link.name, p.body(tree)) for p in STUDY_PAGES}
    bodies[INDEX.file] = ("Overview", index(tree))  # last: it counts what the study pages lacked
    with atomic_directory(out) as scratch:
        for link in LINKS:
            name, body = bodies[link.file]
            (scratch / link.file).write_text(page(f"distchar: {name}", body, LINKS, link.file), encoding="utf-8")
    return [out / link.file for link in LINKS]


def main(argv: list[str] | None = None) -> int:
    """The command line: exit 0 with one line naming the pages, or 2 with one sentence on bad input."""
    parser = argparse.ArgumentParser(prog="python -m distchar.report", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the project root (holding results/)")
    parser.add_argument("--out", type=Path, default=None, help=f"the report's folder (default: ROOT/{DEFAULT_OUT})")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    def work() -> None:
        pages = build_report(args.root, args.out if args.out is not None else args.root / DEFAULT_OUT)
        size = sum(p.stat().st_size for p in pages)
        print(f"wrote {len(pages)} pages ({size:,} bytes) to {pages[0].parent}: open {pages[0]}")

    return command(work)

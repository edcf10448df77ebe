"""The results tree a report is read from, and a record of what it lacked.

Two kinds of file live under ``results/`` (docs/sharing.md): the tables and metrics every stage
marks ``cache: false`` are committed in git, so every clone has them; figures and arrays live in
the DVC cache and exist only after ``dvc pull`` or ``dvc repro``. The report shows whatever is
there and, for each file that is not, a note naming it and the command that brings it, instead of
a broken image or a stack trace; the index counts what was missing.

Committed tables are rendered by ``distchar.findings``, the renderers of the docs' tables, so the
report and the docs show one text. Those read paths relative to the working directory (the
pipeline runs at the project root), hence the ``chdir`` around them.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from distchar.errors import DistcharError
from distchar.findings import render
from distchar.report.html import esc, markdown, note, png_figure
from distchar.results import ROOT, stage_folder


def dvc_stage(stage: str, key: str | None = None) -> str:
    """The name ``dvc repro`` and ``dvc pull`` know a stage by (``svd@<model>`` for a foreach stage)."""
    return f"{stage}@{key}" if key else stage


def _fetch(stage: str, it: str) -> str:
    """How to bring a stage's cached outputs: DVC keeps them out of git."""
    return (
        f"DVC keeps {it} in its cache, not in git. <code>dvc pull {esc(stage)}</code> fetches the committed "
        f"run's copy, <code>dvc repro {esc(stage)}</code> makes {it} afresh."
    )


class ResultsTree:
    """``root/results``, read for a report; ``shown`` and ``missing`` list the cached files
    (figures, arrays) that were there and that were not, relative to ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        folder = self.root / ROOT
        if not folder.is_dir():
            raise DistcharError(
                f"{folder} does not exist, so there is nothing to report; run the pipeline (dvc repro) or dvc pull "
                "in the project root first, or point --root at it."
            )
        self.shown: list[str] = []
        self.missing: list[str] = []

    def keys(self, stage: str) -> list[str]:
        """The models or tasks a foreach stage has written a folder for, sorted (scratch folders left out)."""
        folder = self.root / stage_folder(stage)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def findings(self, spec: str, heading_level: int = 4) -> str:
        """The findings block ``spec`` (``distchar.findings.RENDERERS``) rendered from this tree as
        HTML, or a note naming the result file it lacks."""
        with contextlib.chdir(self.root):
            try:
                text = render(spec)
            except DistcharError as exc:
                return note(esc(str(exc)))
        return markdown(text, heading_level)

    def json(self, relative: Path) -> dict | None:
        path = self.root / relative
        return json.loads(path.read_text()) if path.is_file() else None

    def csv(self, relative: Path) -> pd.DataFrame | None:
        path = self.root / relative
        return pd.read_csv(path) if path.is_file() else None

    def absent(self, relative: Path, stage: str, what: str = "Result file", cached: bool = True) -> str:
        """The note for a file that is not here: which one, and the commands that bring it (a cached
        file is counted in ``missing``)."""
        shown_as = Path(relative).as_posix()
        if not cached:
            return note(
                f"{what} <code>{esc(shown_as)}</code> is not here: <code>dvc repro {esc(stage)}</code> writes it."
            )
        self.missing.append(shown_as)
        return note(f"{what} <code>{esc(shown_as)}</code> is not here: {_fetch(stage, 'it')}")

    def figures(self, folder: Path, stage: str, figures: list[tuple[str, str]]) -> list[str]:
        """The PNGs (file name, caption) of ``folder`` embedded in the page, and one note naming
        those that are not here (absent, or no PNG: a half-finished pull)."""
        out, missing = [], []
        for name, caption in figures:
            relative = (Path(folder) / name).as_posix()
            shown = png_figure(self.root / relative, relative, caption)
            if shown:
                self.shown.append(relative)
                out.append(shown)
            else:
                self.missing.append(relative)
                missing.append(f"<code>{esc(name)}</code>")
        if len(missing) == 1:
            out.append(
                note(
                    f"Figure {missing[0]} of <code>{esc(Path(folder).as_posix())}/</code> is not here: "
                    + _fetch(stage, "it")
                )
            )
        elif missing:
            listed = ", ".join(missing[:-1]) + " and " + missing[-1]
            out.append(
                note(
                    f"Figures {listed} of <code>{esc(Path(folder).as_posix())}/</code> are not here: "
                    + _fetch(stage, "them")
                )
            )
        return out

    def arrays(self, relative: Path) -> dict[str, np.ndarray] | None:
        """A cached .npz (no pickles) as a dict, or None where it is absent or unreadable (a half pull)."""
        path = self.root / relative
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in sorted(data.files)}
        except (OSError, ValueError, zipfile.BadZipFile):
            return None

"""Stages 01-04 for one model without DVC: what ``distchar analyze`` runs.

The same stage functions as the pipeline (``run_extract``, ``run_svd``, ``run_distances``,
``run_powerlaw``) with the same settings (params.yaml's schema defaults, or the ``svd`` and
``powerlaw`` sections of a given params file), so the numbers are the pipeline's: for the bundled
SmolLM2, ``fits.json`` is byte for byte stage 04's. The outputs sit in one folder, in the
pipeline's layout (``results/01_extract/NAME/`` ... ``results/04_powerlaw/NAME/``, so that
``diff -r`` against a pipeline run compares like with like), with a one-page HTML summary
(``index.html``); the folder appears whole or not at all.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from distchar.atomic import atomic_directory
from distchar.config import PowerLawParams, SvdParams, load_params
from distchar.errors import DistcharError
from distchar.models.architectures import CANONICAL_TYPES
from distchar.models.sources import resolve_source
from distchar.report.model_page import write_model_page
from distchar.results import stage_folder
from distchar.stages.distances import run_distances
from distchar.stages.extract import run_extract
from distchar.stages.powerlaw import run_powerlaw
from distchar.stages.svd import run_svd

log = logging.getLogger(__name__)

STAGES = ("extract", "svd", "distances", "powerlaw")
"""The stages ``analyze_model`` runs, in order; each writes ``out/<its results folder>``."""


@dataclass(frozen=True)
class Analysis:
    """Where an analysis went: its folder, its HTML page and the description's sentences."""

    out: Path
    page: Path
    description: str


def model_name_of(source: str) -> str:
    """A folder name for ``source`` in the pipeline's model-name alphabet: the bundled name, the hub
    id's or folder's last part, or the file's stem, lower-cased."""
    if source.startswith("bundled:"):
        raw = source.removeprefix("bundled:")
    else:
        path = Path(source.rstrip("/"))
        raw = path.stem if path.suffix == ".gguf" else path.name
    name = re.sub(r"[^a-z0-9_-]+", "-", raw.lower()).strip("-_")[:64]
    return name or "model"


def settings(k: str | int | None, params_file: Path | None) -> tuple[SvdParams, PowerLawParams]:
    """The svd and powerlaw settings: a params file's sections or the schema's defaults (which are
    the committed params.yaml's), with ``k`` overriding ``svd.k`` when given."""
    if params_file is not None:
        params = load_params(params_file)
        svd, powerlaw = params.svd, params.powerlaw
    else:
        svd, powerlaw = SvdParams(), PowerLawParams()
    if k is not None:
        try:  # pydantic refuses a k that is neither a whole number >= 1 nor 'all'
            svd = SvdParams(**{**svd.model_dump(), "k": k})
        except ValidationError:
            raise DistcharError(f"--k must be a whole number of at least 1 or 'all' (got {k!r}).") from None
    return svd, powerlaw


def analyze_model(
    source: str,
    out: Path | None = None,
    k: str | int | None = None,
    types: tuple[str, ...] = CANONICAL_TYPES,
    name: str | None = None,
    params_file: Path | None = None,
) -> Analysis:
    """Run stages 01-04 on ``source`` into ``out`` (default ``analysis/NAME``) and write its page."""
    name = name or model_name_of(source)
    out = Path(out) if out is not None else Path("analysis") / name
    svd, powerlaw = settings(k, params_file)
    resolve_source(source)  # a bad source stops here, before any folder exists
    with atomic_directory(out) as scratch:
        folders = {stage: scratch / stage_folder(stage, name) for stage in STAGES}
        run_extract(name, source, types, folders["extract"])
        run_svd(name, source, folders["extract"], svd, folders["svd"])
        run_distances(name, folders["svd"], folders["distances"])
        run_powerlaw(name, folders["distances"], powerlaw, folders["powerlaw"], folders["extract"])
        write_model_page(scratch, name, source)
    return Analysis(out, out / "index.html", (out / stage_folder("powerlaw", name) / "description.md").read_text())

"""Wall-clock figures, kept out of every hashed output.

Seconds and tokens per second differ on every run, so no stage output that DVC hashes (and no
file committed beside ``dvc.lock``) holds them: a stage writes what it timed beside its output
folder instead, to ``<folder>.timings.json`` (``results/02_svd/<model>.timings.json``,
``results/10_nsga2.timings.json``). These files are neither DVC outputs nor tracked by git
(``.gitignore``), a rerun overwrites them, and ``make check-repro`` leaves them out of its
comparison: read them to see where the time of the last run on this machine went.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SUFFIX = ".timings.json"


def timings_file(out_dir: Path) -> Path:
    """Where the stage writing ``out_dir`` keeps its timings."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + SUFFIX)


def write_timings(out_dir: Path, figures: dict) -> Path:
    """Write ``figures`` (JSON-serialisable) as the timings of the stage writing ``out_dir``, whole
    or not at all."""
    path = timings_file(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.partial")
    scratch.write_text(json.dumps(figures, indent=1, default=float) + "\n")
    os.replace(scratch, path)
    return path


def read_timings(out_dir: Path) -> dict:
    """The timings the last run of the stage writing ``out_dir`` left ({} where there are none)."""
    path = timings_file(out_dir)
    return json.loads(path.read_text()) if path.exists() else {}

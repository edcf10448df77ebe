"""What every benchmark shares: the 01-04 analysis as a script for a fresh process, and the results file."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS_DIR = Path(__file__).parent / "results"


def analysis_script(source: str, svd_params: str = "") -> str:
    """Python code that runs stages 01-04 on ``source`` into a temp folder and prints
    ``TOTAL <seconds>`` and ``MATRICES <n>``; ``svd_params`` are SvdParams keyword arguments."""
    return f"""
import time, tempfile
from pathlib import Path
from distchar.config import PowerLawParams, SvdParams
from distchar.models.architectures import CANONICAL_TYPES
from distchar.stages.extract import run_extract
from distchar.stages.svd import run_svd
from distchar.stages.distances import run_distances
from distchar.stages.powerlaw import run_powerlaw
source, root = {source!r}, Path(tempfile.mkdtemp())
t = time.perf_counter()
summary = run_extract("m", source, CANONICAL_TYPES, root / "01")
run_svd("m", source, root / "01", SvdParams({svd_params}), root / "02")
run_distances("m", root / "02", root / "03")
run_powerlaw("m", root / "03", PowerLawParams(), root / "04", root / "01")
print("TOTAL", time.perf_counter() - t)
print("MATRICES", summary["n_matrices"])
"""


def write_results(name: str, results: dict) -> Path:
    """Add the machine and the command to ``results``, print them, and write results/NAME.json."""
    results = {
        **results,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": f"python benchmarks/{name}.py",
    }
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    print(f"wrote {path}")
    return path

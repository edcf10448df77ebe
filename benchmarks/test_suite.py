"""The test suite's wall time, as `make test` runs it: pytest with the project's settings.

Runs `pytest` once in this checkout (the environment set up by `make setup`; for the figure the
README quotes, a fresh clone), times the whole run and reads each test's time from a JUnit XML
report. Writes results/test_suite.json: `pytest_s` (wall seconds of the pytest run), `tests`
(passed), `failed`, `slowest` (the 10 slowest test ids with their seconds, setup included),
`cores`, `commit`.

    python benchmarks/test_suite.py [extra pytest arguments]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from common import write_results

ROOT = Path(__file__).resolve().parents[1]


def test_times(report: Path) -> tuple[dict[str, float], int, int]:
    """Seconds per test id (``tests/FILE.py::NAME``), tests passed and tests failed or errored."""
    seconds, passed, failed = {}, 0, 0
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        seconds[f"{module}.py::{case.get('name')}"] = float(case.get("time", 0))
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is None:
            passed += 1
    return seconds, passed, failed


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "junit.xml"
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", f"--junitxml={report}", *sys.argv[1:]], cwd=ROOT)
        wall = time.perf_counter() - started
        seconds, passed, failed = test_times(report)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()  # fmt: skip
    slowest = sorted(seconds.items(), key=lambda item: -item[1])[:10]
    write_results("test_suite", {
        "pytest_s": round(wall, 1),
        "tests": passed,
        "failed": failed,
        "slowest": [{"test": name, "seconds": round(s, 1)} for name, s in slowest],
        "cores": os.cpu_count(),
        "commit": commit.strip() + ("+uncommitted" if dirty else ""),
        "pytest_exit_code": result.returncode,
    })  # fmt: skip
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()

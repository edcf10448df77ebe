"""Does a rerun reproduce the committed results? ``make check-repro`` (``python -m distchar.reproducibility``).

Run it in a clone after ``make run`` (or any ``dvc repro``). It compares what the run left with
what is committed at ``--rev`` (``HEAD``):

1. ``dvc status``: the workspace agrees with ``dvc.lock`` (no stage left to run);
2. ``dvc.lock``: every stage's deps, params and outs hash as committed; each output whose hash
   changed is named (for an output in the DVC cache this is the only trace of a difference);
3. ``git diff``: no committed output (the ``cache: false`` files under ``results/``) differs from
   ``--rev``'s, and none is missing from git;
4. ``dvc metrics diff``: every metric as committed, or, with ``--rtol``, within that relative
   tolerance of it.

What differs on every run by design is not compared: timings (``*.timings.json``,
``distchar.timings``) and the executed notebooks under ``results/notebooks/``, neither of them an
output. On the machine kind the results were made on, expect no difference at all; on another CPU
(another BLAS, another number of threads) float sums may round differently, so compare with
``--rtol`` and read the named files. Exit status 0 when nothing differs (or only within
``--rtol``), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import yaml

LOCK = "dvc.lock"
RESULTS = "results"


def _run(*args: str, cwd: Path) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"`{' '.join(args)}` failed in {cwd}: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def lock_entries(text: str) -> dict[str, dict[str, str]]:
    """stage -> {"out path" / "dep path" / "params file": hash} from the text of a dvc.lock."""
    stages = (yaml.safe_load(text) or {}).get("stages", {})
    entries = {}
    for name, stage in stages.items():
        found = {}
        for kind in ("deps", "outs"):
            for item in stage.get(kind, []):
                found[f"{kind[:-1]} {item['path']}"] = item.get("md5") or item.get("hash") or ""
        for file, values in stage.get("params", {}).items():
            found[f"params {file}"] = json.dumps(values, sort_keys=True)
        entries[name] = found
    return entries


def lock_differences(committed: str, current: str) -> list[str]:
    """One line per stage entry (dep, out, params) of ``current`` that differs from ``committed``."""
    old, new = lock_entries(committed), lock_entries(current)
    lines = [f"{stage}: stage not in the committed lock" for stage in sorted(set(new) - set(old))]
    lines += [f"{stage}: stage gone from the lock" for stage in sorted(set(old) - set(new))]
    for stage in sorted(set(old) & set(new)):
        for key in sorted(set(old[stage]) | set(new[stage])):
            if old[stage].get(key) != new[stage].get(key):
                lines.append(f"{stage}: {key} changed")
    return lines


def metric_changes(diff: dict, rtol: float) -> tuple[list[str], list[str]]:
    """(beyond, within): the lines of ``dvc metrics diff --json`` whose change exceeds ``rtol``
    relative to the committed value, and those within it."""
    beyond, within = [], []
    for file, metrics in sorted(diff.items()):
        for name, change in sorted(metrics.items()):
            old, new = change.get("old"), change.get("new")
            line = f"{file}: {name} {old} -> {new}"
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, new))
            if numbers and math.isnan(old) and math.isnan(new):
                continue  # DVC reports NaN -> NaN as a change (NaN != NaN); it is none
            if numbers and (old == new or math.isclose(new, old, rel_tol=rtol, abs_tol=0.0)):
                within.append(line)
            else:
                beyond.append(line)
    return beyond, within


def check(repo: Path, rev: str = "HEAD", rtol: float = 0.0) -> dict[str, list[str]]:
    """What differs between the workspace of ``repo`` and the results committed at ``rev``, by heading."""
    repo = Path(repo)
    status = json.loads(_run("dvc", "status", "--json", cwd=repo) or "{}")
    committed_lock = _run("git", "show", f"{rev}:{LOCK}", cwd=repo)
    current_lock = (repo / LOCK).read_text() if (repo / LOCK).exists() else ""
    lock = lock_differences(committed_lock, current_lock)
    changed = _run("git", "diff", "--name-status", rev, "--", RESULTS, cwd=repo).splitlines()
    untracked = _run("git", "ls-files", "--others", "--exclude-standard", "--", RESULTS, cwd=repo).splitlines()
    modified = [line.replace("\t", " ") for line in changed] + [f"? {path}" for path in untracked]
    diff = json.loads(_run("dvc", "metrics", "diff", rev, "--json", cwd=repo) or "{}")
    beyond, within = metric_changes(diff, rtol)
    return {
        "stages not up to date (dvc status)": sorted(status),
        f"inputs (deps, params) that differ from {rev}'s dvc.lock": [x for x in lock if " out " not in x],
        f"outputs whose hash differs from {rev}'s dvc.lock": [x for x in lock if " out " in x],
        f"committed outputs that differ from {rev}'s (git diff; ? not in git)": modified,
        f"metrics that changed beyond rtol {rtol:g}": beyond,
        f"metrics that changed within rtol {rtol:g}": within,
    }


BYTES = ("outputs whose hash", "committed outputs that differ", "metrics that changed within")
"""Headings of differences in bytes alone: tolerated with ``--rtol``, failures without."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distchar.reproducibility", description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="the commit whose results to compare with (default HEAD)")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for metrics (default 0: exact)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the project folder (default .)")
    args = parser.parse_args(argv)
    found = check(args.repo, args.rev, args.rtol)
    for heading, lines in found.items():
        print(f"{heading}: {len(lines) or 'none'}")
        for line in lines:
            print(f"  {line}")
    failures = [h for h, lines in found.items() if lines and not (args.rtol and h.startswith(BYTES))]
    if failures:
        print(f"The workspace does not reproduce {args.rev}'s results (above).")
        return 1
    if any(found.values()):
        print(f"Files differ in their bytes; every metric is within rtol {args.rtol:g} of {args.rev}'s.")
    else:
        print(f"The workspace reproduces {args.rev}'s results byte for byte.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

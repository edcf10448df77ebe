"""`distchar analyze` against the pipeline's stages 01-04 under DVC, same model, same run.

    python benchmarks/analyze_cli.py [--model smollm2-135m-instruct] [--repeats 2]

A git clone of the project's HEAD (its committed dvc.lock and results) reruns the model's four
stages one by one with ``dvc repro --force --single-item`` (a papermill kernel each, as
``dvc repro`` runs them), and ``distchar analyze`` runs the same stages in one process; each is
timed end to end as a user waits for it, alternating, ``--repeats`` times. Both must give stage
04's committed ``fits.json`` byte for byte. Writes results/analyze_cli.json.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_results

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ("extract", "svd", "distances", "powerlaw")


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={"DISTCHAR_QUIET": "1", "PATH":
                            f"{BIN}:/usr/bin:/bin", "HOME": str(Path.home())})  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    committed = (REPO / "results" / "04_powerlaw" / args.model / "fits.json").read_bytes()
    with tempfile.TemporaryDirectory() as scratch:
        clone = Path(scratch) / "clone"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        pipeline, cli = [], []
        for repeat in range(args.repeats):
            pipeline.append({stage: timed([str(BIN / "dvc"), "repro", "--force", "--single-item",
                                           f"{stage}@{args.model}"], clone) for stage in STAGES})  # fmt: skip
            assert (clone / "results" / "04_powerlaw" / args.model / "fits.json").read_bytes() == committed
            out = Path(scratch) / f"analysis{repeat}"
            cli.append(timed([str(BIN / "distchar"), "analyze", f"bundled:{args.model}", "--out", str(out)], clone))
            assert (out / "results" / "04_powerlaw" / args.model / "fits.json").read_bytes() == committed
            shutil.rmtree(out)
    best_pipeline = min(pipeline, key=lambda p: sum(p.values()))
    results = {
        "model": args.model,
        "repeats": args.repeats,
        "pipeline_stages_s": {stage: round(s, 2) for stage, s in best_pipeline.items()},
        "pipeline_01_04_s": round(sum(best_pipeline.values()), 2),
        "analyze_s": round(min(cli), 2),
        "analyze_vs_pipeline": round(min(cli) / sum(best_pipeline.values()), 3),
        "all_pipeline_s": [round(sum(p.values()), 2) for p in pipeline],
        "all_analyze_s": [round(s, 2) for s in cli],
        "fits_json_identical": True,
    }
    write_results("analyze_cli", results)


if __name__ == "__main__":
    main()

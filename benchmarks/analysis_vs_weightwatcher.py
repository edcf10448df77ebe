"""Benchmark: the whole analysis (stages 01-04) of SmolLM2-135M against what a WeightWatcher user does.

Ours: stages 01-04 as the pipeline runs them (manifest, singular values with k = 64, distances,
fits with the default 100 bootstrap repetitions, every figure), from the bundled GGUF file, once
with ``svd.method: exact`` and once with ``randomized``. Baseline: load the same GGUF with
transformers, then ``weightwatcher``'s ``analyze()``. Each measurement runs in a fresh process,
timed from after its imports; the three alternate over ``--rounds`` rounds (default 2) in one
run and the medians are compared. Results go to benchmarks/results/analysis_vs_weightwatcher.json.

Run: python benchmarks/analysis_vs_weightwatcher.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from common import analysis_script, write_results

SOURCE = "bundled:smollm2-135m-instruct"

BASELINE = """
import logging, time
logging.disable(logging.WARNING)
import torch, weightwatcher
from transformers import AutoModelForCausalLM
from distchar.models.sources import resolve_source
gguf = resolve_source("bundled:smollm2-135m-instruct").files[0]
t = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
loaded = time.perf_counter()
details = weightwatcher.WeightWatcher(model=model).analyze()
done = time.perf_counter()
print("LOAD", loaded - t)
print("ANALYZE", done - loaded)
print("TOTAL", done - t)
print("LAYERS", len(details))
"""


def run(code: str) -> dict[str, float]:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    return {
        line.split()[0]: float(line.split()[1])
        for line in out.splitlines()
        if line.split()[:1] and line.split()[0].isupper()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"exact": [], "randomized": [], "weightwatcher": []}
    with tempfile.TemporaryDirectory():
        for round_ in range(args.rounds):
            runs["exact"].append(run(analysis_script(SOURCE, "k=64, method='exact'")))
            runs["randomized"].append(run(analysis_script(SOURCE, "k=64, method='randomized'")))
            runs["weightwatcher"].append(run(BASELINE))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]['TOTAL']:.1f} s" for k, v in runs.items()))
    med = {k: statistics.median(r["TOTAL"] for r in v) for k, v in runs.items()}
    analyze = statistics.median(r["ANALYZE"] for r in runs["weightwatcher"])
    load = statistics.median(r["LOAD"] for r in runs["weightwatcher"])
    results = {
        "ratio_randomized": round(med["weightwatcher"] / med["randomized"], 3),
        "ratio_exact": round(med["weightwatcher"] / med["exact"], 3),
        "ratio_exact_vs_analyze_only": round(analyze / med["exact"], 3),
        "ratio_randomized_vs_analyze_only": round(analyze / med["randomized"], 3),
        "ours_exact_s": round(med["exact"], 2),
        "ours_randomized_s": round(med["randomized"], 2),
        "weightwatcher_load_s": round(load, 2),
        "weightwatcher_analyze_s": round(analyze, 2),
        "weightwatcher_total_s": round(med["weightwatcher"], 2),
        "weightwatcher_layers": runs["weightwatcher"][0]["LAYERS"],
        "rounds": args.rounds,
        "goal": "ratio_randomized >= 5, ratio_exact >= 3 (baseline time / ours)",
    }
    write_results("analysis_vs_weightwatcher", results)


if __name__ == "__main__":
    main()

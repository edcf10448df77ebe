"""Benchmark for stage 01: peak memory of streaming extraction, and extraction time of SmolLM2.

Writes a synthetic Llama-shaped checkpoint of more than 4 GB (fp32, sharded safetensors, TinyLlama
shapes: 22 layers, hidden 2048, MLP 5632, 4 KV heads) into a scratch folder, then in fresh
processes measures the peak resident set size (ru_maxrss of that process) of
- ours: ``distchar.stages.extract.build_manifest`` over every projection matrix, streamed;
- the baseline: loading every shard with ``safetensors.torch.load_file`` and touching every
  tensor once, as a script that holds the model in memory does.
Then times stage 01 (``run_extract``: manifest, summary, figure; imports excluded) on the bundled
SmolLM2, median of three fresh processes. Results go to benchmarks/results/extract_memory.json.

Run: python benchmarks/extract_memory.py [--scratch DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import write_results
from safetensors.torch import save_file

LAYERS, HIDDEN, MLP, KV = 22, 2048, 5632, 256
SHARD_BYTES = 1 << 30


def llama_shapes() -> list[tuple[str, tuple[int, int]]]:
    shapes = [("model.embed_tokens.weight", (32000, HIDDEN))]
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes += [
            (p + "self_attn.q_proj.weight", (HIDDEN, HIDDEN)),
            (p + "self_attn.k_proj.weight", (KV, HIDDEN)),
            (p + "self_attn.v_proj.weight", (KV, HIDDEN)),
            (p + "self_attn.o_proj.weight", (HIDDEN, HIDDEN)),
            (p + "mlp.gate_proj.weight", (MLP, HIDDEN)),
            (p + "mlp.up_proj.weight", (MLP, HIDDEN)),
            (p + "mlp.down_proj.weight", (HIDDEN, MLP)),
        ]
    return [*shapes, ("lm_head.weight", (32000, HIDDEN))]


def write_synthetic_llama(folder: Path) -> float:
    """Write the checkpoint shard by shard (never the whole model in memory); returns GB on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "llama", "hidden_size": HIDDEN, "intermediate_size": MLP, "num_hidden_layers": LAYERS}
    (folder / "config.json").write_text(json.dumps(config))
    generator = torch.Generator().manual_seed(0)
    shard: dict[str, torch.Tensor] = {}
    size, index, weight_map = 0, 0, {}
    for name, shape in llama_shapes():
        shard[name] = torch.randn(shape, generator=generator) * 0.02
        weight_map[name] = f"model-{index:05d}.safetensors"
        size += shard[name].numel() * 4
        if size >= SHARD_BYTES:
            save_file(shard, folder / f"model-{index:05d}.safetensors", metadata={"format": "pt"})
            shard, size, index = {}, 0, index + 1
    if shard:
        save_file(shard, folder / f"model-{index:05d}.safetensors", metadata={"format": "pt"})
    # the index Hugging Face writes beside shards, so that transformers can load the checkpoint too
    index_file = {"metadata": {"total_size": sum(4 * a * b for _, (a, b) in llama_shapes())}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index_file))
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1e9


_REPORT_PEAK = """
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print("VmHWM", int(line.split()[1]))
"""


def peak_rss_gb(code: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter; return its peak RSS (GB) and the rest of its stdout.

    The peak is the child's own VmHWM, read by the child at its end: ru_maxrss from wait4 would
    include the memory of this (large) process at the fork before exec.
    """
    result = subprocess.run([sys.executable, "-c", code + _REPORT_PEAK], capture_output=True, text=True, check=True)
    lines = result.stdout.strip().splitlines()
    kib = int(lines[-1].split()[1])
    return kib * 1024 / 1e9, "\n".join(lines[:-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=None, help="folder for the synthetic model (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic model afterwards")
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="distchar-bench-"))
    model = scratch / "synthetic-llama"
    try:
        start = time.perf_counter()
        gb = write_synthetic_llama(model)
        print(f"synthetic Llama: {gb:.2f} GB of safetensors written in {time.perf_counter() - start:.0f} s")

        ours_code = (
            "import time; from distchar.stages.extract import build_manifest\n"
            f"t = time.perf_counter(); m = build_manifest({str(model)!r})\n"
            "print(len(m), round(time.perf_counter() - t, 1))"
        )
        ours_gb, ours_out = peak_rss_gb(ours_code)
        n_matrices, ours_s = ours_out.split()[-2:]
        print(f"ours (streamed): {n_matrices} matrices, peak RSS {ours_gb:.2f} GB, {ours_s} s")

        baseline_code = (
            "import glob; from safetensors.torch import load_file\n"
            f"sd = {{}}\nfor f in sorted(glob.glob({str(model / '*.safetensors')!r})): sd.update(load_file(f))\n"
            "print(sum(float(t.abs().max()) for t in sd.values()) > 0)"  # touch every tensor, as a user would
        )
        base_gb, _ = peak_rss_gb(baseline_code)
        print(f"baseline (load_file, whole model in memory): peak RSS {base_gb:.2f} GB")
    finally:
        if not args.keep:
            shutil.rmtree(scratch if args.scratch is None else model, ignore_errors=True)

    times = []
    with tempfile.TemporaryDirectory() as out:
        timed = (
            "import time; from pathlib import Path\n"
            "from distchar.stages.extract import run_extract\n"
            "from distchar.models.architectures import CANONICAL_TYPES\n"
            "t = time.perf_counter()\n"
            f"run_extract('smollm2', 'bundled:smollm2-135m-instruct', CANONICAL_TYPES, Path({out!r}) / 's')\n"
            "print(time.perf_counter() - t)"
        )
        for _ in range(3):  # each in a fresh process, as a stage runs: no index cached from a previous run
            result = subprocess.run([sys.executable, "-c", timed], capture_output=True, text=True, check=True)
            times.append(float(result.stdout.split()[-1]))
    smollm2_s = statistics.median(times)
    print(f"stage 01 on bundled SmolLM2 (210 matrices, manifest + figure): median {smollm2_s:.2f} s of 3")

    results = {
        "model_gb_on_disk": round(gb, 3),
        "peak_rss_gb": round(ours_gb, 3),
        "baseline_load_file_peak_rss_gb": round(base_gb, 3),
        "synthetic_extract_s": float(ours_s),
        "smollm2_extract_s": round(smollm2_s, 3),
        "smollm2_extract_runs_s": [round(t, 3) for t in times],
        "goal": "peak_rss_gb < 1.5 with model_gb_on_disk >= 4",
    }
    write_results("extract_memory", results)


if __name__ == "__main__":
    main()

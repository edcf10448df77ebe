"""Benchmark: the analysis at the scale users bring, against the machine's floor and WeightWatcher.

    python benchmarks/analysis_at_scale.py [--scratch DIR] [--layers 32] [--skip-weightwatcher]

Builds (deterministically, shard by shard) a synthetic Llama of 1B shape in bf16 safetensors
(hidden 2048, intermediate 8192, 8 KV heads of 64, ``--layers`` layers: 32 make it 4.2 GB) with the
full config transformers needs, then measures in fresh processes, in one run:
- the floor: (a) reading and converting every projection matrix to float32 once, no arithmetic
  (our streaming reader); (b) the arithmetic of the requested output at the machine's measured
  float32 GEMM throughput: per matrix of sides s <= l, the symmetric Gram product (s^2 l flops:
  only one triangle is needed) and the symmetric eigen-decomposition (4/3 s^3, priced at GEMM
  speed although LAPACK's reduction to tridiagonal form is half matrix-vector work and runs
  several times slower): the least an exact method does. Beside it, the floor with the solver's
  measured time (float32 ``eigvalsh`` of one Gram matrix per shape, times the matrices of that
  shape), which no Gram method can go under on this machine;
- ours, the paper's analysis: stages 01-04 with the default params (k = 64), and ours with every
  singular value (``svd.k: all``: full spectra and the ESD alpha of every matrix);
- WeightWatcher: ``from_pretrained`` then ``analyze()`` (full spectra and ESD alpha per matrix);
- accuracy: our top-64 values of a sample of matrices against LAPACK's float64 SVD, and our ESD
  alpha against WeightWatcher's per matrix where both chose the same xmin;
- growth: seconds per matrix and peak memory of ours on SmolLM2-135M, a 0.5B shape and the 1B shape,
  beside each model's floor arithmetic per matrix (from its shapes, at the measured GEMM speed).
Peak memory is each process's own VmHWM. Results: benchmarks/results/analysis_at_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import write_results
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
from extract_memory import peak_rss_gb

SHARD_BYTES = 1 << 30
ONE_B = {"hidden": 2048, "intermediate": 8192, "kv": 512, "heads": 32}
HALF_B = {"hidden": 1024, "intermediate": 4096, "kv": 256, "heads": 16}
TYPES = ("q", "k", "v", "o", "gate", "up", "down")


def shapes(hidden: int, intermediate: int, kv: int, layers: int, **_) -> list[tuple[str, tuple[int, int]]]:
    out = [("model.embed_tokens.weight", (32000, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", (hidden, hidden)),
            (p + "self_attn.k_proj.weight", (kv, hidden)),
            (p + "self_attn.v_proj.weight", (kv, hidden)),
            (p + "self_attn.o_proj.weight", (hidden, hidden)),
            (p + "mlp.gate_proj.weight", (intermediate, hidden)),
            (p + "mlp.up_proj.weight", (intermediate, hidden)),
            (p + "mlp.down_proj.weight", (hidden, intermediate)),
            (p + "input_layernorm.weight", (hidden,)),
            (p + "post_attention_layernorm.weight", (hidden,)),
        ]
    return [*out, ("model.norm.weight", (hidden,)), ("lm_head.weight", (32000, hidden))]


def write_model(folder: Path, layers: int, shape: dict) -> float:
    """A bf16 Llama of ``shape`` with ``layers`` layers, written shard by shard; GB on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": shape["hidden"],
        "intermediate_size": shape["intermediate"], "num_hidden_layers": layers,
        "num_attention_heads": shape["heads"], "num_key_value_heads": shape["kv"] // 64, "head_dim": 64,
        "vocab_size": 32000, "max_position_embeddings": 2048, "torch_dtype": "bfloat16",
        "tie_word_embeddings": False, "rms_norm_eps": 1e-5,
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    generator = torch.Generator().manual_seed(0)
    shard, size, index, weight_map, total = {}, 0, 0, {}, 0
    for name, dims in shapes(layers=layers, **shape):
        tensor = torch.ones(dims) if len(dims) == 1 else torch.randn(dims, generator=generator) * 0.02
        shard[name] = tensor.to(torch.bfloat16)
        weight_map[name] = f"model-{index:05d}.safetensors"
        size += shard[name].numel() * 2
        total += shard[name].numel() * 2
        if size >= SHARD_BYTES:
            save_file(shard, folder / f"model-{index:05d}.safetensors", metadata={"format": "pt"})
            shard, size, index = {}, 0, index + 1
    if shard:
        save_file(shard, folder / f"model-{index:05d}.safetensors", metadata={"format": "pt"})
    index_file = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index_file))
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1e9


GEMM = """
import time, torch
n = 4096
a, b = torch.randn(n, n), torch.randn(n, n)
a @ b
best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(3))
print("GFLOPS", 2 * n ** 3 / best / 1e9)
"""

READ = """
import time, torch
from collections import Counter
from distchar.models.projections import list_projections, stream_projections
from distchar.models.sources import resolve_source
matrices = list_projections(resolve_source({source!r}), {types!r})
t = time.perf_counter()
flops, gram_flops, shapes = 0, 0, Counter()
for matrix, weight in stream_projections(matrices):
    s, l = sorted(weight.shape)
    flops += s * s * l + 4 * s ** 3 / 3
    gram_flops += s * s * l
    shapes[s] += 1
print("READ", time.perf_counter() - t)
print("FLOPS", flops)
print("GRAM_FLOPS", gram_flops)
print("MATRICES", len(matrices))
solver = 0.0
for side, count in shapes.items():
    a = torch.randn(side, 4 * side)
    gram = a @ a.T
    torch.linalg.eigvalsh(gram)
    t = time.perf_counter()
    torch.linalg.eigvalsh(gram)
    solver += count * (time.perf_counter() - t)
print("SOLVER", solver)
"""

ANALYSIS = """
import time, tempfile, json
from pathlib import Path
from distchar.config import PowerLawParams, SvdParams
from distchar.stages.extract import run_extract
from distchar.stages.svd import run_svd
from distchar.stages.distances import run_distances
from distchar.stages.powerlaw import run_powerlaw
source, root = {source!r}, Path({out!r})
t = time.perf_counter()
summary = run_extract("m", source, {types!r}, root / "01")
print("EXTRACT", time.perf_counter() - t)
t2 = time.perf_counter()
run_svd("m", source, root / "01", SvdParams(k={k!r}), root / "02")
print("SVD", time.perf_counter() - t2)
t2 = time.perf_counter()
run_distances("m", root / "02", root / "03")
run_powerlaw("m", root / "03", PowerLawParams(), root / "04", root / "01")
print("FITS", time.perf_counter() - t2)
print("TOTAL", time.perf_counter() - t)
print("MATRICES", summary["n_matrices"])
"""

WEIGHTWATCHER = """
import logging, time, json
logging.disable(logging.WARNING)
import weightwatcher
from transformers import AutoModelForCausalLM
t = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained({folder!r})
details = weightwatcher.WeightWatcher(model=model).analyze()
print("TOTAL", time.perf_counter() - t)
details[["longname", "alpha", "xmin", "num_evals"]].to_csv({out!r}, index=False)
"""


def fields(stdout: str) -> dict[str, float]:
    return {line.split()[0]: float(line.split()[1]) for line in stdout.splitlines() if len(line.split()) == 2}


def measure(code: str) -> tuple[float, dict[str, float]]:
    gb, out = peak_rss_gb(code)
    return gb, fields(out)


def arithmetic_flops(source: str) -> float:
    """The floor's arithmetic of a model from its matrix shapes: symmetric Gram and eigen flops."""
    from distchar.models.projections import list_projections
    from distchar.models.sources import resolve_source

    shapes = [sorted(m.shape) for m in list_projections(resolve_source(source), TYPES)]
    return sum(side * side * length + 4 * side**3 / 3 for side, length in shapes)


def topk_error(source: str, values_npz: Path, sample: int = 8) -> float:
    """Largest relative error of our top-k values against LAPACK's float64 SVD on ``sample`` matrices."""
    import numpy as np

    from distchar.models.projections import list_projections, load_projection
    from distchar.models.sources import resolve_source

    matrices = list_projections(resolve_source(source), TYPES)
    with np.load(values_npz) as data:
        arrays = {name: data[name] for name in data.files}
    worst = 0.0
    for m in matrices[:: max(1, len(matrices) // sample)][:sample]:
        ours = arrays[m.type][list(arrays[f"{m.type}_layers"]).index(m.layer)]
        reference = np.linalg.svd(load_projection(m).double().numpy(), compute_uv=False)[: ours.size]
        worst = max(worst, float(np.max(np.abs(ours - reference) / reference)))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=None)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--skip-weightwatcher", action="store_true")
    args = parser.parse_args()
    os.environ["DISTCHAR_QUIET"] = "1"
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="distchar-scale-"))
    results: dict = {}
    try:
        one_b, half_b = scratch / "llama-1b-shape", scratch / "llama-0.5b-shape"
        started = time.perf_counter()
        gb = write_model(one_b, args.layers, ONE_B)
        write_model(half_b, 24, HALF_B)
        print(f"models written in {time.perf_counter() - started:.0f} s; 1B shape: {gb:.2f} GB", flush=True)
        _, gemm = measure(GEMM)
        _, read = measure(READ.format(source=str(one_b), types=TYPES))
        arithmetic_s = read["FLOPS"] / (gemm["GFLOPS"] * 1e9)
        floor_s = read["READ"] + arithmetic_s
        floor_solver_s = read["READ"] + read["GRAM_FLOPS"] / (gemm["GFLOPS"] * 1e9) + read["SOLVER"]
        print(f"floor: read {read['READ']:.1f} s + arithmetic {arithmetic_s:.1f} s; "
              f"the solver alone measures {read['SOLVER']:.1f} s", flush=True)  # fmt: skip
        growth = []
        for label, source in (("135M (SmolLM2)", "bundled:smollm2-135m-instruct"), ("0.5B shape", str(half_b)),
                              ("1B shape", str(one_b))):  # fmt: skip
            out = scratch / f"ours-{len(growth)}"
            peak, ours = measure(ANALYSIS.format(source=source, out=str(out), types=TYPES, k=64))
            floor = arithmetic_flops(source) / (gemm["GFLOPS"] * 1e9) / ours["MATRICES"]
            growth.append({"model": label, "matrices": int(ours["MATRICES"]), "seconds": round(ours["TOTAL"], 1),
                           "seconds_per_matrix": round(ours["TOTAL"] / ours["MATRICES"], 3),
                           "floor_arithmetic_s_per_matrix": round(floor, 4),
                           "floor_arithmetic_ratio": round(ours["TOTAL"] / ours["MATRICES"] / floor, 1),
                           "peak_rss_gb": round(peak, 3),
                           "stages_s": {n.lower(): round(ours[n], 1) for n in ("EXTRACT", "SVD", "FITS")}})  # fmt: skip
            print(growth[-1], flush=True)
        topk_peak, topk = growth[-1]["peak_rss_gb"], growth[-1]["seconds"]
        error = topk_error(str(one_b), scratch / "ours-2" / "02" / "singular_values.npz")
        full_peak, full = measure(ANALYSIS.format(source=str(one_b), out=str(scratch / "full"), types=TYPES, k="all"))
        print(f"ours full spectra: {full['TOTAL']:.0f} s, peak {full_peak:.2f} GB", flush=True)
        results = {
            "model_gb_on_disk": round(gb, 2),
            "layers": args.layers,
            "gemm_gflops": round(gemm["GFLOPS"], 1),
            "floor_read_s": round(read["READ"], 1),
            "floor_arithmetic_s": round(arithmetic_s, 1),
            "floor_s": round(floor_s, 1),
            "ours_topk_s": topk,
            "floor_ratio": round(topk / floor_s, 2),
            "floor_with_measured_solver_s": round(floor_solver_s, 1),
            "solver_measured_s": round(read["SOLVER"], 1),
            "floor_with_measured_solver_ratio": round(topk / floor_solver_s, 2),
            "ours_full_s": round(full["TOTAL"], 1),
            "peak_rss_gb": topk_peak,
            "peak_rss_full_gb": round(full_peak, 3),
            "topk_max_rel_error": float(f"{error:.3g}"),
            "topk_alpha_max_abs_diff_vs_full": esd_alpha_difference(
                scratch / "ours-2" / "02" / "summaries.csv", scratch / "full" / "02" / "summaries.csv"
            ),
            "growth": growth,
        }
        if not args.skip_weightwatcher:
            ww_csv = scratch / "ww.csv"
            ww_peak, ww = measure(WEIGHTWATCHER.format(folder=str(one_b), out=str(ww_csv)))
            results |= {
                "ww_s": round(ww["TOTAL"], 1),
                "ww_peak_rss_gb": round(ww_peak, 3),
                "ratio_full_vs_weightwatcher": round(ww["TOTAL"] / full["TOTAL"], 2),
                "ratio_topk_vs_weightwatcher": round(ww["TOTAL"] / topk, 2),
                **alpha_agreement(scratch / "full" / "02" / "summaries.csv", ww_csv),
            }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_results("analysis_at_scale", results)


def esd_alpha_difference(topk: Path, full: Path) -> float:
    """Largest |ESD alpha| difference between the top-k run's spectra (float32 under auto) and the
    full run's (float64), matrix by matrix."""
    import pandas as pd

    pairs = pd.read_csv(topk).merge(pd.read_csv(full), on=["layer", "type"], suffixes=("", "_full"))
    return float(f"{(pairs['esd_alpha'] - pairs['esd_alpha_full']).abs().max():.3g}")


def alpha_agreement(summaries: Path, ww_csv: Path) -> dict:
    """Our ESD alpha against WeightWatcher's, matrix by matrix (matched by module path, WeightWatcher's
    ``longname``: its ``name`` is the last part only), where both
    chose the same xmin (ours is stored with 8 significant digits)."""
    import re

    import pandas as pd

    suffix = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate", "up_proj": "up",
              "down_proj": "down"}  # fmt: skip
    ww = pd.read_csv(ww_csv)
    keys = [re.search(r"layers\.(\d+)\..*\.(\w+_proj)", str(name)) for name in ww["longname"]]
    ww["layer"] = [int(k.group(1)) if k else -1 for k in keys]
    ww["type"] = [suffix.get(k.group(2)) if k else None for k in keys]
    pairs = pd.read_csv(summaries).merge(ww.dropna(subset=["type"]), on=["layer", "type"], suffixes=("", "_ww"))
    same = pairs[(pairs["esd_xmin"] - pairs["xmin"]).abs() <= 1e-6 * pairs["xmin"].abs()]
    print(f"alpha: {len(pairs)} matrices matched by name, {len(same)} with the same xmin", flush=True)
    return {
        "alpha_matrices_compared": len(same),
        "alpha_matrices_total": len(pairs),
        "alpha_max_abs_diff": float(f"{(same['esd_alpha'] - same['alpha']).abs().max():.3g}") if len(same) else None,
        "alpha_max_abs_diff_all": float(f"{(pairs['esd_alpha'] - pairs['alpha']).abs().max():.3g}")
        if len(pairs)
        else None,
    }


if __name__ == "__main__":
    main()

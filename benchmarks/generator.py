"""Benchmark: stage 05 (the generator, its tuning, the LoRA inits) and the improved crowding distance.

- ``init_all_modules_s``: generating one of our inits (``reshaped``, ``reshaped_nonzero``,
  ``matched_random``: A, B and the compensation of W) for every target module of SmolLM2-135M
  (210 projection matrices, rank and alpha from params.yaml) on a model already wrapped by PEFT;
  the slowest of the three. ``init_s_by_name`` is the whole ``apply_init`` of every registered
  init, PEFT's wrapping (``get_peft_model``, ``peft_wrap_s``) included, model loading excluded.
- ``sample_80x64_s``: one synthetic 80 x 64 matrix (median of 50 draws).
- ``tune_s``: the tuning of stage 05 with the default params on SmolLM2's real singular values
  (all seven types, stage 02-04 run first into a temp folder); ``stage_s`` is the whole stage
  (tuning, fidelity checks, every init for every seed, figures).
- ``crowding_ratio_vs_cd``: our improved crowding distance against pymoo's ``cd`` per call at n =
  200 points (3 objectives), both through the wrapper NSGA-II's survival calls
  (``CrowdingDiversity.do``), interleaved, median of 2,000 calls each.

Results: benchmarks/results/generator.json. Run: python benchmarks/generator.py
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from common import write_results

from distchar.config import PowerLawParams, SvdParams, load_params
from distchar.crowding import crowding_function
from distchar.generator.gp_pareto import GeneratorParams, generated_profiles, sample
from distchar.lora.inits import apply_init, write_ours
from distchar.lora.registry import INITS, OURS
from distchar.models.architectures import CANONICAL_TYPES
from distchar.models.loading import load_transformers_model
from distchar.models.sources import resolve_source
from distchar.spectra.profiles import load_profiles
from distchar.stages.distances import run_distances
from distchar.stages.extract import run_extract
from distchar.stages.generator import run_generator
from distchar.stages.powerlaw import run_powerlaw
from distchar.stages.svd import run_svd

SOURCE = "bundled:smollm2-135m-instruct"


def crowding_ratio(n: int = 200, calls: int = 2000) -> dict:
    from pymoo.operators.survival.rank_and_crowding.metrics import get_crowding_function

    F = np.random.default_rng(0).random((n, 3))
    ours, cd = crowding_function("improved"), get_crowding_function("cd")
    times = {"improved": [], "cd": []}
    for _ in range(calls):
        for name, function in (("improved", ours), ("cd", cd)):
            started = time.perf_counter()
            function.do(F)
            times[name].append(time.perf_counter() - started)
    median = {name: float(np.median(t)) for name, t in times.items()}
    return {"ratio": median["improved"] / median["cd"], "improved_us": median["improved"] * 1e6,
            "cd_us": median["cd"] * 1e6}  # fmt: skip


def main() -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(level=logging.WARNING)
    params = load_params(Path(__file__).parents[1] / "params.yaml")
    crowding = crowding_ratio()
    rng = np.random.default_rng(0)
    demo = GeneratorParams(alpha=2.5, xmin=1.0, layer_length=4.0, index_length=3.0, nugget=0.1)
    sample_times = []
    for _ in range(50):
        started = time.perf_counter()
        sample(demo, 80, 64, rng)
        sample_times.append(time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run_extract("m", SOURCE, CANONICAL_TYPES, root / "01")
        run_svd("m", SOURCE, root / "01", SvdParams(), root / "02")
        run_distances("m", root / "02", root / "03")
        run_powerlaw("m", root / "03", PowerLawParams(bootstrap=0), root / "04", root / "01")
        started = time.perf_counter()
        result = run_generator("m", SOURCE, root / "02", root / "04", params.generator, params.lora, root / "05")
        stage_s = time.perf_counter() - started
        real, layers = load_profiles(root / "02")
        chosen = {kind: GeneratorParams(**r["chosen"]) for kind, r in result["report"].items()}
        n_layers = int(max(v.max() for v in layers.values()) + 1)
        profiles = generated_profiles(chosen, real, layers, n_layers, params.lora.rank, 0)

    resolved = resolve_source(SOURCE)
    base = load_transformers_model(resolved)
    generation_s = {}
    for name in OURS:
        model = apply_init(copy.deepcopy(base), "default", resolved.architecture, rank=params.lora.rank,
                           lora_alpha=params.lora.alpha)  # fmt: skip
        started = time.perf_counter()
        write_ours(model, name, resolved.architecture, profiles, seed=0)
        generation_s[name] = round(time.perf_counter() - started, 3)
        del model
    from peft import get_peft_model

    from distchar.lora.inits import lora_config, lora_targets

    model = copy.deepcopy(base)
    started = time.perf_counter()
    targets = lora_targets(model, resolved.architecture)
    get_peft_model(model, lora_config(targets, resolved.architecture, params.lora.rank, params.lora.alpha, False))
    peft_wrap_s = round(time.perf_counter() - started, 3)
    del model
    init_s = {}
    for name in INITS:
        model = copy.deepcopy(base)
        started = time.perf_counter()
        apply_init(model, name, resolved.architecture, rank=params.lora.rank, lora_alpha=params.lora.alpha,
                   profiles=profiles, seed=0)  # fmt: skip
        init_s[name] = round(time.perf_counter() - started, 3)
        del model
    write_results(
        "generator",
        {
            "init_all_modules_s": max(generation_s.values()),
            "sample_80x64_s": round(float(np.median(sample_times)), 5),
            "tune_s": round(result["tune_s"], 1),
            "crowding_ratio_vs_cd": round(crowding["ratio"], 3),
            "stage_s": round(stage_s, 1),
            "generation_s": generation_s,
            "peft_wrap_s": peft_wrap_s,
            "init_s_by_name": init_s,
            "crowding_us": {"improved": round(crowding["improved_us"], 1), "cd": round(crowding["cd_us"], 1)},
            "settings": {
                "population": params.generator.population,
                "generations": params.generator.generations,
                "draws": params.generator.draws,
                "crowding": params.generator.crowding,
                "lora_rank": params.lora.rank,
                "lora_seeds": params.lora.seeds,
            },
            "goals": "init_all_modules_s < 1, sample_80x64_s < 5, tune_s < 180, crowding_ratio_vs_cd <= 1.1",
        },
    )


if __name__ == "__main__":
    main()

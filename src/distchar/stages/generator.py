"""Stage 05 generator: tune the GP + Pareto generator per projection type, measure its fidelity, make
every registered LoRA init.

Inputs: stage 02's singular-value matrices S_t and stage 04's fits. Per type t:

1. ``estimate(S_t)`` gives the start; NSGA-II (``generator.crowding``) tunes alpha, the two
   correlation lengths and the nugget on the three fidelity objectives; the knee is chosen.
   The alpha gap aims at stage 04's alpha of t. Where that fit is insufficient, it aims at the
   pooled alpha, and where that is insufficient too at ``generator.fallback_alpha``; the fallback
   is written into ``generator.json`` and the log, never silent.
2. Fidelity of the start and of the chosen point on ``check_draws`` fresh synthetic matrices (not
   those the tuning saw), mean and standard deviation.
3. Profiles: one synthetic row per layer (0 .. L-1), scaled per layer to the Frobenius norm of
   the real top-r singular values (``match_scale``; layers stage 02 excluded take the median).

Then every init of ``lora.inits`` for every seed of ``lora.seeds`` (once for the inits that do not
depend on the seed) on the model loaded with transformers, saved as safetensors under ``inits/``
with ``inits/index.json`` naming the file of each (init, seed) and whether the base weight is
compensated.

Outputs: ``generator.json``, ``pareto_front.csv``, ``profiles.npz``, ``front.png``, ``ccdf.png``,
``heatmaps.png``, ``inits/``, ``metrics.json``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from distchar.atomic import atomic_directory
from distchar.config import GeneratorSection, LoraParams
from distchar.distances import cosine_distances
from distchar.generator.fidelity import OBJECTIVES, check_fidelity, upper_distances
from distchar.generator.gp_pareto import generated_profiles
from distchar.generator.tuning import reference_alpha, start_params, tune
from distchar.lora.saved import save_inits
from distchar.plots import TYPE_PALETTE, save_figure, use_style
from distchar.spectra.profiles import load_profiles
from distchar.timings import write_timings

log = logging.getLogger(__name__)


def plot_fronts(fronts: pd.DataFrame, model_name: str):
    import matplotlib.pyplot as plt

    use_style()
    kinds = list(dict.fromkeys(fronts["type"]))
    columns = min(4, len(kinds))
    rows = -(-len(kinds) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.2 * rows), squeeze=False, layout="constrained")
    for ax, kind in zip(axes.flat, kinds, strict=False):
        front = fronts[fronts["type"] == kind]
        points = ax.scatter(front["distance_ks"], front["spectrum_wasserstein"], c=front["alpha_gap"], cmap="viridis",
                            s=18, vmin=0, vmax=max(front["alpha_gap"].max(), 1e-6))  # fmt: skip
        knee = front[front["knee"]]
        ax.scatter(knee["distance_ks"], knee["spectrum_wasserstein"], marker="*", s=160, color="red", label="knee")
        ax.set(title=kind, xlabel="KS of distances", ylabel="Wasserstein of log spectra")
        fig.colorbar(points, ax=ax, label="alpha gap")
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(kinds) :]:
        ax.set_visible(False)
    fig.suptitle(f"{model_name}: Pareto fronts of the generator's tuning (NSGA-II)")
    return fig


def plot_ccdfs(real: dict[str, np.ndarray], synthetic: dict[str, list[np.ndarray]], model_name: str):
    import matplotlib.pyplot as plt

    use_style()
    columns = min(4, len(real))
    rows = -(-len(real) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.1 * rows), squeeze=False, layout="constrained")
    for ax, kind in zip(axes.flat, real, strict=False):
        for i, matrix in enumerate(synthetic[kind]):
            x = np.sort(upper_distances(matrix))
            x = x[x > 0]
            ax.plot(x, 1 - np.arange(x.size) / max(x.size, 1), color="grey", lw=0.8, alpha=0.6,
                    label="synthetic" if i == 0 else None)  # fmt: skip
        x = np.sort(upper_distances(real[kind]))
        x = x[x > 0]
        ax.plot(x, 1 - np.arange(x.size) / max(x.size, 1), color=TYPE_PALETTE.get(kind, "black"), lw=1.6, label="real")
        ax.set(title=kind, xscale="log", yscale="log", xlabel="cosine distance")
        ax.minorticks_off()
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(real) :]:
        ax.set_visible(False)
    fig.suptitle(f"{model_name}: CCDF of cosine distances, real against synthetic (chosen point)")
    return fig


def plot_heatmaps(real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray], model_name: str):
    """Cosine-distance matrices, real (top row) against one synthetic draw (bottom row), one colour scale per type."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    use_style()
    kinds = list(real)
    fig, axes = plt.subplots(2, len(kinds), figsize=(2.4 * len(kinds), 5.0), squeeze=False, layout="constrained")
    for column, kind in enumerate(kinds):
        pair = [cosine_distances(real[kind]), cosine_distances(synthetic[kind])]
        positive = np.concatenate([d[np.isfinite(d) & (d > 0)] for d in pair])
        norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
        for row, (label, d) in enumerate(zip(("real", "synthetic"), pair, strict=True)):
            ax = axes[row, column]
            image = ax.imshow(np.where(d > 0, d, np.nan), cmap="magma", norm=norm)
            ax.set(title=f"{kind} {label}", xticks=[], yticks=[])
        fig.colorbar(image, ax=axes[:, column], shrink=0.6)
    fig.suptitle(f"{model_name}: cosine distances between layers, real against synthetic")
    return fig


def run_generator(
    model_name: str,
    source: str,
    svd_dir: Path,
    powerlaw_dir: Path,
    params: GeneratorSection,
    lora: LoraParams,
    out_dir: Path,
) -> dict:
    """Stage 05 for one model."""
    real, layers = load_profiles(svd_dir)
    fits = json.loads((powerlaw_dir / "fits.json").read_text())
    n_layers = int(max(int(v.max()) for v in layers.values()) + 1)
    report, fronts, chosen, metrics, synthetic_draws = {}, [], {}, {}, {}
    started = time.perf_counter()
    for index, (kind, S) in enumerate(real.items()):
        alpha, alpha_origin = reference_alpha(fits, kind, params.fallback_alpha)
        start, start_origin = start_params(S, params.nugget, alpha)
        if "fallback" in alpha_origin or "default" in start_origin:
            log.warning("generator %s %s: alpha from %s; start %s", model_name, kind, alpha_origin, start_origin)
        result = tune(S, start, population=params.population, generations=params.generations, draws=params.draws,
                      crowding=params.crowding, seed=params.seed + index, real_alpha=alpha,
                      label=f"{model_name} {kind} ({index + 1}/{len(real)})")  # fmt: skip
        chosen[kind] = result.chosen
        check_seed = params.seed + 1000 + index
        fidelity_start, _ = check_fidelity(S, start, params.check_draws, check_seed, alpha)
        fidelity_chosen, matrices = check_fidelity(S, result.chosen, params.check_draws, check_seed, alpha)
        report[kind] = {"alpha_target": alpha, "alpha_target_from": alpha_origin, "start": start.as_dict(),
                        "start_from": start_origin, "chosen": result.chosen.as_dict(),
                        "front_size": len(result.front_params), "evaluations": result.evaluations,
                        "fidelity_start": fidelity_start, "fidelity_chosen": fidelity_chosen}  # fmt: skip
        for i, (p, f) in enumerate(zip(result.front_params, result.front_objectives, strict=True)):
            fronts.append(
                {"type": kind, **p.as_dict(), **dict(zip(OBJECTIVES, f, strict=True)), "knee": i == result.knee}
            )
        metrics[kind] = {name: round(fidelity_chosen[name]["mean"], 6) for name in OBJECTIVES}
        metrics[kind]["alpha"] = round(result.chosen.alpha, 6)
        synthetic_draws[kind] = matrices[:5]  # the figures show draws the metrics measured
    tune_s = time.perf_counter() - started
    profiles = generated_profiles(chosen, real, layers, n_layers, lora.rank, params.seed)
    fronts = pd.DataFrame(fronts)
    with atomic_directory(out_dir) as scratch:
        _, inits_s = save_inits(source, profiles, lora.inits, lora.seeds, lora.rank, lora.alpha, scratch / "inits")
        np.savez(scratch / "profiles.npz", **profiles)
        fronts.to_csv(scratch / "pareto_front.csv", index=False, float_format="%.6g")
        settings = {"crowding": params.crowding, "population": params.population,
                    "generations": params.generations, "draws": params.draws, "check_draws": params.check_draws,
                    "seed": params.seed}  # fmt: skip
        (scratch / "generator.json").write_text(json.dumps({"settings": settings, "types": report}, indent=1) + "\n")
        (scratch / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        save_figure(plot_fronts(fronts, model_name), scratch / "front.png")
        save_figure(plot_ccdfs(real, synthetic_draws, model_name), scratch / "ccdf.png")
        save_figure(plot_heatmaps(real, {k: v[0] for k, v in synthetic_draws.items()}, model_name),
                    scratch / "heatmaps.png")  # fmt: skip
    write_timings(out_dir, {"tune_s": round(tune_s, 2), "inits_s": round(inits_s, 1)})
    log.info("generator %s: tuned %d types in %.1f s", model_name, len(real), tune_s)
    return {"model": model_name, "tune_s": tune_s, "report": report}

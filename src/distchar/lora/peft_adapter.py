"""Standard PEFT adapter folders for every registered LoRA init, to train in any script.

Stage 05 saves its inits under distchar's own model-independent keys (``distchar.lora.saved``),
which only stages 06-07 read. ``export_adapter`` makes one init the way stage 05 does
(``distchar.lora.inits.apply_init`` on the model ``load_transformers_model`` loads, dequantised
GGUF included) and writes it with PEFT's own ``save_pretrained``: ``adapter_config.json`` and
``adapter_model.safetensors``, which ``PeftModel.from_pretrained(base, folder)`` loads in HF
Trainer, TRL or a plain loop, and ``distchar_init.json``, how it was made (``describe_export``).

What the folder holds depends on the init:

- B A = 0 at step 0 (``default``, ``gaussian``, ``orthogonal``, ``reshaped``): the adapter as
  made, rank r. On the base model it gives the base model's output at step 0 and trains as in
  stage 06.
- Compensated (``distchar.lora.registry.COMPENSATED``: ``pissa``, ``pissa_niter_4``, ``olora``,
  ``reshaped_nonzero``, ``matched_random``): these change the base weights, W -> W - scaling B A,
  which no adapter folder can carry. They are saved as PEFT converts PiSSA and OLoRA
  (``save_pretrained(..., path_initial_model_for_weight_conversion=...)``): a plain LoRA of rank
  2r and alpha 2 lora_alpha (the same scaling), A' = [A; A], B' = [B, -B], for the UNMODIFIED base
  model. Its output at step 0 is the base model's, as the compensated model's is. Its two halves
  get mirrored gradients (the copy of A gets -g_A, the copy of -B gets g_B), so each step moves W
  twice as far as the init's step would, to first order, whatever the optimiser (SGD, Adam): at
  half the learning rate it follows the init's training up to second-order terms (SmolLM2-135M at
  rank 8, ``pissa_niter_4`` and ``reshaped_nonzero``, AdamW at 1e-4 without weight decay, 20
  steps: logits within 0.09 of the compensated model's, which moved by 30; at the full rate, 14
  to 17 apart). Weight decay is the exception: it shrinks the init's A and B but leaves the
  converted product at zero.
- Ours (``distchar.lora.registry.OURS``) take their singular-value shape from the generator's
  profiles (``init_profiles``): given; from a stage 05 folder; or computed here by the
  pipeline's own functions.

Bad input (an unknown init, a rank out of range, a source, generator folder or output folder that
cannot be used) stops with one DistcharError sentence before anything is written; the folder is
written whole or not at all (``distchar.atomic``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from distchar.atomic import atomic_directory
from distchar.config import ExtractParams, GeneratorSection, Params, PowerLawParams, SvdParams
from distchar.devices import resolve_device
from distchar.distances import cosine_distances, upper_triangle
from distchar.errors import DistcharError
from distchar.fits.power_law import fit_power_law
from distchar.generator.gp_pareto import GeneratorParams, estimate, generated_profiles
from distchar.generator.tuning import reference_alpha, start_params, tune
from distchar.lora.inits import Profiles, apply_init
from distchar.lora.registry import COMPENSATED, DETERMINISTIC, INITS, OURS
from distchar.lora.saved import INDEX
from distchar.models.architectures import CANONICAL_TYPES
from distchar.models.loading import load_transformers_model
from distchar.models.projections import ProjectionMatrix, list_projections, load_projection
from distchar.models.sources import ResolvedSource, resolve_source
from distchar.results import STAGE_FOLDERS
from distchar.spectra.model import batch_singular_values, check_k, shape_batches
from distchar.spectra.profiles import FILE as SINGULAR_VALUES
from distchar.spectra.profiles import load_profiles, stack_by_type

log = logging.getLogger(__name__)

PROVENANCE = "distchar_init.json"
"""Beside PEFT's two files: what was made, from what (PEFT ignores it)."""

INITIAL = "initial_adapter"
"""Scratch subfolder (and adapter name) of the init before PEFT's conversion; never left in the output."""


def export_adapter(
    source: str,
    init: str,
    rank: int,
    out: str | Path,
    *,
    lora_alpha: float = 16,
    seed: int = 0,
    generator: str | Path | None = None,
    profiles: Profiles | None = None,
    params: Params | None = None,
) -> Path:
    """Write LoRA init ``init`` of rank ``rank`` on model ``source`` as a PEFT adapter folder ``out``.

    Args:
        source: a model source as under ``models:`` in params.yaml (``bundled:NAME``, a .gguf
            file, a Hugging Face folder, a hub id).
        init: a name in ``distchar.lora.registry.INITS``.
        rank: the LoRA rank r (a compensated init is saved with rank 2r; see the module docstring).
        out: the adapter folder; replaced if it is an adapter folder already, refused if it holds
            anything else.
        lora_alpha: LoRA alpha (scaling alpha / r), as ``lora.alpha`` in params.yaml.
        seed: seeds the inits that draw random numbers (ignored by ``pissa`` and ``olora``).
        generator: a stage 05 folder (``results/05_generator/<model>``) whose generator the
            inits in ``OURS`` use; without it (and without ``profiles``) the generator is tuned here.
        profiles: the generated profiles themselves (``init_profiles``), used as given.
        params: the settings of stages 01-05 used to make profiles (params.yaml's; default: the
            schema's defaults, which are the committed params.yaml's).

    Returns:
        ``out``.
    """
    started = time.perf_counter()
    if init not in INITS:
        raise DistcharError(f"Unknown LoRA init '{init}'; registered: {', '.join(INITS)}.")
    if isinstance(rank, bool) or not isinstance(rank, int | np.integer) or rank < 1:
        raise DistcharError(f"LoRA rank {rank!r} is not a whole number >= 1.")
    if isinstance(lora_alpha, bool) or not isinstance(lora_alpha, int | float) or not lora_alpha > 0:
        raise DistcharError(f"LoRA alpha {lora_alpha!r} is not a number > 0.")
    rank, out = int(rank), Path(out)
    _check_out(out)
    resolved = resolve_source(source)
    _check_rank(resolved, rank)
    origin = None
    if init in OURS and profiles is None:
        profiles, origin = init_profiles(resolved, rank, generator=generator, params=params)
    elif init in OURS:
        origin = "given by the caller"
    model = load_transformers_model(resolved)
    with torch.no_grad():
        peft_model = apply_init(model, init, resolved.architecture, rank=rank, lora_alpha=lora_alpha,
                                profiles=profiles, seed=seed)  # fmt: skip
    config = peft_model.peft_config["default"]
    # the tensors are in the file: PEFT must not redo the init on loading (pissa would change W again)
    config.init_lora_weights = True
    if resolved.architecture.name != "bert":  # load_transformers_model's causal LM: PeftModelForCausalLM on loading
        config.task_type = "CAUSAL_LM"
    converted = init in COMPENSATED
    provenance = {
        "source": source, "init": init, "seed": None if init in DETERMINISTIC else seed, "rank": rank,
        "lora_alpha": lora_alpha, "adapter_rank": 2 * rank if converted else rank,
        "adapter_alpha": 2 * lora_alpha if converted else lora_alpha, "converted": converted,
        "learning_rate_factor": 0.5 if converted else 1.0, "profiles": origin,
    }  # fmt: skip
    with atomic_directory(out) as scratch:
        if converted:
            peft_model.save_pretrained(str(scratch / INITIAL))
            peft_model.save_pretrained(str(scratch), path_initial_model_for_weight_conversion=str(scratch / INITIAL))
            shutil.rmtree(scratch / INITIAL)
        else:
            peft_model.save_pretrained(str(scratch))
        (scratch / PROVENANCE).write_text(json.dumps(provenance, indent=1) + "\n")
    log.info("exported LoRA init %s of %s to %s in %.1f s", init, source, out, time.perf_counter() - started)
    return out


def describe_export(folder: str | Path) -> str:
    """What an exported adapter folder holds, in a sentence or two (what ``distchar init`` prints)."""
    folder = Path(folder)
    p = json.loads((folder / PROVENANCE).read_text())
    seed = "" if p["seed"] is None else f", seed {p['seed']}"
    text = (f"Wrote {folder}: LoRA init '{p['init']}' (rank {p['rank']}, alpha {p['lora_alpha']:g}{seed}) of "
            f"{p['source']} as a PEFT adapter; load it with PeftModel.from_pretrained(base, '{folder}').")  # fmt: skip
    if p["profiles"]:
        text += f" Generated profiles: {p['profiles']}."
    if p["converted"]:
        text += (
            f" '{p['init']}' changes the base weights, so it is saved as PEFT's conversion to a plain LoRA of rank "
            f"{p['adapter_rank']} (alpha {p['adapter_alpha']:g}) on the unmodified base: the same output at step 0; "
            f"train it at half the learning rate to follow '{p['init']}' (its mirrored halves move W twice as fast)."
        )
    return text


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DistcharError(f"Output {out} is a file; give a folder for the adapter.")
    if out.is_dir() and any(out.iterdir()) and not (out / "adapter_config.json").exists():
        raise DistcharError(f"Output folder {out} holds files other than a PEFT adapter; give a new or empty folder.")


def _check_rank(resolved: ResolvedSource, rank: int) -> None:
    """Rank against the smallest projection matrix, from the file headers (before loading anything)."""
    smallest = min(list_projections(resolved), key=lambda m: min(m.shape))
    if rank > min(smallest.shape):
        raise DistcharError(
            f"LoRA rank {rank} exceeds the smaller side of {resolved.source}'s {smallest.type} projection "
            f"{smallest.shape} (layer {smallest.layer}); use at most {min(smallest.shape)}."
        )


def _sections(params: Params | None) -> tuple[ExtractParams, SvdParams, PowerLawParams, GeneratorSection]:
    if params is None:
        return ExtractParams(), SvdParams(), PowerLawParams(), GeneratorSection()
    return params.extract, params.svd, params.powerlaw, params.generator


def init_profiles(
    resolved: ResolvedSource, rank: int, *, generator: str | Path | None = None, params: Params | None = None
) -> tuple[Profiles, str]:
    """The generated profiles stage 05 would give the inits in ``OURS`` at ``rank``, and where they came from.

    With ``generator`` (a stage 05 folder): its ``profiles.npz`` where the pipeline left one made
    for this rank; else its ``generator.json`` (the tuned generator, committed) on the model's
    singular values (stage 02's ``singular_values.npz`` beside it, or computed: about 6 s on
    SmolLM2-135M on 2 cores), checked against the start points generator.json recorded, so that
    the folder of another model is refused. Without it: stages 02-05's functions for the profiles
    alone (singular values, distances, power-law fits, NSGA-II tuning; about 16 s on SmolLM2-135M
    on 2 cores), which give the committed generator.json's chosen points exactly.
    """
    extract, svd, _, _ = _sections(params)
    if svd.k != "all" and rank > svd.k:
        raise DistcharError(
            f"LoRA rank {rank} exceeds svd.k = {svd.k}: the generated inits take their first r values of stage 02's "
            "top k; lower the rank or raise svd.k in params.yaml."
        )
    if generator is not None:
        return _stage_profiles(Path(generator), resolved, rank, params)
    started = time.perf_counter()
    real, layers = model_singular_values(resolved, svd, tuple(extract.types))
    profiles = _tuned_profiles(real, layers, rank, params)
    log.info("tuned the generator on %s in %.1f s", resolved.source, time.perf_counter() - started)
    return profiles, f"tuned here on {resolved.source} (stages 02-05's functions)"


def _stage_profiles(folder: Path, resolved: ResolvedSource, rank: int, params: Params | None) -> tuple[Profiles, str]:
    """Profiles from a stage 05 folder, checked to be this model's at every step (see ``init_profiles``)."""
    report_file = folder / "generator.json"
    if not report_file.is_file():
        raise DistcharError(f"Generator folder {folder} has no generator.json; give results/05_generator/<model>.")
    report = json.loads(report_file.read_text())
    extract, svd, _, _ = _sections(params)
    matrices = list_projections(resolved, tuple(extract.types))
    types = [kind for kind in CANONICAL_TYPES if kind in {m.type for m in matrices}]
    if list(report["types"]) != types:
        raise DistcharError(
            f"{report_file} was tuned on the types {', '.join(report['types'])}, but {resolved.source} has "
            f"{', '.join(types)}; give the generator folder of this model."
        )
    stage_values = folder.parent.parent / STAGE_FOLDERS["svd"] / folder.name / SINGULAR_VALUES
    if stage_values.is_file():
        real, layers = load_profiles(stage_values.parent)
        _check_values(real, layers, stage_values, matrices, svd, resolved.source)
        values_from = str(stage_values)
    else:
        (real, layers), values_from = model_singular_values(resolved, svd, tuple(extract.types)), "computed here"
    _check_same_model(report, real, report_file, resolved)
    n_layers = int(max(int(v.max()) for v in layers.values()) + 1)
    saved, index = folder / "profiles.npz", folder / "inits" / INDEX
    if saved.is_file() and index.is_file() and json.loads(index.read_text()).get("rank") == rank:
        with np.load(saved) as data:  # the very values stage 05 made its inits from
            profiles = {kind: data[kind] for kind in data.files}
        if {len(p) for p in profiles.values()} != {n_layers}:
            raise DistcharError(f"{saved} does not hold one profile per layer of {resolved.source}; rerun stage 05.")
        return profiles, str(saved)
    chosen = {kind: GeneratorParams(**report["types"][kind]["chosen"]) for kind in real}  # stage 05's order
    profiles = generated_profiles(chosen, real, layers, n_layers, rank, report["settings"]["seed"])
    return profiles, f"{report_file} on singular values {values_from}"


def _check_values(
    real: dict[str, np.ndarray], layers: dict[str, np.ndarray], file: Path, matrices: list[ProjectionMatrix],
    svd: SvdParams, source: str,
) -> None:  # fmt: skip
    """Stage 02's values of the first matrix of each type against the model's own: one small SVD per type
    (1% leaves room for the randomized method's error, far below the difference between two models)."""
    first: dict[str, ProjectionMatrix] = {}
    for m in matrices:
        first.setdefault(m.type, m)
    for kind, m in first.items():
        row = np.flatnonzero(layers.get(kind, np.array([])) == m.layer)
        if kind in real and row.size:
            stored = real[kind][row[0]]
            here, _ = _top_values([m], stored.size, svd)
            if not np.allclose(here[(m.layer, kind)][: stored.size], stored, rtol=1e-2, atol=0):
                raise DistcharError(
                    f"{file} holds the singular values of another model than {source} ({kind}, layer {m.layer}); "
                    "give the generator folder of this model."
                )


def _check_same_model(report: dict, real: dict[str, np.ndarray], file: Path, resolved: ResolvedSource) -> None:
    """generator.json records the start ``estimate(S)`` gave on the pipeline's S; S of another model
    (or another svd.k) gives another start."""
    if list(report["types"]) != list(real):  # a type whose every matrix has NaN or Inf entries
        raise DistcharError(f"{file} was tuned on the types {', '.join(report['types'])}, not {', '.join(real)}.")
    for kind, entry in report["types"].items():
        if entry.get("start_from") != "estimated from S":
            continue
        here = estimate(real[kind], nugget=entry["start"]["nugget"])
        there = entry["start"]
        if not np.allclose([here.xmin, here.alpha], [there["xmin"], there["alpha"]], rtol=1e-6, atol=0):
            raise DistcharError(
                f"{file} was not made from the singular values of {resolved.source} (type {kind}: xmin "
                f"{there['xmin']:.6g} there, {here.xmin:.6g} here); give the generator folder of this model, "
                "with the svd settings it was made with."
            )


def model_singular_values(
    resolved: ResolvedSource, svd: SvdParams, types: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Stage 02's S_t and layer indices (``singular_values.npz``), without its per-matrix summaries.

    The same reading, batching, method choice and seeding as ``distchar.spectra.model``; the
    summaries' ESD fits (every eigenvalue of every matrix, about 2.5 min on SmolLM2-135M on 2
    cores) are what the profiles do not need. Matrices with NaN or Inf entries are left out, as
    stages 01-02 leave them out.
    """
    matrices = list_projections(resolved, types)
    k = None if svd.k == "all" else svd.k
    check_k(k, matrices)
    values, finite = _top_values(matrices, k, svd)
    if not all(finite.values()):  # rare: recompute without them, so that the randomized draws match stage 02's
        matrices = [m for m in matrices if finite[(m.layer, m.type)]]
        if not matrices:
            raise DistcharError(f"Every projection matrix of {resolved.source} has NaN or Inf entries.")
        values, _ = _top_values(matrices, k, svd)
    arrays = stack_by_type(values)
    real = {kind: s for kind, s in arrays.items() if not kind.endswith("_layers")}
    return real, {kind: arrays[f"{kind}_layers"] for kind in real}


def _top_values(
    matrices: list[ProjectionMatrix], k: int | None, svd: SvdParams
) -> tuple[dict[tuple[int, str], np.ndarray], dict[tuple[int, str], bool]]:
    device = resolve_device(svd.device, "svd.device")
    generator = torch.Generator().manual_seed(svd.seed)
    values, finite = {}, {}
    for batch in shape_batches(matrices, svd):
        stacked = torch.empty((len(batch), *batch[0].shape), dtype=torch.float32, device=device)
        for i, m in enumerate(batch):
            stacked[i] = load_projection(m)
        ok = torch.isfinite(stacked).flatten(1).all(1).tolist()
        stacked[~torch.tensor(ok, device=device)] = 0.0  # their values are dropped; zeros keep LAPACK going
        full, _ = batch_singular_values(stacked, k, svd, generator)
        for m, s, good in zip(batch, full.cpu().numpy(), ok, strict=True):
            values[(m.layer, m.type)] = s if k is None else s[:k]
            finite[(m.layer, m.type)] = good
    return values, finite


def _as_stored(x: np.ndarray) -> np.ndarray:
    """Values as stage 04 reads them: stage 03 writes its distances with 8 significant digits."""
    return np.array([float(f"{v:.8g}") for v in x], dtype=np.float64)


def _tuned_profiles(
    real: dict[str, np.ndarray], layers: dict[str, np.ndarray], rank: int, params: Params | None
) -> Profiles:
    """Stages 03-05 for the profiles alone: distances, stage 04's power-law fits (only the fit is
    read by stage 05: no bootstrap, no rivals), then per type stage 05's alpha target, start,
    NSGA-II tuning and ``generated_profiles``."""
    _, _, powerlaw, settings = _sections(params)
    distances = {kind: _as_stored(upper_triangle(cosine_distances(s))) for kind, s in real.items()}
    groups = {**distances, "pooled": np.concatenate(list(distances.values()))}
    fits = {group: {"fit": fit_power_law(x, min_tail=powerlaw.min_tail).to_dict()} for group, x in groups.items()}
    chosen = {}
    for index, (kind, S) in enumerate(real.items()):
        alpha, _ = reference_alpha(fits, kind, settings.fallback_alpha)
        start, _ = start_params(S, settings.nugget, alpha)
        result = tune(S, start, population=settings.population, generations=settings.generations,
                      draws=settings.draws, crowding=settings.crowding, seed=settings.seed + index,
                      real_alpha=alpha)  # fmt: skip
        chosen[kind] = result.chosen
    n_layers = int(max(int(v.max()) for v in layers.values()) + 1)
    return generated_profiles(chosen, real, layers, n_layers, rank, settings.seed)

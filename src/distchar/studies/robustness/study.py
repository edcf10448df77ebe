"""Study 09: train every architecture x loss x seed on the digits, attack each model, tabulate.

``run_all`` returns two per-image tables: ``clean`` (every test image: correct or not) and
``attacked`` (the attacked subset: robust or not under each attack, CW's L2 distance, the
non-target spreads of the clean input). From them:

- ``accuracy_table``: per architecture, loss and measure the mean over seeds with its Student-t
  interval (``seed_interval``); measures are ``clean``, ``fgsm@eps``, ``pgd@eps``, ``cw``,
  ``square``, ``autoattack`` (accuracies) and ``cw_l2`` (median L2 of CW's successful images);
- ``compare_to_ce``: every loss against ce on clean, PGD and AutoAttack accuracy at ``epsilon``,
  paired by seed (``paired_comparison``: the sign-flip test over seeds), Holm over the losses of
  one architecture and measure; verdict ``helps`` / ``hurts`` / ``inconclusive``, or
  ``underpowered (n seeds)`` when Holm over those losses cannot reach significance with n seeds;
  ``detectable``: the smallest true difference the seeds find with 80% power (``detectable_effect``);
- ``masking_check``: per model type, Square's and AutoAttack's accuracy against PGD's, paired;
  ``square_beats_pgd`` flags a gradient-masking suspect;
- ``spread_table``: per model type and spread, Spearman's rho with PGD's success at ``epsilon``
  within each seed, summarised over seeds.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import torch

from distchar.progress import each
from distchar.statistics import attainable, detectable_effect, holm, paired_comparison, seed_interval
from distchar.studies.robustness.attacks import attacked_images, l2_distance, make_attack, robust
from distchar.studies.robustness.spread import correlation, non_target_spreads
from distchar.studies.robustness.testbed import digits_split, loss_specs, predict, train_classifier

log = logging.getLogger(__name__)

SPREADS = ("spread", "shape_spread")


def attack_columns(epsilons) -> list[str]:
    """The robust-accuracy columns of the attacked table, in report order."""
    return [*(f"fgsm@{e:g}" for e in epsilons), *(f"pgd@{e:g}" for e in epsilons), "cw", "square", "autoattack"]


def run_one(job) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Train one model and attack it: (clean rows, attacked rows, timings)."""
    architecture, loss, seed, settings, threads = job
    if threads:
        torch.set_num_threads(threads)
    split = digits_split(settings.test_fraction, settings.attack_examples)
    model, train_seconds = train_classifier(architecture, loss, seed, split, settings.epochs, settings.batch_size,
                                            settings.learning_rate)  # fmt: skip
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    keys = {"architecture": architecture, "loss": loss.label, "seed": seed}
    logits = predict(model, split.x_test)
    clean = pd.DataFrame({**keys, "image": np.arange(len(split.y_test)),
                          "correct": (logits.argmax(dim=1) == split.y_test).numpy()})  # fmt: skip
    x, y = split.x_test[split.attacked], split.y_test[split.attacked]
    rows: dict = {**keys, "image": split.attacked, "label": y.numpy(),
                  "clean": clean["correct"].to_numpy()[split.attacked]}  # fmt: skip
    rows.update(non_target_spreads(logits[split.attacked], y))
    start = time.perf_counter()
    options = {"pgd_steps": settings.pgd_steps, "cw_c": settings.cw_c, "cw_steps": settings.cw_steps,
               "square_queries": settings.square_queries, "seed": seed}  # fmt: skip
    for name in ("fgsm", "pgd"):
        for epsilon in settings.epsilons:
            adversarial = attacked_images(make_attack(name, model, epsilon, **options), x, y, seed)
            rows[f"{name}@{epsilon:g}"] = robust(model, x, adversarial, y)
    for name in ("cw", "square", "autoattack"):
        adversarial = attacked_images(make_attack(name, model, settings.epsilon, **options), x, y, seed)
        rows[name] = robust(model, x, adversarial, y)
        if name == "cw":
            fooled = rows["clean"] & ~rows["cw"]
            rows["cw_l2"] = np.where(fooled, l2_distance(x, adversarial), np.nan)
    timings = {**keys, "train_seconds": train_seconds, "attack_seconds": time.perf_counter() - start}
    return clean, pd.DataFrame(rows), timings


def run_all(settings) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every architecture x loss x seed of ``settings`` (RobustnessParams): (clean, attacked, timings)."""
    specs = loss_specs(settings.losses, settings.dsl_b, settings.label_smoothing, settings.dsl_reduction)
    threads = 1 if settings.jobs > 1 else 0
    work = [(a, spec, seed, settings, threads) for a in settings.architectures for spec in specs
            for seed in range(settings.seeds)]  # fmt: skip
    if settings.jobs > 1:
        with ProcessPoolExecutor(max_workers=settings.jobs) as pool:
            done = list(each(pool.map(run_one, work), desc="train + attack", unit="model", total=len(work)))
    else:
        done = [run_one(job) for job in each(work, desc="train + attack", unit="model")]
    clean = pd.concat([c for c, _, _ in done], ignore_index=True)
    attacked = pd.concat([a for _, a, _ in done], ignore_index=True)
    timings = pd.DataFrame([t for _, _, t in done])
    log.info("%d models: %.1f s training, %.1f s attacks (medians)", len(work), timings["train_seconds"].median(),
             timings["attack_seconds"].median())  # fmt: skip
    return clean, attacked, timings


def loss_order(settings) -> list[str]:
    return [spec.label for spec in loss_specs(settings.losses, settings.dsl_b, settings.label_smoothing,
                                              settings.dsl_reduction)]  # fmt: skip


def _per_seed(clean: pd.DataFrame, attacked: pd.DataFrame, settings) -> pd.DataFrame:
    """One row per model (architecture, loss, seed) and one column per measure."""
    keys = ["architecture", "loss", "seed"]
    per_seed = clean.groupby(keys, sort=False)["correct"].mean().rename("clean").to_frame()
    per_seed = per_seed.join(attacked.groupby(keys, sort=False)[attack_columns(settings.epsilons)].mean())
    return per_seed.join(attacked.groupby(keys, sort=False)["cw_l2"].median()).reset_index()


def accuracy_table(clean: pd.DataFrame, attacked: pd.DataFrame, settings) -> pd.DataFrame:
    """Per architecture, loss and measure: the mean over seeds, its interval, the seeds."""
    per_seed = _per_seed(clean, attacked, settings)
    rows = []
    for (architecture, loss), group in per_seed.groupby(["architecture", "loss"], sort=False):
        for measure in ["clean", *attack_columns(settings.epsilons), "cw_l2"]:
            mean, low, high = seed_interval(group[measure].dropna(), settings.confidence)
            rows.append({"architecture": architecture, "loss": loss, "measure": measure, "mean": mean, "low": low,
                         "high": high, "seeds": int(group[measure].notna().sum())})  # fmt: skip
    return pd.DataFrame(rows)


def _paired(table: pd.DataFrame, column: str, a: str, b: str, index: str = "image", by: str = "loss") -> tuple:
    """(seeds, images) arrays of ``column`` for ``a`` and ``b`` (rows of ``table`` chosen by ``by``)."""
    wide = {name: table[table[by] == name].pivot(index="seed", columns=index, values=column) for name in (a, b)}
    return wide[a].to_numpy(dtype=float), wide[b].to_numpy(dtype=float)


def compare_to_ce(clean: pd.DataFrame, attacked: pd.DataFrame, settings) -> pd.DataFrame:
    """Every loss against ce per architecture on clean, PGD and AutoAttack accuracy at ``epsilon``."""
    measures = {"clean": (clean, "correct"), f"pgd@{settings.epsilon:g}": (attacked, f"pgd@{settings.epsilon:g}"),
                "autoattack": (attacked, "autoattack")}  # fmt: skip
    rows = []
    for architecture in settings.architectures:
        for measure, (table, column) in measures.items():
            part = table[table["architecture"] == architecture]
            block = []
            for loss in [name for name in loss_order(settings) if name != "ce"]:
                a, b = _paired(part, column, loss, "ce")
                result = paired_comparison(a, b, confidence=settings.confidence)
                block.append({"architecture": architecture, "measure": measure, "loss": loss,
                              "accuracy": float(a.mean()), "accuracy_ce": float(b.mean()),
                              **result.as_dict()})  # fmt: skip
            adjusted = holm([row["p"] for row in block])
            for row, p in zip(block, adjusted, strict=True):
                row["p_holm"] = float(p)
                level = (1 - settings.confidence) / len(block)  # Holm's first step
                row["detectable"] = detectable_effect(row["seed_sd"], row["seeds"], level)
                if not attainable(row["p_min"], len(block), settings.confidence):
                    row["verdict"] = f"underpowered ({row['seeds']} seeds)"
                elif p < 1 - settings.confidence:
                    row["verdict"] = "helps" if row["difference"] > 0 else "hurts"
                else:
                    row["verdict"] = "inconclusive"
            rows += block
    return pd.DataFrame(rows)


def masking_check(attacked: pd.DataFrame, settings) -> pd.DataFrame:
    """Per model type: PGD, Square and AutoAttack accuracy at ``epsilon``; Square minus PGD paired
    over seeds and images. ``square_beats_pgd``: Square's accuracy is lower than PGD's (a black-box
    attack doing better than the white-box one: a sign of gradient masking); ``significant``: and
    its sign-flip p over seeds is below 1 - confidence (never with fewer than 6 seeds)."""
    pgd = f"pgd@{settings.epsilon:g}"
    rows = []
    for (architecture, loss), part in attacked.groupby(["architecture", "loss"], sort=False):
        wide = {c: part.pivot(index="seed", columns="image", values=c).to_numpy(dtype=float)
                for c in (pgd, "square", "autoattack")}  # fmt: skip
        result = paired_comparison(wide[pgd], wide["square"], confidence=settings.confidence)
        rows.append({"architecture": architecture, "loss": loss, "pgd": wide[pgd].mean(),
                     "square": wide["square"].mean(), "autoattack": wide["autoattack"].mean(),
                     "square_minus_pgd": -result.difference, "low": -result.high, "high": -result.low,
                     "p": result.p, "seeds": result.seeds, "square_beats_pgd": bool(result.difference > 0),
                     "significant": bool(result.difference > 0 and result.p < 1 - settings.confidence)})  # fmt: skip
    return pd.DataFrame(rows)


def spread_table(attacked: pd.DataFrame, settings) -> pd.DataFrame:
    """Per model type and spread: Spearman's rho with PGD's success at ``epsilon`` over the clean,
    correctly classified attacked images, within each seed and then over seeds."""
    pgd = f"pgd@{settings.epsilon:g}"
    rows = []
    for (architecture, loss), part in attacked.groupby(["architecture", "loss"], sort=False):
        correct = part[part["clean"]]
        success = ~correct[pgd].astype(bool)
        for spread in SPREADS:
            result = correlation(correct[spread], success, correct["seed"], confidence=settings.confidence)
            rows.append({"architecture": architecture, "loss": loss, "spread": spread, **result.as_dict()})
    return pd.DataFrame(rows)

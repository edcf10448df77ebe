"""Benchmark: the KS scan of ``fit_power_law`` before and after the empirical CDF with ties, and ``powerlaw``.

- ``before``: the scan as it was (``_scan_before`` below, copied unchanged from
  ``distchar.fits.power_law`` before the change): every copy of a repeated value its own step of
  the empirical CDF, every point of the tail compared. ``after``: the scan now in the package
  (``fit_power_law``): one step per distinct value, the tail's distinct values compared. Both at
  min_tail 10 with the 512-candidate cap, as stage 04 fits (the candidates are the same).
- ``after_full``: ``fit_power_law(max_candidates=None)``, every candidate (the per-matrix ESD
  fit); ``powerlaw``: ``powerlaw.Fit`` 2.0.0 set up to scan the same candidates (its xmin range cut
  at our min_tail, its alpha range widened to (1, inf)), whose xmin, alpha and D ``after_full``
  must equal (``same_as_powerlaw``); ``before_same_as_after``: whether the old scan chose the
  same xmin and alpha from the same candidates (it must without ties).
- Data: the cosine distances stage 04 fits on SmolLM2-135M-Instruct (k = 64 singular values of
  every matrix, exact): one type (q: 30 layers, 435 distances) and all seven pooled (3,045); a
  log-normal sample of 4,000 (no ties); 4,000 Pareto draws (alpha 2.5) rounded to 2 decimals;
  the Moby Dick word frequencies shipped with ``powerlaw`` (18,855 counts, 272 distinct); and the
  576 eigenvalues of SmolLM2's layer 8 q, where the ESD fit went from the capped scan (``before``)
  to the full one (``after_full``).
- Times: seconds per fit, median of ``--rounds`` calls of each, interleaved (before, after,
  after_full in turn); ``powerlaw`` once (it takes seconds). ``after / before`` below 1 is faster.

Results: benchmarks/results/ks_scan.json. Run: python benchmarks/ks_scan.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from common import write_results

from distchar.distances import cosine_distances, upper_triangle
from distchar.fits.power_law import PowerLawFit, fit_power_law, sample_power_law, xmin_candidates
from distchar.models.projections import iter_projection_matrices
from distchar.models.sources import resolve_source
from distchar.spectra.singular_values import exact_singular_values

SOURCE = "bundled:smollm2-135m-instruct"
MIN_TAIL = 10
_CHUNK = 256  # the package's chunk of candidates when the old scan was copied


def _scan_before(x: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BEFORE (copied unchanged from the package before the change): alpha and D for each
    candidate start index into the ascending array x."""
    n = x.size
    logs = np.log(x)
    suffix = np.cumsum(logs[::-1])[::-1]  # sum of logs from index i to the end
    n_tail = n - candidates
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 + n_tail / (suffix[candidates] - n_tail * logs[candidates])
    distance = np.full(candidates.size, np.inf)
    for start in range(0, candidates.size, _CHUNK):
        idx = candidates[start : start + _CHUNK]
        first = idx[0]  # candidates ascend: no tail in this chunk starts before it
        a = alpha[start : start + _CHUNK, None]
        offset = np.arange(first, n)[None, :] - idx[:, None]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            fitted = 1.0 - np.exp((1.0 - a) * (logs[None, first:] - logs[idx][:, None]))
            empirical = offset / n_tail[start : start + _CHUNK, None]
            gap = np.where(offset >= 0, np.abs(empirical - fitted), 0.0)
        distance[start : start + _CHUNK] = gap.max(axis=1)
    bad = ~np.isfinite(alpha) | (alpha <= 1.0)
    distance[bad] = np.inf
    return alpha, distance


def fit_before(values: np.ndarray) -> PowerLawFit:
    """BEFORE: ``fit_power_law(values)`` as it was (same candidates, the old scan)."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    x = x[np.isfinite(x) & (x > 0)]
    starts = xmin_candidates(x, MIN_TAIL)
    alpha, distance = _scan_before(x, starts)
    best = int(np.argmin(distance))
    n_tail = int(x.size - starts[best])
    a = float(alpha[best])
    return PowerLawFit(a, float(x[starts[best]]), (a - 1.0) / np.sqrt(n_tail), n_tail, x.size, float(distance[best]))


def powerlaw_fit(values: np.ndarray):
    """``powerlaw.Fit`` scanning our uncapped candidates (see tests/helpers.py ``powerlaw_fit``)."""
    import powerlaw

    x = np.sort(values[values > 0])
    above = np.unique(x[x > x[x.size - MIN_TAIL]])
    hi = above[1] if above.size >= 2 else np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return powerlaw.Fit(x, xmin=(x[0], hi), parameter_ranges={"alpha": [1, None]}, verbose=False)


def datasets() -> dict[str, np.ndarray]:
    import powerlaw

    values: dict[str, list[np.ndarray]] = {}
    eigenvalues = None
    for m, w in iter_projection_matrices(resolve_source(SOURCE)):
        s = exact_singular_values(w[None])[0].numpy()
        values.setdefault(m.type, []).append(s[:64])
        if (m.layer, m.type) == (8, "q"):
            eigenvalues = s**2
    per_type = {t: upper_triangle(cosine_distances(np.stack(rows))) for t, rows in values.items()}
    rng = np.random.default_rng(0)
    return {
        "q distances (435)": per_type["q"],
        "pooled distances (3045)": np.concatenate(list(per_type.values())),
        "lognormal (4000, no ties)": rng.lognormal(0.0, 1.0, 4000),
        "Pareto rounded to 2 decimals (4000)": np.round(sample_power_law(2.5, 1.0, 4000, rng), 2),
        "Moby Dick word counts (18855)": powerlaw.load_test_dataset("words"),
        "ESD of layer 8 q (576 eigenvalues)": eigenvalues,
    }


def measure(x: np.ndarray, rounds: int) -> dict:
    calls = {
        "before": lambda: fit_before(x),
        "after": lambda: fit_power_law(x, min_tail=MIN_TAIL),
        "after_full": lambda: fit_power_law(x, min_tail=MIN_TAIL, max_candidates=None),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    fits = {}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            fits[name] = call()
            times[name].append(time.perf_counter() - started)
    started = time.perf_counter()
    reference = powerlaw_fit(x)  # once: it takes seconds
    powerlaw_s = time.perf_counter() - started
    median = {name: statistics.median(t) for name, t in times.items()}
    full, before = fits["after_full"], fits["before"]
    return {
        "n": int(x.size),
        "distinct": int(np.unique(x).size),
        "candidates_scored": int(xmin_candidates(np.sort(x), MIN_TAIL).size),
        "candidates_all": int(xmin_candidates(np.sort(x), MIN_TAIL, None).size),
        "ms": {name: round(1e3 * t, 3) for name, t in median.items()},
        "powerlaw_s": round(powerlaw_s, 3),
        "after_over_before": round(median["after"] / median["before"], 3),
        "powerlaw_over_after_full": round(powerlaw_s / median["after_full"], 1),
        "same_as_powerlaw": bool(
            full.xmin == reference.xmin
            and np.isclose(full.alpha, reference.alpha, rtol=1e-10)
            and np.isclose(full.D, reference.D, rtol=1e-10)
        ),
        "before_same_as_after": bool(
            before.xmin == fits["after"].xmin and np.isclose(before.alpha, fits["after"].alpha)
        ),
        "xmin": {name: fit.xmin for name, fit in fits.items()} | {"powerlaw": float(reference.xmin)},
        "alpha": {name: round(fit.alpha, 6) for name, fit in fits.items()} | {"powerlaw": round(reference.alpha, 6)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    results = {}
    for name, x in datasets().items():
        results[name] = measure(x, args.rounds)
        r = results[name]
        print(
            f"{name}: ms {r['ms']}, after / before {r['after_over_before']}, powerlaw {r['powerlaw_s']} s; "
            f"after_full = powerlaw: {r['same_as_powerlaw']}; before = after: {r['before_same_as_after']}"
        )
    write_results("ks_scan", {"rounds": args.rounds, "min_tail": MIN_TAIL, "datasets": results})


if __name__ == "__main__":
    main()

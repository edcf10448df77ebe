"""The distributions of What Are the Odds? (Paruchuri et al., EMNLP 2024): idealized and real-world.

Idealized: 12 families at the paper's fixed parameters; the multinomial is asked per outcome, so
there are 14 groups. Each group's reference sample is 100,000 draws rounded to 3 decimals (the
paper's recipe); every ground truth is computed from it. Our random streams: numpy's PCG64 seeded
with ``(seed, crc32 of the distribution's key)``, so a group's sample does not depend on which
other groups are drawn (the paper's generator used one global numpy seed, 1337, which we keep as
the default seed; its exact draws are not reproduced, its recipe is).

Family shots draw other members of a family with parameters from the paper's ranges
(``random_parameters``). Real-world: 12 variables in three domains with ground-truth quantiles,
central ranges, fitted families and the statistics shown to models, from the paper's public
generator (see resources/ATTRIBUTION.md).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import stats

from distchar.errors import DistcharError

REFERENCE_SIZE = 100_000
DEFAULT_SEED = 1337
PERCENTILE_TARGETS = (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99)
"""Queried percentiles (the values at these percentiles of the reference sample are asked about)."""
PROBABILITY_MASSES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Central ranges queried for the probability task, clipped to [P1, P99]."""

CANONICAL = {
    "normal": {"mean": 100, "sd": 10},
    "log_normal": {"mu": 4.0, "sigma": 0.5},
    "exponential": {"rate": 0.01},
    "power_law": {"alpha": 1.8, "xmin": 100},
    "uniform": {"low": 70, "high": 130},
    "gamma": {"shape": 2, "scale": 20},
    "skew_normal": {"loc": 100, "scale": 10, "skew": -10},
    "gumbel": {"loc": 1000, "scale": 1000},
    "poisson": {"rate": 70},
    "geometric": {"p": 0.05},
    "binomial": {"n": 1000, "p": 0.5},
    "multinomial": {"n": 1000, "probs": [0.2, 0.3, 0.5]},
}
"""The 12 idealized families at the paper's parameters."""

FAMILIES = tuple(CANONICAL)
DISCRETE = frozenset({"poisson", "geometric", "binomial", "multinomial"})


def _fmt(x: float) -> str:
    return f"{x:g}" if abs(x) < 1e6 else f"{x:.6g}"


@dataclass(frozen=True)
class Distribution:
    """One distribution: a family, its parameters, and for the multinomial the outcome asked about."""

    family: str
    params: dict = field(hash=False)
    outcome: int | None = None

    def __post_init__(self):
        if self.family not in CANONICAL:
            raise DistcharError(f"Unknown distribution family '{self.family}'; known: {', '.join(FAMILIES)}.")

    @property
    def key(self) -> str:
        """A stable text key (family, sorted parameters); the outcome is not part of it, so the three
        outcomes of one multinomial share one draw."""
        return f"{self.family}:{json.dumps(self.params, sort_keys=True)}"

    @property
    def group(self) -> str:
        """The group name used in reports: the family, and the outcome for the multinomial."""
        return self.family if self.outcome is None else f"{self.family}_{self.outcome + 1}"

    def describe(self) -> str:
        """The family and parameters in words, as the prompt states them."""
        p = self.params
        text = {
            "normal": lambda: (
                f"a normal distribution with mean {_fmt(p['mean'])} and standard deviation {_fmt(p['sd'])}"
            ),
            "log_normal": lambda: (
                f"a log-normal distribution whose logarithm has mean {_fmt(p['mu'])} and standard deviation "
                f"{_fmt(p['sigma'])}"
            ),
            "exponential": lambda: f"an exponential distribution with rate {_fmt(p['rate'])}",
            "power_law": lambda: (
                f"a power-law distribution with exponent {_fmt(p['alpha'])} and minimum value {_fmt(p['xmin'])}"
            ),
            "uniform": lambda: f"a uniform distribution between {_fmt(p['low'])} and {_fmt(p['high'])}",
            "gamma": lambda: f"a gamma distribution with shape {_fmt(p['shape'])} and scale {_fmt(p['scale'])}",
            "skew_normal": lambda: (
                f"a skew-normal distribution with location {_fmt(p['loc'])}, scale {_fmt(p['scale'])} and skewness "
                f"parameter {_fmt(p['skew'])}"
            ),
            "gumbel": lambda: f"a Gumbel distribution with location {_fmt(p['loc'])} and scale {_fmt(p['scale'])}",
            "poisson": lambda: f"a Poisson distribution with rate {_fmt(p['rate'])}",
            "geometric": lambda: (
                f"a geometric distribution (number of trials up to and including the first success) with success "
                f"probability {_fmt(p['p'])}"
            ),
            "binomial": lambda: f"a binomial distribution with {p['n']} trials and success probability {_fmt(p['p'])}",
            "multinomial": lambda: (
                f"the count of outcome {self.outcome + 1} in a multinomial distribution with {p['n']} trials and "
                f"outcome probabilities {', '.join(_fmt(x) for x in p['probs'])}"
            ),
        }[self.family]()
        return text

    def scipy(self):
        """The exact distribution as a frozen scipy.stats object (the multinomial: its outcome's binomial)."""
        p = self.params
        return {
            "normal": lambda: stats.norm(p["mean"], p["sd"]),
            "log_normal": lambda: stats.lognorm(s=p["sigma"], scale=np.exp(p["mu"])),
            "exponential": lambda: stats.expon(scale=1 / p["rate"]),
            "power_law": lambda: stats.pareto(b=p["alpha"] - 1, scale=p["xmin"] - 0.5),
            "uniform": lambda: stats.uniform(p["low"], p["high"] - p["low"]),
            "gamma": lambda: stats.gamma(p["shape"], scale=p["scale"]),
            "skew_normal": lambda: stats.skewnorm(p["skew"], p["loc"], p["scale"]),
            "gumbel": lambda: stats.gumbel_r(p["loc"], p["scale"]),
            "poisson": lambda: stats.poisson(p["rate"]),
            "geometric": lambda: stats.geom(p["p"]),
            "binomial": lambda: stats.binom(p["n"], p["p"]),
            "multinomial": lambda: stats.binom(p["n"], p["probs"][self.outcome]),
        }[self.family]()

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws, rounded to 3 decimals as the paper does."""
        p = self.params
        if self.family == "power_law":
            u = rng.random(n)
            x = (p["xmin"] - 0.5) * (1 - u) ** (-1 / (p["alpha"] - 1))
        elif self.family == "multinomial":
            x = rng.multinomial(p["n"], p["probs"], size=n)[:, self.outcome]
        elif self.family == "skew_normal":
            x = stats.skewnorm(p["skew"], p["loc"], p["scale"]).rvs(n, random_state=rng)
        else:
            x = {
                "normal": lambda: rng.normal(p["mean"], p["sd"], n),
                "log_normal": lambda: rng.lognormal(p["mu"], p["sigma"], n),
                "exponential": lambda: rng.exponential(1 / p["rate"], n),
                "uniform": lambda: rng.uniform(p["low"], p["high"], n),
                "gamma": lambda: rng.gamma(p["shape"], p["scale"], n),
                "gumbel": lambda: rng.gumbel(p["loc"], p["scale"], n),
                "poisson": lambda: rng.poisson(p["rate"], n),
                "geometric": lambda: rng.geometric(p["p"], n),
                "binomial": lambda: rng.binomial(p["n"], p["p"], n),
            }[self.family]()
        return np.round(np.asarray(x, dtype=np.float64), 3)

    def reference(self, seed: int = DEFAULT_SEED, size: int = REFERENCE_SIZE) -> Reference:
        """The reference sample of this distribution (deterministic in seed and key)."""
        rng = np.random.default_rng([seed, zlib.crc32(self.key.encode())])
        return Reference(np.sort(self.draw(size, rng)))


def idealized_groups() -> list[Distribution]:
    """The 14 groups of the idealized set, in the paper's order."""
    groups = []
    for family, params in CANONICAL.items():
        if family == "multinomial":
            groups += [Distribution(family, params, outcome=i) for i in range(len(params["probs"]))]
        else:
            groups.append(Distribution(family, params))
    return groups


def random_parameters(family: str, rng: np.random.Generator) -> dict:
    """A random member of ``family`` from the paper's family-shot ranges."""
    u = rng.uniform
    params = {
        "normal": lambda: {"mean": round(u(80, 120), 1), "sd": round(u(5, 20), 1)},
        "log_normal": lambda: {"mu": round(u(3, 10), 2), "sigma": round(u(0.3, 1.5), 2)},
        "exponential": lambda: {"rate": round(1 / u(50, 200), 5)},
        "power_law": lambda: {"alpha": round(u(1.5, 2.0), 2), "xmin": int(rng.integers(80, 201))},
        "uniform": lambda: {"low": int(rng.integers(50, 101)), "high": int(rng.integers(101, 151))},
        "gamma": lambda: {"shape": round(u(1.5, 2.5), 2), "scale": round(u(15, 30), 1)},
        "skew_normal": lambda: {"loc": round(u(80, 120), 1), "scale": round(u(5, 20), 1), "skew": round(u(-10, 10), 1)},
        "gumbel": lambda: {"loc": round(u(800, 1200), 1), "scale": round(u(800, 1200), 1)},
        "poisson": lambda: {"rate": int(rng.integers(50, 91))},
        "geometric": lambda: {"p": round(u(0.01, 0.07), 3)},
        "binomial": lambda: {"n": int(rng.integers(800, 1201)), "p": round(u(0.3, 0.7), 2)},
        "multinomial": lambda: {"n": int(rng.integers(800, 1201)), "probs": _dirichlet_at_least(rng, 3, 0.1)},
    }
    if family not in params:
        raise DistcharError(f"Unknown distribution family '{family}'; known: {', '.join(FAMILIES)}.")
    return params[family]()


def _dirichlet_at_least(rng: np.random.Generator, k: int, floor: float) -> list[float]:
    """Dirichlet(1, ..., 1) probabilities, each at least ``floor``, rounded to 2 decimals (summing to 1)."""
    while True:
        probs = np.round(rng.dirichlet(np.ones(k)), 2)
        probs[-1] = round(1 - probs[:-1].sum(), 2)
        if probs.min() >= floor:
            return [float(x) for x in probs]


@dataclass(frozen=True)
class Reference:
    """A sorted reference sample and the ground truths computed from it."""

    values: np.ndarray

    def percentile_of(self, x) -> np.ndarray:
        """Mid-rank percentile of ``x``: 100 * (P(X < x) + P(X <= x)) / 2. For continuous samples this
        is the empirical CDF; for discrete ones it does not jump by a whole atom at x."""
        x = np.asarray(x, dtype=np.float64)
        below = np.searchsorted(self.values, x, side="left")
        at_or_below = np.searchsorted(self.values, x, side="right")
        return 100.0 * (below + at_or_below) / (2 * self.values.size)

    def fraction_between(self, low, high) -> np.ndarray:
        """Share of the sample in [low, high]."""
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        n = np.searchsorted(self.values, high, side="right") - np.searchsorted(self.values, low, side="left")
        return np.maximum(n, 0) / self.values.size

    def value_at(self, percentile) -> np.ndarray:
        """The sample's value at ``percentile`` (numpy's linear interpolation), rounded to 3 decimals."""
        return np.round(np.percentile(self.values, percentile), 3)

    def central_range(self, mass: float) -> tuple[float, float]:
        """The central range holding ``mass`` of the sample, clipped to [P1, P99]."""
        low = max(50 - 50 * mass, 1.0)
        high = min(50 + 50 * mass, 99.0)
        a, b = self.value_at([low, high])
        return float(a), float(b)

    @cached_property
    def mean(self) -> float:
        return float(self.values.mean())

    @cached_property
    def sd(self) -> float:
        return float(self.values.std(ddof=1))


# ---------------------------------------------------------------- real-world variables


@dataclass(frozen=True)
class RealWorldVariable:
    """One real-world variable: its ground truth as the paper's generator released it."""

    domain: str
    name: str
    unit: str
    context: str
    quantiles: dict[float, float]
    central_ranges: dict[float, tuple[float, float]]
    fitted_family: str
    fitted_params: dict
    shown_mean: float
    shown_std: float

    def fitted(self):
        """The fitted family as a frozen scipy.stats distribution."""
        p = self.fitted_params
        families = {
            "normal": lambda: stats.norm(p["mean"], p["std"]),
            "skew_normal": lambda: stats.skewnorm(p["skew"], p["loc"], p["scale"]),
            "log_normal": lambda: stats.lognorm(s=p["sigma"], scale=np.exp(p["mu"])),
            "gumbel": lambda: stats.gumbel_r(p["loc"], p["scale"]),
            "exponential": lambda: stats.expon(scale=1 / p["rate"]),
        }
        if self.fitted_family not in families:
            raise DistcharError(
                f"Real-world variable '{self.name}' has an unknown fitted family '{self.fitted_family}'."
            )
        return families[self.fitted_family]()

    def describe_fitted(self) -> str:
        """The fitted family in the words of ``Distribution.describe``."""
        p = self.fitted_params
        return {
            "normal": lambda: Distribution("normal", {"mean": p["mean"], "sd": p["std"]}).describe(),
            "skew_normal": lambda: Distribution("skew_normal", p).describe(),
            "log_normal": lambda: Distribution("log_normal", p).describe(),
            "gumbel": lambda: Distribution("gumbel", p).describe(),
            "exponential": lambda: Distribution("exponential", p).describe(),
        }[self.fitted_family]()

    def percentile_of(self, x) -> np.ndarray:
        """Percentile of ``x`` by linear interpolation of the quantile table; exact at its entries,
        NaN outside [P1, P99] (the table says nothing there)."""
        ps = np.array(sorted(self.quantiles))
        qs = np.array([self.quantiles[p] for p in ps])
        x = np.asarray(x, dtype=np.float64)
        out = np.interp(x, qs, ps)
        return np.where((x < qs[0]) | (x > qs[-1]), np.nan, out)

    def fraction_between(self, low, high) -> np.ndarray:
        """The released fraction where [low, high] is one of the released central ranges, else the
        difference of interpolated percentiles (NaN beyond the table)."""
        low, high = np.atleast_1d(np.asarray(low, float)), np.atleast_1d(np.asarray(high, float))
        out = (self.percentile_of(high) - self.percentile_of(low)) / 100
        for mass, (a, b) in self.central_ranges.items():
            hit = np.isclose(low, a, rtol=1e-9, atol=1e-9) & np.isclose(high, b, rtol=1e-9, atol=1e-9)
            out = np.where(hit, mass, out)
        return out


def load_real_world(path: Path | None = None) -> dict[str, RealWorldVariable]:
    """The 12 real-world variables by name; ``path`` defaults to the copy packaged with distchar."""
    try:
        if path is None:
            text = resources.files("distchar.resources").joinpath("what_are_the_odds_real_world.json").read_text()
        else:
            text = Path(path).read_text()
        raw = json.loads(text)
        out = {}
        for domain, block in raw["domains"].items():
            for name, v in block["variables"].items():
                out[name] = RealWorldVariable(
                    domain=domain, name=name, unit=v["unit"], context=block["context"],
                    quantiles={float(p): float(q) for p, q in v["quantiles"].items()},
                    central_ranges={float(m): (float(a), float(b)) for m, (a, b) in v["central_ranges"].items()},
                    fitted_family=v["fitted_family"], fitted_params=dict(v["fitted_params"]),
                    shown_mean=float(v["shown_mean"]), shown_std=float(v["shown_std"]),
                )  # fmt: skip
    except FileNotFoundError as exc:
        raise DistcharError(f"The real-world tables {path} do not exist; run `make data` (or dvc pull).") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise DistcharError(
            f"The real-world tables {path or 'packaged with distchar'} are malformed ({exc!r})."
        ) from exc
    return out

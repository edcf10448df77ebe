"""params.yaml: its schema, validated before any stage does work.

Every section mirrors one pipeline stage and every field says why it exists. An unknown key, a
wrong type or a value out of range stops with one sentence naming the key and what is allowed.
Run ``python -m distchar.config [params.yaml]`` to check a file by hand.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from distchar.crowding import CROWDING_CHOICES
from distchar.errors import DistcharError
from distchar.lora.registry import INITS
from distchar.models.architectures import CANONICAL_TYPES
from distchar.models.sources import source_problem
from distchar.studies.nsga2.problems import PROBLEMS
from distchar.tasks import TASKS

# The allowed names come from the registries (each defined once, in the module named).
ProjectionType = Literal[CANONICAL_TYPES]  # distchar.models.architectures
LoraInit = Literal[tuple(INITS)]  # distchar.lora.registry
Crowding = Literal[CROWDING_CHOICES]  # distchar.crowding
Nsga2Problem = Literal[PROBLEMS]  # distchar.studies.nsga2.problems
TaskName = Literal[tuple(TASKS)]  # distchar.tasks
ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


class Section(BaseModel):
    """A params section: unknown keys are errors, so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ExtractParams(Section):
    """Stage 01: which projection matrices to list and describe."""

    types: list[ProjectionType] = Field(
        default=list(CANONICAL_TYPES),
        min_length=1,
        description="Projection types to extract; the study uses all seven.",
    )

    @field_validator("types")
    @classmethod
    def _no_repeats(cls, types: list[str]) -> list[str]:
        if len(set(types)) != len(types):
            raise ValueError("must not repeat a type")
        return types


class SvdParams(Section):
    """Stage 02: top-k singular values of every projection matrix."""

    k: Annotated[int, Field(ge=1)] | Literal["all"] = Field(
        default=64, description="Singular values kept per matrix (the sister paper uses 16 or 64), or 'all'."
    )
    method: Literal["auto", "exact", "gram32_eig64", "gram32_eig32", "randomized"] = Field(
        default="auto",
        description="exact: float64 LAPACK; gram32_eig64 / gram32_eig32: float32 Gram matrix, float64 / float32 "
        "eigen-solver; randomized: subspace iteration; auto: gram32_eig64 for top k, exact for 'all'.",
    )
    oversampling: int = Field(default=128, ge=0, le=4096, description="Extra sketch columns of the randomized method.")
    power_iterations: int = Field(default=8, ge=0, le=50, description="Rounds of the randomized method.")
    check_matrices: int = Field(
        default=8, ge=0, le=1000, description="Matrices on which the method used is checked against float64."
    )
    tolerance: float = Field(
        default=1e-4,
        gt=0,
        lt=1,
        description="Largest relative error of the kept values the check accepts; past it, auto recomputes in float64.",
    )
    batch_mb: int = Field(
        default=512, ge=16, description="Largest batch of equally shaped matrices and their working memory, in MB."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: CUDA when present.")
    seed: int = Field(default=0, ge=0, description="Seeds the randomized sketches and the checked sample.")


class PowerLawParams(Section):
    """Stage 04: power-law fits of the cosine distances, rival families, and the description."""

    min_tail: int = Field(default=10, ge=5, description="Fewest points a power-law tail may have.")
    bootstrap: int = Field(
        default=100, ge=0, le=100000, description="Repetitions of the goodness-of-fit bootstrap (0: skip it)."
    )
    max_clusters: int = Field(default=6, ge=2, le=50, description="Most layer clusters the description may report.")
    seed: int = Field(default=0, ge=0, description="Seeds the bootstrap.")


class OddsParams(Section):
    """Stage 08 (What Are the Odds?): question sets, evaluation profile and generation settings."""

    models: list[ModelName] = Field(
        default_factory=list, description="Causal LMs (names under `models:`) evaluated by stage 08; [] skips it."
    )
    profile: Literal["smoke", "default", "full"] = Field(
        default="default",
        description="Which cells of the benchmark grid are asked (see distchar.studies.odds.profiles).",
    )
    seed: int = Field(default=1337, ge=0, description="Seeds reference samples, shots, splits and sampling.")
    reference_samples: int = Field(
        default=100_000,
        ge=1000,
        le=10_000_000,
        description="Draws per distribution for the ground truth (paper: 100,000).",
    )
    sampling_n: int = Field(default=20, ge=2, le=10_000, description="Samples asked per group in the sampling task.")
    batch_size: int = Field(default=64, ge=1, le=4096, description="Prompts generated at once.")
    max_new_tokens: int = Field(default=32, ge=1, le=1024, description="Longest answer generated.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: CUDA when present.")
    prefill_answer_tag: bool = Field(
        default=False, description="Open the assistant turn with '<answer>' (the paper does not)."
    )
    finetune_draws: int = Field(
        default=40, ge=3, le=10_000, description="Random parameter draws per family for the fine-tuning splits."
    )
    split: tuple[float, float, float] = Field(
        default=(0.7, 0.15, 0.15), description="Train, validation, test shares of the draws."
    )

    @field_validator("split")
    @classmethod
    def _shares(cls, split: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(split) <= 0 or abs(sum(split) - 1) > 1e-6:
            raise ValueError("must be three positive shares summing to 1")
        return split


class GeneratorSection(Section):
    """Stage 05: the Gaussian-process + Pareto generator and its NSGA-II tuning."""

    population: int = Field(default=24, ge=4, le=1000, description="NSGA-II population per projection type.")
    generations: int = Field(default=15, ge=1, le=1000, description="NSGA-II generations per projection type.")
    draws: int = Field(default=2, ge=1, le=100, description="Synthetic matrices per candidate (common random numbers).")
    crowding: Crowding = Field(
        default="improved",
        description="NSGA-II crowding function: pymoo's built-ins or the improved distance of Chu and Yu 2018.",
    )
    nugget: float = Field(default=0.1, ge=0, lt=1, description="Independent share of the latent field at the start.")
    fallback_alpha: float = Field(
        default=2.0,
        gt=1,
        le=10,
        description="Distance exponent the alpha gap aims at when stage 04's fit of a type and the pooled fit "
        "are both insufficient.",
    )
    check_draws: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="Fresh synthetic matrices on which the chosen point's fidelity is measured.",
    )
    seed: int = Field(default=0, ge=0, description="Seeds the tuning and the generated profiles.")


class LoraParams(Section):
    """LoRA adapters: made by stage 05 (every init, every seed), trained by stage 06."""

    rank: int = Field(default=8, ge=1, le=4096, description="LoRA rank r.")
    alpha: float = Field(default=16, gt=0, description="LoRA alpha; the adapter is scaled by alpha / r.")
    inits: list[LoraInit] = Field(
        default_factory=lambda: list(INITS),
        min_length=1,
        description="Inits from the registry (distchar.lora.registry.INITS) to make and compare.",
    )
    seeds: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: [0, 1], min_length=1, description="One init (and one training run) per seed."
    )

    @field_validator("inits", "seeds")
    @classmethod
    def _no_repeats_in_list(cls, values: list) -> list:
        if len(set(values)) != len(values):
            raise ValueError("must not repeat an entry")
        return values


Rate = Annotated[float, Field(gt=0, le=1)]


class TaskSettings(Section):
    """One fine-tuning task of stage 06."""

    model: ModelName = Field(description="The model (a key of `models:`) fine-tuned on this task.")
    data: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="The task's data (distchar.tasks): odds, stage 08's question folder "
        "(train/validation/test.jsonl); sentiment, a CSV with columns 'sentiment' and 'text'."
    )
    steps: int = Field(ge=1, le=1_000_000, description="Optimizer steps per run.")
    batch_size: int = Field(ge=1, le=65536, description="Examples per step (split across processes).")
    max_length: int = Field(default=256, ge=8, le=32768, description="Longest example, in tokens.")
    train_size: int = Field(default=0, ge=0, description="Training examples used (0: all of the split).")
    eval_size: int = Field(default=0, ge=0, description="Validation and test examples of stage 07 (0: all).")
    eval_every: int = Field(
        default=0, ge=0, description="Steps between points of the validation-loss curve of training (0: none)."
    )
    curve_size: int = Field(
        default=200, ge=0, description="Validation examples of that curve (0: all), spread over the split."
    )
    inits: list[LoraInit] | None = Field(
        default=None, min_length=1, description="The inits trained on this task (a subset of lora.inits; null: all)."
    )
    seeds: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None, min_length=1, description="The seeds trained on this task (a subset of lora.seeds; null: all)."
    )
    learning_rates: list[Rate] | dict[LoraInit, list[Rate]] | None = Field(
        default=None, min_length=1,
        description="The learning rates tried on this task: a list, tried for every init, or init -> its own "
        "list, e.g. each init's rate picked by a pilot (distchar.pilot); null: training.learning_rates.",
    )  # fmt: skip


class Grid(NamedTuple):
    """One task's runs: every init x seed x that init's learning rates."""

    inits: list[str]
    seeds: list[int]
    learning_rates: dict[str, list[float]]
    """Init -> the rates it is trained at."""

    @property
    def runs(self) -> int:
        return len(self.seeds) * sum(len(self.learning_rates[init]) for init in self.inits)


class TrainingParams(Section):
    """Stage 06: LoRA fine-tuning of every init of `lora.inits`, every seed of `lora.seeds`, every learning rate."""

    tasks: dict[TaskName, TaskSettings] = Field(
        default_factory=lambda: {name: TaskSettings(**task.defaults) for name, task in TASKS.items()},
        description="Task (distchar.tasks) -> its settings; "
        + "; ".join(f"{name}: {task.description}" for name, task in TASKS.items())
        + ". {} skips stages 06-07.",
    )
    learning_rates: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [1e-3, 4e-3], min_length=1, description="Learning rates tried per init and seed."
    )
    loss: Literal["ce", "dsl"] = Field(default="ce", description="Cross-entropy or the distribution-restrained loss.")
    dsl_b: float = Field(default=1e-3, ge=0, description="DSL weight b (classification; the LM variant uses dsl_lm_b).")
    dsl_lm_b: float = Field(default=1e-5, ge=0, description="DSL weight b of the language-model variant.")
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1, description="Share of steps of linear warm-up.")
    checkpoint_every: int = Field(default=10, ge=1, description="Steps between checkpoints (resume after a kill).")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: CUDA when present.")
    launch: str = Field(
        default="",
        description="Empty: train in the stage's own process. Else a launcher the stage runs "
        "`-m distchar.stages.train TASK` under, e.g. 'accelerate launch --multi_gpu --num_processes 4'.",
    )

    @field_validator("learning_rates")
    @classmethod
    def _distinct_rates(cls, rates: list[float]) -> list[float]:
        if len(set(rates)) != len(rates):
            raise ValueError("must not repeat a learning rate")
        return rates

    def task(self, name: str) -> TaskSettings:
        if name not in self.tasks:
            raise DistcharError(f"params.yaml: training.tasks has no task '{name}' ({', '.join(self.tasks)}).")
        return self.tasks[name]

    def grid(self, name: str, lora: LoraParams) -> Grid:
        """Task ``name``'s inits, seeds and learning rates: its own where it names them, else
        ``lora.inits``, ``lora.seeds`` and ``training.learning_rates``."""
        settings = self.task(name)
        inits, rates = settings.inits or lora.inits, settings.learning_rates or self.learning_rates
        per_init = rates if isinstance(rates, dict) else dict.fromkeys(inits, rates)
        return Grid(inits, settings.seeds or lora.seeds, {init: list(per_init[init]) for init in inits})


class EvaluateParams(Section):
    """Stage 07: task metrics of every run, the best learning rate per init, paired comparisons, the claim table."""

    claim_init: LoraInit = Field(default="reshaped", description="The init whose claim is judged.")
    baselines: list[LoraInit] = Field(
        default_factory=lambda: ["default", "pissa", "olora", "matched_random"],
        description="The inits claim_init must beat (each present in lora.inits).",
    )
    permutations: int = Field(
        default=20000, ge=100, le=1_000_000,
        description="Random sign patterns of the sign-flip test over seeds when there are more than 16 seeds "
        "(up to 16, every pattern is enumerated).",
    )  # fmt: skip
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="Level of every interval.")
    seed: int = Field(default=0, ge=0, description="Seeds the random sign patterns.")
    batch_size: int = Field(default=32, ge=1, le=4096, description="Examples per forward pass when evaluating.")
    test_all_runs: bool = Field(
        default=False,
        description="Score every learning rate on the test split, not only each init's tuned one "
        "(learning-rate sensitivity; one more test pass per run).",
    )


class Nsga2Params(Section):
    """Study 10: NSGA-II with each crowding function on the nine test problems (Chu and Yu 2018)."""

    problems: list[Nsga2Problem] = Field(
        default=list(PROBLEMS),
        min_length=1,
        description="Test problems of Deb et al. (2002).",
    )
    variants: list[Crowding] = Field(
        default=["cd", "improved", "pcd"],
        description="Crowding functions compared; `cd` (NSGA-II's own) is the baseline and must be listed.",
    )
    seeds: int = Field(default=5, ge=3, le=10_000, description="Runs per problem and variant (seeds 0, 1, ...).")
    population: int = Field(default=100, ge=4, le=100_000, description="NSGA-II population.")
    generations: int = Field(default=250, ge=2, le=1_000_000, description="Generations per run.")
    snapshots: list[Annotated[int, Field(ge=1)]] = Field(
        default=[25, 50, 100], description="Generations at which IGD is compared too (convergence speed)."
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="Tests are at level 1 - confidence.")
    jobs: int = Field(default=2, ge=1, le=1024, description="Worker processes (runs are independent).")

    @model_validator(mode="after")
    def _consistent(self) -> Nsga2Params:
        for name, values in (("problems", self.problems), ("variants", self.variants), ("snapshots", self.snapshots)):
            if len(set(values)) != len(values):
                raise ValueError(f"nsga2.{name} must not repeat a value")
        if "cd" not in self.variants or len(self.variants) < 2:
            raise ValueError("nsga2.variants must list 'cd' (the baseline) and at least one other crowding function")
        late = [g for g in self.snapshots if g >= self.generations]
        if late:
            raise ValueError(f"nsga2.snapshots {late} must be earlier than nsga2.generations ({self.generations})")
        return self


class RobustnessParams(Section):
    """Study 09: the distribution-restrained softmax loss under strong attacks (Wang et al. 2023)."""

    architectures: list[Literal["mlp", "cnn"]] = Field(
        default=["mlp", "cnn"], min_length=1, description="Classifiers trained on scikit-learn's 8x8 digits."
    )
    losses: list[Literal["ce", "dsl", "label_smoothing"]] = Field(
        default=["ce", "dsl", "label_smoothing"],
        description="Training losses; `ce` is the baseline and must be listed; `dsl` runs once per value of dsl_b.",
    )
    dsl_b: list[Annotated[float, Field(gt=0, le=10)]] = Field(
        default=[1e-3, 1e-2, 1e-1], min_length=1, description="DSL coefficients b swept (a = 1)."
    )
    dsl_reduction: Literal["sum", "mean"] = Field(default="sum", description="DSL variant (`sum`: the authors' code).")
    label_smoothing: float = Field(default=0.1, gt=0, lt=1, description="Label smoothing of the baseline that "
                                   "also flattens the non-targets.")  # fmt: skip
    seeds: int = Field(default=3, ge=2, le=1000, description="Trainings per architecture and loss (seeds 0, 1, ...).")
    epochs: int = Field(default=30, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1, le=100_000)
    learning_rate: float = Field(default=1e-3, gt=0, le=1, description="Adam learning rate.")
    test_fraction: float = Field(default=0.3, gt=0.05, lt=0.9, description="Stratified test split of the 1797 images.")
    attack_examples: int = Field(
        default=200, ge=10, le=1797,
        description="Test images attacked (a fixed, stratified subset of the test split); clean accuracy uses all.",
    )  # fmt: skip
    epsilons: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default=[0.05, 0.1, 0.2], min_length=1, description="L-infinity radii of FGSM and PGD (pixels in [0, 1])."
    )
    epsilon: float = Field(default=0.1, gt=0, le=1, description="The radius of AutoAttack, Square and the spread "
                           "analysis; must be one of epsilons.")  # fmt: skip
    pgd_steps: int = Field(default=40, ge=1, le=10_000, description="PGD steps (step size epsilon / 4, random start).")
    cw_c: float = Field(default=1.0, gt=0, description="Carlini-Wagner L2 trade-off constant c.")
    cw_steps: int = Field(default=100, ge=1, le=100_000)
    square_queries: int = Field(default=5000, ge=1, le=1_000_000, description="Queries of the stand-alone Square "
                                "attack (the gradient-masking check); AutoAttack's own Square keeps 5000.")  # fmt: skip
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="Intervals and tests are at this level.")
    jobs: int = Field(default=2, ge=1, le=1024, description="Worker processes (trainings are independent).")

    @model_validator(mode="after")
    def _consistent(self) -> RobustnessParams:
        for name, values in (("architectures", self.architectures), ("losses", self.losses), ("dsl_b", self.dsl_b),
                             ("epsilons", self.epsilons)):  # fmt: skip
            if len(set(values)) != len(values):
                raise ValueError(f"robustness.{name} must not repeat a value")
        if "ce" not in self.losses or len(self.losses) < 2:
            raise ValueError("robustness.losses must list 'ce' (the baseline) and at least one other loss")
        if self.epsilon not in self.epsilons:
            raise ValueError(f"robustness.epsilon ({self.epsilon:g}) must be one of robustness.epsilons")
        return self


class Params(Section):
    """The whole of params.yaml."""

    models: dict[ModelName, Annotated[str, StringConstraints(min_length=1)]] = Field(
        min_length=1,
        description="Model name (lower case, digits, '-' or '_') -> source: 'bundled:NAME', a "
        ".gguf file, a Hugging Face folder or a hub id. Each model gets its own stages.",
    )
    # Sections are required: dvc.yaml declares them, and DVC refuses a declared key that is absent.
    extract: ExtractParams
    svd: SvdParams
    powerlaw: PowerLawParams
    odds: OddsParams
    generator: GeneratorSection
    lora: LoraParams
    training: TrainingParams
    evaluate: EvaluateParams
    robustness: RobustnessParams
    nsga2: Nsga2Params

    @model_validator(mode="after")
    def _names_and_sources_exist(self) -> Params:
        for name, source in self.models.items():
            if problem := source_problem(source):
                raise ValueError(f"models.{name}: the source '{source}' {problem}")
        for name in self.odds.models:
            if name not in self.models:
                raise ValueError(f"odds.models names '{name}', which is not under 'models:' ({', '.join(self.models)})")
        for task, settings in self.training.tasks.items():
            if settings.model not in self.models:
                raise ValueError(
                    f"training.tasks.{task}.model names '{settings.model}', which is not under 'models:' "
                    f"({', '.join(self.models)})"
                )
        for name in [self.evaluate.claim_init, *self.evaluate.baselines]:
            if self.training.tasks and name not in self.lora.inits:
                raise ValueError(f"evaluate names the init '{name}', which is not in lora.inits")
        for task, settings in self.training.tasks.items():
            for key, chosen, allowed in (("inits", settings.inits, self.lora.inits),
                                         ("seeds", settings.seeds, self.lora.seeds)):  # fmt: skip
                if missing := [x for x in chosen or [] if x not in allowed]:
                    raise ValueError(f"training.tasks.{task}.{key} names {missing[0]!r}, which is not in lora.{key} "
                                     "(stage 05 makes only those)")  # fmt: skip
            rates = settings.learning_rates
            lists = [("inits", settings.inits), ("seeds", settings.seeds)]
            lists += [(f"learning_rates.{i}", r) for i, r in rates.items()] if isinstance(rates, dict) else [
                ("learning_rates", rates)]  # fmt: skip
            for key, chosen in lists:
                if len(set(chosen or [])) != len(chosen or []):
                    raise ValueError(f"training.tasks.{task}.{key} repeats a value")
            if isinstance(rates, dict):
                inits = settings.inits or self.lora.inits
                if missing := [i for i in inits if not rates.get(i)]:
                    raise ValueError(f"training.tasks.{task}.learning_rates gives no rate for the init '{missing[0]}'")
                if extra := [i for i in rates if i not in inits]:
                    raise ValueError(f"training.tasks.{task}.learning_rates names the init '{extra[0]}', "
                                     "which this task does not train")  # fmt: skip
            if settings.inits and self.evaluate.claim_init not in settings.inits:
                raise ValueError(f"training.tasks.{task}.inits lacks evaluate.claim_init '{self.evaluate.claim_init}'")
        if self.svd.k != "all" and self.lora.rank > self.svd.k:
            raise ValueError(
                f"lora.rank ({self.lora.rank}) exceeds svd.k ({self.svd.k}): the reshaped inits take their first "
                "lora.rank singular values from stage 02's top k; raise svd.k or lower lora.rank"
            )
        return self

    def model_source(self, name: str) -> str:
        """The source of model ``name``; raises DistcharError naming the models that exist."""
        if name not in self.models:
            raise DistcharError(f"params.yaml: no model '{name}' under 'models:'; there are: {', '.join(self.models)}.")
        return self.models[name]


_UNION_TAG = re.compile(r"^(constrained-\w+|literal\[.*\]|int|str|float|bool)$")


def _location(loc: tuple) -> tuple:
    """The key path of an error, without the union-member tags pydantic appends."""
    return tuple(part for part in loc if not (isinstance(part, str) and _UNION_TAG.match(part)))


def _sentence(path: Path, error: ValidationError) -> str:
    errors = error.errors()
    first = errors[0]
    key = ".".join(str(part) for part in _location(first["loc"]))
    if first["type"] == "extra_forbidden":
        return f"{path}: unknown key '{key}'; allowed keys here: {_allowed(first['loc'])}."
    if first["type"] == "missing":
        return f"{path}: key '{key}' is missing."
    if not key:  # a check across sections: its message names the keys
        return f"{path}: {first['msg'].removeprefix('Value error, ')}."
    # a value that fits no member of a union gets every member's complaint
    messages = [e["msg"][0].lower() + e["msg"][1:] for e in errors if _location(e["loc"]) == _location(first["loc"])]
    return f"{path}: key '{key}' {' or '.join(dict.fromkeys(messages))} (got {first.get('input')!r})."


def _allowed(loc: tuple) -> str:
    model: type[BaseModel] = Params
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            break
        model = field.annotation
    return ", ".join(model.model_fields)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raises DistcharError with one sentence naming the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise DistcharError(f"{path} does not exist; run from the repository root.") from exc
    except yaml.YAMLError as exc:
        raise DistcharError(f"{path} is not valid YAML ({exc}).") from exc
    return parse_params(raw, path)


def parse_params(raw, path: str | Path = "params.yaml") -> Params:
    """Validate params read from ``path`` (which the one sentence of an error names)."""
    if not isinstance(raw, dict):
        raise DistcharError(f"{path} must be a mapping of sections, not {type(raw).__name__}.")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise DistcharError(_sentence(Path(path), exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Check a params file; print one sentence and return 2 if it is invalid."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path("params.yaml")
    try:
        params = load_params(path)
    except DistcharError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path} is valid: {len(params.models)} model(s): {', '.join(params.models)}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""params.yaml: its schema, validated before any stage does work.

Every section mirrors one pipeline stage and every field says why it exists. An unknown key, a
wrong type or a value out of range stops with one sentence naming the key and what is allowed.
Run ``python -m distchar.config [params.yaml]`` to check a file by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from distchar.errors import DistcharError
from distchar.models.architectures import CANONICAL_TYPES

ProjectionType = Literal["q", "k", "v", "o", "gate", "up", "down"]
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


class Params(Section):
    """The whole of params.yaml."""

    models: dict[ModelName, Annotated[str, StringConstraints(min_length=1)]] = Field(
        min_length=1,
        description="Model name (lower case, digits, '-' or '_') -> source: 'bundled:NAME', a "
        ".gguf file, a Hugging Face folder or a hub id. Each model gets its own stages.",
    )
    extract: ExtractParams  # required: dvc.yaml declares it, and DVC refuses a declared key that is absent

    def model_source(self, name: str) -> str:
        """The source of model ``name``; raises DistcharError naming the models that exist."""
        if name not in self.models:
            raise DistcharError(f"params.yaml: no model '{name}' under 'models:'; there are: {', '.join(self.models)}.")
        return self.models[name]


def _sentence(path: Path, error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{path}: unknown key '{key}'; allowed keys here: {_allowed(first['loc'])}."
    if first["type"] == "missing":
        return f"{path}: key '{key}' is missing."
    return f"{path}: key '{key}' {first['msg'][0].lower()}{first['msg'][1:]} (got {first.get('input')!r})."


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
    if not isinstance(raw, dict):
        raise DistcharError(f"{path} must be a mapping of sections, not {type(raw).__name__}.")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise DistcharError(_sentence(path, exc)) from None


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

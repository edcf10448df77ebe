"""Loading a params.yaml model source as a transformers model (for training, inits, evaluation).

The analysis stages never do this (they stream matrices from the weight files); the stages that run
the model do. GGUF files are dequantised by transformers (``gguf_file=``) to float32, once per file:
the result is kept as a Hugging Face folder in distchar's cache (``dequantised_folder``), from which
every later load of that file reads.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Literal

import torch

from distchar.errors import DistcharError
from distchar.models.sources import ResolvedSource, resolve_source

log = logging.getLogger(__name__)

Head = Literal["auto", "causal_lm", "encoder", "sequence_classification"]


def load_transformers_model(
    source: str | ResolvedSource, head: Head = "auto", *, num_labels: int = 2, dtype: torch.dtype = torch.float32
) -> torch.nn.Module:
    """The model of ``source`` with ``head``: ``auto`` is a causal LM for decoders and the bare encoder
    for BERT; ``sequence_classification`` adds a fresh classifier of ``num_labels`` outputs."""
    import transformers

    resolved = source if isinstance(source, ResolvedSource) else resolve_source(source)
    if head == "auto":
        head = "encoder" if resolved.architecture.name == "bert" else "causal_lm"
    if head == "causal_lm" and resolved.architecture.name == "bert":
        raise DistcharError(f"Model source '{resolved.source}' is a BERT encoder, not a causal LM.")
    auto = {"causal_lm": transformers.AutoModelForCausalLM, "encoder": transformers.AutoModel,
            "sequence_classification": transformers.AutoModelForSequenceClassification}[head]  # fmt: skip
    kwargs = {"dtype": dtype}
    folder = dequantised_folder(resolved) if resolved.file_format == "gguf" else resolved.folder
    if head == "sequence_classification":
        kwargs["num_labels"] = num_labels
    started = time.perf_counter()
    try:
        model = auto.from_pretrained(str(folder), **kwargs)
    except (OSError, ValueError) as exc:
        raise DistcharError(f"Model source '{resolved.source}' could not be loaded by transformers ({exc}).") from exc
    log.info("loaded %s (%s) in %.1f s", resolved.source, head, time.perf_counter() - started)
    return model.eval()


def load_tokenizer(source: str | ResolvedSource):
    """The tokenizer of ``source`` (a pad token is set to EOS where the model has none)."""
    from transformers import AutoTokenizer

    resolved = source if isinstance(source, ResolvedSource) else resolve_source(source)
    folder = dequantised_folder(resolved) if resolved.file_format == "gguf" else resolved.folder
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        message = f"Model source '{resolved.source}' has no usable tokenizer in {resolved.folder} ({exc})."
        raise DistcharError(message) from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def cache_root() -> Path:
    """Where distchar keeps what it derives once per machine: ``$DISTCHAR_CACHE``, else
    ``$XDG_CACHE_HOME/distchar``, else ``~/.cache/distchar``."""
    if os.environ.get("DISTCHAR_CACHE"):
        return Path(os.environ["DISTCHAR_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "distchar"


@functools.cache
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def dequantised_folder(resolved: ResolvedSource) -> Path:
    """A Hugging Face folder (config, generation config, float32 safetensors, tokenizer) holding what
    transformers makes of the GGUF file of ``resolved``, made on first use.

    transformers takes about 30 s to load SmolLM2-135M's GGUF (most of it parsing the file's
    metadata twice and mapping tensor names, not dequantising) and about 1 s to load the saved
    folder. The folder is named by the file's SHA-256 and the transformers version, so an edited
    file or another dequantiser gets a folder of its own; it is written whole or not at all, by one
    process at a time. Delete ``cache_root()`` to reclaim the space (float32: 4 bytes a parameter).
    """
    import transformers
    from filelock import FileLock
    from safetensors.torch import save_model

    gguf = resolved.files[0]
    stat = gguf.stat()
    key = f"{_file_digest(gguf, stat.st_size, stat.st_mtime_ns)[:20]}-transformers{transformers.__version__}"
    folder = cache_root() / "gguf" / key
    if (folder / "model.safetensors").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(folder.parent / f".{key}.lock"):  # a second process waits for the first one's folder
        if (folder / "model.safetensors").exists():
            return folder
        started = time.perf_counter()
        try:
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(resolved.folder), gguf_file=gguf.name, dtype=torch.float32
            )
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(resolved.folder), gguf_file=gguf.name)
        except (OSError, ValueError) as exc:
            message = f"Model source '{resolved.source}' could not be loaded by transformers ({exc})."
            raise DistcharError(message) from exc
        scratch = folder.with_name(f".{key}.partial")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        model.config.save_pretrained(scratch)
        model.generation_config.save_pretrained(scratch)
        save_model(model, str(scratch / "model.safetensors"))  # shared (tied) tensors saved once
        tokenizer.save_pretrained(scratch)
        scratch.rename(folder)
        log.info("dequantised %s to %s in %.1f s", gguf, folder, time.perf_counter() - started)
    return folder

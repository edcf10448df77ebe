"""Loading a params.yaml model source as a transformers model (for training, inits, evaluation).

The analysis stages never do this (they stream matrices from the weight files); the stages that run
the model do. GGUF files are dequantised by transformers (``gguf_file=``) to float32.
"""

from __future__ import annotations

import logging
import time
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
    if resolved.file_format == "gguf":
        kwargs["gguf_file"] = resolved.files[0].name
    if head == "sequence_classification":
        kwargs["num_labels"] = num_labels
    started = time.perf_counter()
    try:
        model = auto.from_pretrained(str(resolved.folder), **kwargs)
    except (OSError, ValueError) as exc:
        raise DistcharError(f"Model source '{resolved.source}' could not be loaded by transformers ({exc}).") from exc
    log.info("loaded %s (%s) in %.1f s", resolved.source, head, time.perf_counter() - started)
    return model.eval()


def load_tokenizer(source: str | ResolvedSource):
    """The tokenizer of ``source`` (a pad token is set to EOS where the model has none)."""
    from transformers import AutoTokenizer

    resolved = source if isinstance(source, ResolvedSource) else resolve_source(source)
    kwargs = {"gguf_file": resolved.files[0].name} if resolved.file_format == "gguf" else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(resolved.folder), **kwargs)
    except (OSError, ValueError) as exc:
        message = f"Model source '{resolved.source}' has no usable tokenizer in {resolved.folder} ({exc})."
        raise DistcharError(message) from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer

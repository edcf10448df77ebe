"""Asking a causal LM many questions: chat template, batched generation with shared prefixes.

``generate`` is greedy (or temperature sampling) over many prompts at once:

- Prompts are tokenised whole (chat template applied, optionally the assistant turn opened with
  a ``prefill`` text such as ``<answer>``), sorted, and grouped where they share a long token
  prefix: a group's shared prefix is computed once and its key/value cache copied to every
  member, so a member costs only its few distinct tokens. Grouping is greedy over the sorted
  prompts: a prompt joins the open group when that does not increase the tokens computed (shared
  prefix c of n members with the newcomer, c' the prefix after it joins: join when c' > 0 and
  n c' >= (n - 1) c).
- Groups are packed into batches of ``batch_size`` prompts (ordering whole groups by length
  instead, to narrow the cache, measured no faster). Prefixes are left-padded, the distinct
  tails left-padded after them (the attention mask has zeros in the middle; positions
  are counted over real tokens only), then one token per step for every unfinished prompt; once
  a quarter of the batch has finished, the finished prompts leave it (their rows of the cache are
  dropped: ``COMPACT_AT``), so later steps compute mostly the prompts still answering.
- A prompt stops at the end-of-turn token or once its text holds ``stop`` (e.g. ``</answer>``;
  the answer is cut after it); the batch stops when all have stopped or after ``max_new_tokens``.

``generate_one_by_one`` is the baseline: ``model.generate`` on each prompt alone, the way most
evaluation scripts run; the batching benchmark compares the two on the same questions. Study 08
(What Are the Odds?) and the ``odds`` fine-tuning task ask their questions through this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from distchar.devices import resolve_device
from distchar.errors import DistcharError
from distchar.models.loading import load_tokenizer, load_transformers_model
from distchar.models.sources import resolve_source
from distchar.progress import each

log = logging.getLogger(__name__)
PLAIN_TEMPLATE = "{prompt}\n\nAnswer: "
"""Used for models without a chat template (base models): the question, then 'Answer: '."""


def chat_prompt(tokenizer, prompt: str) -> str:
    """The question as the model sees it: its chat template with the assistant turn opened, or
    ``PLAIN_TEMPLATE`` for a model without one. Fine-tuning (stage 06) uses the same text."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    return PLAIN_TEMPLATE.format(prompt=prompt)


@dataclass
class LanguageModel:
    """A causal LM ready for the harness."""

    model: torch.nn.Module
    tokenizer: object
    source: str

    def render(self, prompt: str, prefill: str = "") -> str:
        """The full text fed to the model: chat template (or ``PLAIN_TEMPLATE``), then ``prefill``."""
        return chat_prompt(self.tokenizer, prompt) + prefill

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of rendered texts (the template already holds any special tokens it needs)."""
        return [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    @property
    def stop_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|im_end|>")}
        return {i for i in ids if isinstance(i, int) and i != self.tokenizer.unk_token_id}


def load_language_model(source: str, device: str = "auto") -> LanguageModel:
    """Load a causal LM and its tokenizer from a params.yaml source (bundled, GGUF, folder, hub id)
    onto ``device`` (``auto``: CUDA when present)."""
    resolved = resolve_source(source)
    if resolved.architecture.name == "bert":
        raise DistcharError(f"Model source '{source}' is a BERT encoder; generating answers needs a causal LM.")
    tokenizer = load_tokenizer(resolved)
    model = load_transformers_model(resolved, "causal_lm").to(resolve_device(device, "odds.device"))
    return LanguageModel(model, tokenizer, source)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def prefix_groups(sequences: list[list[int]]) -> list[tuple[list[int], int]]:
    """Greedy groups of lexicographically sorted sequences: (member indices, shared prefix length).

    The shared prefix leaves at least one token of every member to compute (its logits start the
    answer)."""
    groups: list[tuple[list[int], int]] = []
    members: list[int] = []
    shared = 0
    for i, seq in enumerate(sequences):
        if not members:
            members, shared = [i], len(seq) - 1
            continue
        joined = min(_common_prefix(sequences[members[0]], seq), len(seq) - 1, shared)
        n = len(members)
        if joined > 0 and n * joined >= (n - 1) * shared:
            members.append(i)
            shared = joined
        else:
            groups.append((members, shared))
            members, shared = [i], len(seq) - 1
    if members:
        groups.append((members, shared))
    return groups


COMPACT_AT = 0.75
"""Finished prompts leave the batch once at most this share of its cache rows is still answering:
each compaction copies the cache, so rows are dropped a share at a time rather than one by one."""


def _left_pad(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(r)
            mask[i, width - len(r) :] = 1
    return ids, mask


@torch.inference_mode()
def _run_batch(
    lm: LanguageModel,
    seqs: list[list[int]],
    shared: list[int],
    max_new_tokens: int,
    temperature: float,
    generator: torch.Generator | None,
    stop: str,
) -> list[list[int]]:
    """New token ids for each sequence; ``shared[i]`` tokens of sequence i come from its group's prefix."""
    model, device = lm.model, next(lm.model.parameters()).device
    pad = lm.tokenizer.pad_token_id
    if min(shared) == 0:  # an empty prefix would be a fully padded row: compute this batch without sharing
        shared = [0] * len(seqs)
    prefixes = sorted({tuple(s[:n]) for s, n in zip(seqs, shared, strict=True)}, key=len)
    prefix_index = {p: i for i, p in enumerate(prefixes)}
    rows = torch.tensor([prefix_index[tuple(s[:n])] for s, n in zip(seqs, shared, strict=True)])
    cache = None
    mask_prefix = torch.zeros((len(seqs), 0), dtype=torch.long)
    if any(prefixes):
        ids, mask = _left_pad([list(p) for p in prefixes], pad)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                    use_cache=True, logits_to_keep=1)  # fmt: skip
        cache = out.cache
        cache.reorder_cache(rows.to(device))  # one copy of its group's prefix per sequence
        mask_prefix = mask[rows]
    tails, tail_mask = _left_pad([s[n:] for s, n in zip(seqs, shared, strict=True)], pad)
    attention = torch.cat([mask_prefix, tail_mask], dim=1)
    positions = (attention.cumsum(-1) - 1).clamp_min(0)[:, mask_prefix.shape[1] :]
    stop_ids, new = lm.stop_ids, [[] for _ in seqs]
    active = list(range(len(seqs)))  # the sequence of each row of the cache
    alive = [True] * len(seqs)  # whether that row's sequence is still answering
    inputs = tails
    for _ in range(max_new_tokens):
        out = model(input_ids=inputs.to(device), attention_mask=attention.to(device),
                    position_ids=positions.to(device), cache=cache, use_cache=True, logits_to_keep=1)  # fmt: skip
        cache = out.cache
        logits = out.logits[:, -1].float().cpu()
        if temperature > 0:
            token = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]
        else:
            token = logits.argmax(-1)
        for row, i in enumerate(active):
            if not alive[row]:
                continue
            t = int(token[row])
            if t in stop_ids:
                alive[row] = False
                continue
            new[i].append(t)
            if stop and stop in lm.tokenizer.decode(new[i][-4:]):
                alive[row] = False
        if not any(alive):
            break
        if sum(alive) <= COMPACT_AT * len(active):  # drop finished rows from the cache, a share at a time
            rows = torch.tensor([row for row, a in enumerate(alive) if a])
            cache.reorder_cache(rows.to(device))
            token, attention, positions = token[rows], attention[rows], positions[rows]
            active, alive = [active[row] for row in rows.tolist()], [True] * len(rows)
        inputs = token[:, None]
        attention = torch.cat([attention, torch.ones((len(active), 1), dtype=torch.long)], dim=1)
        positions = positions[:, -1:] + 1
    return new


def _cut(text: str, stop: str) -> str:
    return text[: text.index(stop) + len(stop)] if stop and stop in text else text


def generate(
    lm: LanguageModel,
    prompts: list[str],
    *,
    max_new_tokens: int = 32,
    batch_size: int = 32,
    prefill: str = "",
    stop: str = "",
    temperature: float = 0.0,
    seed: int = 0,
    progress: bool = True,
) -> list[str]:
    """The assistant's answer to each prompt: ``prefill`` (text that opens the assistant turn) and
    what the model adds, cut after ``stop`` (empty: at the end of turn or ``max_new_tokens``); see
    the module docstring. ``temperature`` 0 is greedy."""
    if not prompts:
        return []
    seqs = lm.encode([lm.render(p, prefill) for p in prompts])
    order = sorted(range(len(seqs)), key=lambda i: seqs[i])
    groups = prefix_groups([seqs[i] for i in order])
    shared = [0] * len(seqs)
    for members, n in groups:
        for m in members:
            shared[order[m]] = n
    generator = torch.Generator().manual_seed(seed)
    answers: list[str] = [""] * len(seqs)
    starts = range(0, len(order), batch_size)
    for start in each(starts, desc="generate", unit="batch") if progress else starts:
        batch = order[start : start + batch_size]
        new = _run_batch(lm, [seqs[i] for i in batch], [shared[i] for i in batch], max_new_tokens, temperature,
                         generator, stop)  # fmt: skip
        for i, ids in zip(batch, new, strict=True):
            answers[i] = _cut(prefill + lm.tokenizer.decode(ids, skip_special_tokens=True), stop)
    return answers


@torch.inference_mode()
def generate_one_by_one(lm: LanguageModel, prompts: list[str], *, max_new_tokens: int = 32, prefill: str = "",
                        stop: str = "") -> list[str]:  # fmt: skip
    """The baseline: ``model.generate`` (greedy) on each prompt alone, stopping at ``stop``."""
    device = next(lm.model.parameters()).device
    answers = []
    for ids in lm.encode([lm.render(p, prefill) for p in prompts]):
        x = torch.tensor([ids], device=device)
        out = lm.model.generate(
            x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens, do_sample=False,
            stop_strings=[stop] if stop else None, tokenizer=lm.tokenizer, pad_token_id=lm.tokenizer.pad_token_id,
            eos_token_id=sorted(lm.stop_ids),
        )  # fmt: skip
        answers.append(_cut(prefill + lm.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True), stop))
    return answers

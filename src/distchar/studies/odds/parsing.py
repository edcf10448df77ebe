"""Reading a number out of a model's answer, with documented fallbacks.

Order of rules (``parse_answer``):

1. The text inside the first ``<answer>...</answer>`` (``method`` ``tags``); an opening tag without
   a closing one counts up to the end of the text (generation stopped at the token limit; ``method``
   ``open_tag``).
2. No tag: the whole text is read the same way; ``method`` is ``fallback`` (counted apart in reports).
3. In that text: thousands separators (``12,345.6``) are removed; where the model restates the
   question first ("the percentile of the value 76.5 is 80%"), only the text after the first
   "is" / "are" / "equals" / "=" is read (if it holds a number); the first number is taken, with
   scientific notation (``1.2e-3``, ``1.2 x 10^3``, ``1.2*10^-3``, the times sign); a fraction ``a/b`` is divided;
   a range (``a-b``, ``a to b``, ``between a and b``) gives its midpoint; a percent sign makes a
   probability a share (``37%`` -> 0.37) and is ignored for a percentile.
4. Nothing numeric: ``unparseable``. A percentile outside [0, 100] or a probability outside [0, 1]:
   ``out_of_range``. Both are dropped from the error and counted, as the paper does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
"""The tags the questions ask the answer inside (the harness stops at the closing one)."""
_TAG = re.compile(rf"{ANSWER_OPEN}(.*?)({ANSWER_CLOSE}|$)", re.IGNORECASE | re.DOTALL)
_NUMBER = r"[-+\u2212]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TIMES_TEN = re.compile(rf"({_NUMBER})\s*(?:x|\u00d7|\*)\s*10\s*(?:\^|\*\*)\s*\(?([-+\u2212]?\d+)\)?")
_FRACTION = re.compile(rf"({_NUMBER})\s*/\s*({_NUMBER})")
_STATED = re.compile(r"\b(?:is|are|equals|would be|of about)\b|=", re.IGNORECASE)
_RANGE = re.compile(rf"({_NUMBER})\s*%?\s*(?:-|\u2013|to|and)\s*({_NUMBER})\s*(%?)", re.IGNORECASE)
_FIRST = re.compile(rf"({_NUMBER})\s*(%?)")
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?![\d,])")
RANGES = {"percentiles": (0.0, 100.0), "probabilities": (0.0, 1.0)}


@dataclass(frozen=True)
class Parsed:
    """value (None unless status is ok), status (ok, unparseable, out_of_range), method (tags, open_tag, fallback)."""

    value: float | None
    status: str
    method: str


def _float(text: str) -> float:
    return float(text.replace("\u2212", "-"))


def read_number(text: str, task: str) -> float | None:
    """The number a piece of answer text states (rule 3), or None."""
    text = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text.strip())
    if (stated := _STATED.search(text)) and _FIRST.search(text, stated.end()):
        text = text[stated.end() :]  # "the percentile of the value 76.5 is 80": the number after "is"
    first = _FIRST.search(text)
    if first is None:
        return None
    if m := _TIMES_TEN.match(text, first.start()):
        return _float(m.group(1)) * 10 ** int(_float(m.group(2)))
    if m := _FRACTION.match(text, first.start()):
        numerator, denominator = _float(m.group(1)), _float(m.group(2))
        return numerator / denominator if denominator else None
    value, percent = _float(first.group(1)), first.group(2) == "%"
    if m := _RANGE.match(text, first.start()):
        low, high = _float(m.group(1)), _float(m.group(2))
        value, percent = (low + high) / 2, percent or m.group(3) == "%"
    if percent and task == "probabilities":
        value /= 100
    return value


def parse_answer(text: str, task: str) -> Parsed:
    """Parse one raw answer for ``task`` (percentiles, probabilities, sampling); see the module docstring."""
    text = text or ""
    tagged = _TAG.search(text)
    if tagged:
        inner, method = tagged.group(1), "tags" if tagged.group(2) else "open_tag"
    else:
        inner, method = text, "fallback"
    value = read_number(inner, task)
    if value is None or not math.isfinite(value):
        return Parsed(None, "unparseable", method)
    low, high = RANGES.get(task, (-math.inf, math.inf))
    if not low <= value <= high:
        return Parsed(None, "out_of_range", method)
    return Parsed(value, "ok", method)

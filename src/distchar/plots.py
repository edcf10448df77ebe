"""The shared figure style, and saving figures so that they render offline."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

TYPE_PALETTE = dict(zip(("q", "k", "v", "o", "gate", "up", "down"), sns.color_palette("tab10", 7), strict=True))
"""One colour per projection type, the same in every figure of every stage."""


def use_style() -> None:
    """Apply the house style: seaborn's whitegrid, compact fonts."""
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)


def quantisation_note(dtypes: set[str]) -> str:
    """A caption fragment for quantised weights, whose values carry a quantisation noise floor."""
    quantised = sorted(d for d in dtypes if d.startswith(("Q", "IQ", "TQ")))
    if not quantised:
        return ""
    return f"quantised weights ({', '.join(quantised)}): spectra carry a quantisation noise floor"


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Save as PNG (120 dpi) without a timestamp, so reruns give the same bytes; close the figure.

    Figures laid out by constrained layout are saved as they are: a tight bounding box would draw
    the whole figure a second time, the largest share of a stage's figure time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bbox = None if fig.get_layout_engine() is not None else "tight"
    fig.savefig(path, dpi=120, bbox_inches=bbox, metadata={"Software": None})
    plt.close(fig)
    return path

"""Progress bars for every loop that can take more than a few seconds (tqdm, with ETA and units).

Where the bar goes depends on who is watching:
- in JupyterLab, a widget bar (``tqdm.auto`` with ipywidgets);
- under ``dvc repro`` the stage notebooks run in papermill kernels whose output is relayed line
  by line to the terminal (``distchar.run_notebook`` sets ``DISTCHAR_PROGRESS=text``): a text bar,
  redrawn at most every few seconds so that the relayed log stays readable;
- ``DISTCHAR_QUIET=1`` (the command line's ``--quiet``, and the tests) turns every bar off.
Bars go to stderr and never into a result file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

QUIET = "DISTCHAR_QUIET"
MODE = "DISTCHAR_PROGRESS"


def quiet() -> bool:
    """Whether bars are off (``DISTCHAR_QUIET`` set to anything but '', '0' or 'false')."""
    return os.environ.get(QUIET, "").lower() not in ("", "0", "false")


def progress(
    iterable: Iterable[T] | None = None,
    *,
    desc: str,
    unit: str,
    total: int | None = None,
    disable: bool = False,
    **kwargs,
):
    """A tqdm bar over ``iterable`` (or a manual one with ``total``), off under ``DISTCHAR_QUIET`` or
    ``disable`` (for instance on every process but the main one)."""
    if os.environ.get(MODE) == "text":
        from tqdm.std import tqdm

        kwargs.setdefault("mininterval", 5.0)
    else:
        from tqdm.auto import tqdm
    kwargs.setdefault("delay", 1.0)  # a loop that ends sooner shows no bar at all
    return tqdm(iterable, desc=desc, unit=unit, total=total, disable=disable or quiet(), dynamic_ncols=True, **kwargs)


def each(iterable: Iterable[T], *, desc: str, unit: str, total: int | None = None) -> Iterator[T]:
    """``for x in each(xs, desc=..., unit=...)``: the items of ``iterable`` with a bar."""
    with progress(iterable, desc=desc, unit=unit, total=total) as bar:
        yield from bar

"""What every stage notebook does first: find the project, validate params.yaml, set up logging."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from distchar.config import Params, load_params
from distchar.errors import DistcharError


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) with a dvc.yaml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").exists():
            return folder
    raise FileNotFoundError(f"No dvc.yaml at or above {here}; open the notebook inside the distchar repository.")


def open_stage(stage: str) -> Params:
    """Change to the project root (papermill and JupyterLab start elsewhere) and validate params.yaml.

    Notebooks call this first, so an invalid params.yaml stops every stage before it does work.
    """
    os.chdir(project_root())
    _show_bad_input_as_one_sentence()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {stage} %(levelname)s %(message)s", force=True)
    return load_params("params.yaml")


def _show_bad_input_as_one_sentence() -> None:
    """In a kernel, print a DistcharError as its sentence instead of a traceback, and still fail."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def handler(shell, etype, value, tb, tb_offset=None):
        shell._showtraceback(etype, value, [f"{etype.__name__}: {value}"])

    shell.set_custom_exc((DistcharError,), handler)

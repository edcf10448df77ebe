"""A pipeline stage's command: validate params.yaml, then execute the stage's notebook in papermill.

``python -m distchar.run_notebook NOTEBOOK OUTPUT [-p NAME VALUE ...]`` is what dvc.yaml runs. It
relays the kernel's output as papermill's ``--log-output`` does, and when the notebook stops on a
``DistcharError`` (bad input), it prints where the executed notebook with the traceback is, then
the one sentence as the last line (``error: ...``), and exits with status 2 as the command line
does; any other failure keeps papermill's traceback (status 1).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from distchar.config import load_params
from distchar.errors import DistcharError
from distchar.progress import MODE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distchar.run_notebook", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path, help="the stage notebook under notebooks/")
    parser.add_argument("output", type=Path, help="where the executed notebook goes (results/notebooks/...)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--params-file", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    try:
        load_params(args.params_file)
    except DistcharError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import papermill
    from papermill.exceptions import PapermillExecutionError

    args.output.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ[MODE] = "text"  # the kernel inherits it: text bars, relayed line by line
    try:
        papermill.execute_notebook(
            str(args.notebook), str(args.output), parameters=dict(args.parameter),
            kernel_name="python3", log_output=True, progress_bar=False,
        )  # fmt: skip
    except PapermillExecutionError as exc:
        if exc.ename != DistcharError.__name__:
            raise
        sys.stdout.flush()
        print(f"The executed notebook, with the traceback: {args.output}", file=sys.stderr)
        print(f"error: {exc.evalue}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

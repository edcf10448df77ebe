"""The one exception type that user-facing code raises for bad input."""

import sys
from collections.abc import Callable


class DistcharError(Exception):
    """Bad input, explained in one sentence that names the culprit (a params key, a file, a layer).

    Stages and command-line entry points catch it and print only the message, so a researcher
    sees one clear sentence instead of a traceback.
    """


def command(work: Callable[[], object]) -> int:
    """Run ``work()`` as a command line: a DistcharError becomes its one sentence on stderr and
    exit status 2 (no traceback); success is 0."""
    try:
        work()
    except DistcharError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

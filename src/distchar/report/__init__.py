"""An offline HTML report of the pipeline's results: the claims' verdicts, every study's tables and
figures, and hover charts of the spectra and the layer distances (docs/report.md).

``build_report(root, out)`` writes it; ``python -m distchar.report`` is its command line.
"""

from distchar.report.build import build_report, main

__all__ = ["build_report", "main"]

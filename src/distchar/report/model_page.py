"""The one-page summary ``distchar analyze`` writes beside its outputs: stages 01-04 of one model,
drawn by the report's own sections (the same tables, hover charts and figures as its main page)."""

from __future__ import annotations

from pathlib import Path

from distchar.report.html import PageLink, esc, note, page
from distchar.report.pages import _figures, distances_section, extract_section, svd_section
from distchar.report.sources import ResultsTree
from distchar.results import stage_folder


def model_page(root: Path, model: str, source: str) -> str:
    """The page of ``model``, read from ``root/results`` (the layout of the pipeline's results)."""
    tree = ResultsTree(root)
    folder = stage_folder("powerlaw", model)
    body = [
        f"<h1>{esc(model)}</h1>",
        f'<p class="lead">Stages 01-04 of the pipeline on <code>{esc(source)}</code>, run by '
        "<code>distchar analyze</code>: the projection matrices, their singular values, the cosine distances "
        "between layers and the power-law fits of those distances against the rival families.</p>",
        "<h2>In words</h2>",
        tree.findings(f"file {folder.relative_to('results').as_posix()}/description.md", heading_level=3),
        "<h2>04 Power law: fits of the layer distances against the rivals</h2>",
        tree.findings(f"powerlaw {model}"),
        *_figures(tree, "powerlaw", model, [("ccdf.png", "Empirical CCDFs with the fitted candidates")]),
        "<h2>01 Extract: the projection matrices</h2>",
        *extract_section(tree, model),
        "<h2>02 SVD: singular values of every matrix</h2>",
        *svd_section(tree, model),
        "<h2>03 Distances: cosine distances between layers</h2>",
        *distances_section(tree, model),
    ]
    if tree.missing:
        body.append(note("Missing from this analysis: " + ", ".join(f"<code>{esc(m)}</code>" for m in tree.missing)))
    link = PageLink("index.html", model)
    return page(f"distchar analyze: {model}", "\n".join(body), [link], link.file)


def write_model_page(root: Path, model: str, source: str) -> Path:
    """Write ``root/index.html``; return its path."""
    path = Path(root) / "index.html"
    path.write_text(model_page(root, model, source), encoding="utf-8")
    return path

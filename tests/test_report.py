"""The HTML report (distchar.report), built from the repository's committed results plus real
figures and arrays, and opened from disk in a real browser (Debian's Chromium driven by
Playwright) with the network out of reach: no console error, no page error, no request off disk,
no broken image; the verdicts first on the index; hover charts that answer.

Figures and arrays are DVC-cached, never in git, so the committed tree has none: for one model
the stages' own writers (stage 02's profiles and spectra figure, stage 03 whole) run on a
synthetic spectrum, and the other model keeps only its committed files, which is what a clone
without ``dvc pull`` shows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, open_offline

import distchar.report.build as build
from distchar.errors import DistcharError
from distchar.plots import save_figure
from distchar.report import build_report, main
from distchar.results import STAGE_FOLDERS, stage_folder
from distchar.spectra.profiles import save_profiles, stack_by_type
from distchar.stages.distances import run_distances
from distchar.stages.svd import plot_spectra

PAGES = ["index.html", "main.html", "odds.html", "robustness.html", "nsga2.html"]
WITH_FIGURES = "all-minilm-l6-v2"
WITHOUT_FIGURES = "smollm2-135m-instruct"


def committed_results(root: Path) -> Path:
    """The repository's results/ as git tracks it (tables and metrics; no figure, no array)."""
    listed = subprocess.run(["git", "ls-files", "-z", "results"], cwd=REPO, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / name, root / name)
    return root


def add_figures(root: Path, model: str, scratch: Path) -> None:
    """``model``'s stage 02 profiles and figure, and stage 03's arrays and figures, written by the
    stages' own code from a synthetic heavy-tailed spectrum of the model's shape."""
    summary = json.loads((root / stage_folder("extract", model) / "summary.json").read_text())
    rng = np.random.default_rng(0)
    values = {(layer, kind): np.sort(rng.pareto(2.0, 32) + 1)[::-1] * (1 + 0.2 * layer)
              for layer in range(summary["n_layers"]) for kind in summary["types"]}  # fmt: skip
    arrays = stack_by_type(values)
    svd = root / stage_folder("svd", model)
    save_profiles(arrays, svd)
    save_figure(plot_spectra(arrays, model, ""), svd / "spectra.png")
    run_distances(model, svd, scratch)
    for name in ("distances.npz", "heatmaps.png", "gap.png", "cross_types.png"):
        shutil.copyfile(scratch / name, root / stage_folder("distances", model) / name)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """(project root, report folder, pages) of one build."""
    base = tmp_path_factory.mktemp("report")
    root = committed_results(base / "project")
    add_figures(root, WITH_FIGURES, base / "distances")
    out = base / "report"
    return root, out, build_report(root, out)


def test_every_page_opens_offline_with_its_figures_hover_charts_and_the_verdicts_first(report, browser):
    root, out, pages = report
    assert [p.name for p in pages] == PAGES
    images = 0
    for path in pages:
        page, problems = open_offline(browser, path)
        assert page.locator("nav a").evaluate_all("links => links.map(a => a.getAttribute('href'))") == PAGES
        assert page.locator('nav a[aria-current="page"]').get_attribute("href") == path.name
        widths = page.locator("img").evaluate_all("imgs => imgs.map(i => [i.alt, i.naturalWidth])")
        assert all(width > 0 for _, width in widths), f"{path.name}: broken images {widths}"
        images += len(widths)
        if path.name == "main.html":
            assert page.locator("svg.hover title").count() > 1000  # a tooltip per point, band and cell
            readout = page.locator(".chart-box", has=page.locator(".cells")).first.locator("output.readout")
            page.locator("svg.hover .cells rect").nth(3).hover()
            assert "cosine distance" in readout.inner_text()
            readout = page.locator(".chart-box", has=page.locator(".band")).first.locator("output.readout")
            page.locator("svg.hover .band").nth(2).hover(position={"x": 2, "y": 2})  # above the lines
            assert "i = 3: s_i from" in readout.inner_text()
            page.locator("svg.hover circle.hit").first.hover()
            assert "layer 0" in page.locator("output.readout").first.inner_text()
        if path.name == "index.html":
            assert page.locator("main h2").first.inner_text() == "Verdicts"
            box = page.locator("section.verdicts").bounding_box()
            assert box is not None and box["y"] < 300  # at the top, under the title
            claims = {c for table in (root / stage_folder("evaluate")).glob("*/claims.csv")
                      for c in pd.read_csv(table)["claim"]}  # fmt: skip
            shown = page.locator("section.verdicts .verdict").all_inner_texts()
            assert claims and claims <= set(shown)
            shot = out.parent / "index.png"
            page.screenshot(path=shot, full_page=True)
            print(f"screenshot of the index: {shot}")
        page.close()
        assert not problems, f"{path.name}: {problems}"
    # every PNG of the pipeline's stages there, embedded (a published profile's, results/powered/, is the docs')
    stages = set(STAGE_FOLDERS.values())
    pngs = [p for p in (root / "results").rglob("*.png") if p.relative_to(root / "results").parts[0] in stages]
    assert images == len(pngs) == 4


def test_a_missing_figure_is_a_note_naming_it_and_how_to_get_it_not_a_broken_image(report):
    _, out, _ = report
    text = (out / "main.html").read_text()
    missing = f"<code>{stage_folder('svd', WITHOUT_FIGURES).as_posix()}/</code> is not here"
    assert missing in text and f"<code>dvc pull svd@{WITHOUT_FIGURES}</code>" in text
    assert f"dvc repro svd@{WITHOUT_FIGURES}" in text
    assert f"<code>{stage_folder('distances', WITHOUT_FIGURES).as_posix()}/distances.npz</code> is not here" in text
    assert text.count("<img ") == 4 and text.count('src="data:image/png;base64,') == 4
    index = (out / "index.html").read_text()
    assert (
        "4 figures shown; " in index and f"<li><code>results/02_svd/{WITHOUT_FIGURES}/spectra.png</code></li>" in index
    )
    robustness = (out / "robustness.html").read_text()  # "no sign of masking" is a finding, not a verdict
    assert "no sign of masking" in robustness and '<span class="verdict bad">no sign' not in robustness


def test_two_builds_give_the_same_bytes_and_a_rebuild_replaces_the_report(report, tmp_path):
    root, _, pages = report
    again = build_report(root, tmp_path / "again")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in pages]
    assert build_report(root, tmp_path / "again") == again  # an earlier report is replaced, not refused
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == sorted(PAGES)


def test_a_failure_while_writing_leaves_the_earlier_report_whole(report, tmp_path, monkeypatch):
    root, _, _ = report
    out = tmp_path / "report"
    build_report(root, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []

    def failing_page(*args):
        calls.append(args)
        if len(calls) == 3:
            raise OSError("disk full")
        return "<!DOCTYPE html>\n"

    monkeypatch.setattr(build, "page", failing_page)
    with pytest.raises(OSError, match="disk full"):
        build_report(root, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no scratch folder left


def test_no_results_folder_is_one_sentence_naming_it(tmp_path, capsys):
    with pytest.raises(DistcharError, match=f"{tmp_path / 'results'} does not exist"):
        build_report(tmp_path, tmp_path / "report")
    assert main(["--root", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {tmp_path / 'results'} does not exist") and error.count("\n") == 1
    assert not (tmp_path / "report").exists()


def test_an_out_folder_holding_more_than_a_report_is_left_alone(report):
    root, _, _ = report
    with pytest.raises(DistcharError, match="holds more than a report's .html pages"):
        build_report(root, root / "results")
    assert (root / "results" / "07_evaluate" / "odds" / "claims.csv").is_file()

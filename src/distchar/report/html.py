"""HTML pieces of the report: escaped text, the findings' markdown, tables, verdict badges, figures
or the note that stands in for a missing one, and the page around them.

Everything a page needs is inside it (styles, the hover readout's few lines of script, figures as
data URIs, the system's own fonts), so a page opened from disk, mailed or archived never reaches
the network. The markdown is the small subset ``distchar.findings`` and the stages write
(paragraphs, pipe tables, ``- `` lists, ``#`` headings, ``**bold**`` and ``code``): rendering it
here keeps the numbers of the report and of the docs one text.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

VERDICT_WORDS = {
    "yes": "good",
    "helps": "good",
    "better": "good",
    "no": "bad",
    "hurts": "bad",
    "worse": "bad",
    "inconclusive": "open",
    "underpowered": "weak",
}
"""First word of a verdict (stage 07's claims, studies 09 and 10) -> its badge's colour class."""

VERDICT_COLUMNS = ("claim", "verdict")
"""Table columns whose cells are verdicts (other cells may start with "no" without being one)."""

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_NUMBER = re.compile(r"^[+-]?(\d|\.\d)")


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def inline(text: str) -> str:
    """One line of markdown: escaped, with ``code`` and **bold** as HTML."""
    return _BOLD.sub(r"<strong>\1</strong>", _CODE.sub(r"<code>\1</code>", esc(text)))


def verdict_class(text: str) -> str | None:
    words = re.sub(r"[*`]", "", text).strip().split(maxsplit=1)
    return VERDICT_WORDS.get(words[0].lower()) if words else None


def badge(text: str) -> str:
    """A verdict as a coloured badge (plain text where the first word is no verdict word)."""
    kind = verdict_class(text)
    return f'<span class="verdict {kind}">{inline(text)}</span>' if kind else inline(text)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[str] = ()) -> str:
    """A table of HTML cells; cells that start with a number, and columns named in ``numeric``, align right."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for name, cell in zip(header, row, strict=True):
            plain = re.sub(r"<[^>]+>", "", cell)
            right = name in numeric or bool(_NUMBER.match(plain))
            cells.append(f'<td class="num">{cell}</td>' if right else f"<td>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip()[1:-1].split("|")]


def _markdown_table(lines: list[str]) -> str:
    header = _cells(lines[0])
    rows = [_cells(line) for line in lines[2:]]
    verdicts = {i for i, h in enumerate(header) if h.lower() in VERDICT_COLUMNS}
    html_rows = [[badge(c) if i in verdicts else inline(c) for i, c in enumerate(row)] for row in rows]
    return table([inline(h) for h in header], html_rows)


def markdown(text: str, heading_level: int = 4) -> str:
    """The findings' markdown as HTML; ``#`` headings become ``<h{heading_level}>`` and below."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if lines and lines[0].startswith("#"):
            hashes = len(lines[0]) - len(lines[0].lstrip("#"))
            level = min(heading_level + hashes - 1, 6)
            out.append(f"<h{level}>{inline(lines[0].lstrip('#').strip())}</h{level}>")
            lines = lines[1:]
        if not lines:
            continue
        if all(line.startswith("|") for line in lines) and len(lines) >= 2:
            out.append(_markdown_table(lines))
        elif all(line.startswith("- ") for line in lines):
            out.append("<ul>" + "".join(f"<li>{inline(line[2:])}</li>" for line in lines) + "</ul>")
        else:
            out.append(f"<p>{inline(' '.join(line.strip() for line in lines))}</p>")
    return "\n".join(out)


def note(text: str) -> str:
    """A visible note where something is missing: which file, and the command that brings it."""
    return f'<p class="missing">{text}</p>'


def png_figure(path: Path, shown_as: str, caption: str) -> str | None:
    """``path`` embedded as a data URI in a captioned figure, or None where it is no PNG (absent,
    or a half-pulled file) so that no page carries a broken image."""
    if not path.is_file():
        return None
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        return None
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{esc(caption)}">'
        f"<figcaption>{inline(caption)} (<code>{esc(shown_as)}</code>)</figcaption></figure>"
    )


@dataclass(frozen=True)
class PageLink:
    """A page of the report: its file and its name in the navigation bar."""

    file: str
    name: str


STYLE = """
:root { color-scheme: light; }
body { margin: 0; color: #1d2330; background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
nav { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: .3rem 1.4rem;
  padding: .55rem 1.5rem; background: #1d2b4a; }
nav a { color: #cfd8ea; text-decoration: none; padding-bottom: 2px; }
nav a:hover { color: #fff; }
nav a[aria-current="page"] { color: #fff; font-weight: 600; border-bottom: 2px solid #f0b429; }
main { max-width: 1240px; margin: 0 auto; padding: .5rem 1.5rem 4rem; }
h1 { font-size: 1.6rem; margin: 1rem 0 .3rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .4rem; padding-bottom: .2rem; border-bottom: 1px solid #dde2ea; }
h3 { font-size: 1.1rem; margin: 1.5rem 0 .3rem; }
h4 { font-size: 1rem; margin: 1.1rem 0 .3rem; }
p.lead { color: #4a5366; margin-top: 0; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f2f4f8;
  padding: 0 .2rem; border-radius: 3px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: 13px; }
th, td { border-bottom: 1px solid #e1e5ec; padding: .22rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f5f9; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.verdict { display: inline-block; padding: 0 .45rem; border-radius: .7rem; white-space: nowrap; }
.verdict.good { background: #d4f0da; } .verdict.bad { background: #f8d6d2; }
.verdict.weak { background: #fcefc4; } .verdict.open { background: #e5e8ee; }
.verdict strong { font-weight: 600; }
section.verdicts { background: #f7f9fc; border: 1px solid #dde2ea; border-radius: 6px; padding: .2rem 1.1rem .6rem; }
section.verdicts h2 { border: 0; margin-top: .8rem; }
.missing { border-left: 4px solid #f0b429; background: #fffaeb; padding: .35rem .7rem; margin: .6rem 0; }
figure { margin: .8rem 0 1.2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e7ee; }
figcaption { color: #566074; font-size: 12.5px; }
.facts { color: #4a5366; }
.chart-box { margin: .6rem 0 1.2rem; }
.panels { display: flex; flex-wrap: wrap; gap: .4rem 1rem; }
svg.chart text { fill: #2d3446; }
svg.chart text.title { font-weight: 600; }
svg.chart .hit:hover { stroke: #111; stroke-width: 1.5; }
svg.chart .band { fill: transparent; }
svg.chart .band:hover { fill: rgba(29, 43, 74, .08); }
svg.chart polyline.layer:hover { stroke-width: 3; }
svg.chart .cells rect:hover { stroke: #fff; stroke-width: .12; }
output.readout { display: block; min-height: 1.4em; padding: .15rem .5rem; background: #f3f5f9;
  font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: #1d2b4a; }
details summary { cursor: pointer; color: #1d2b4a; }
"""

READOUT_SCRIPT = """
document.addEventListener("mouseover", function (event) {
  var mark = event.target, svg = mark.closest ? mark.closest("svg.hover") : null;
  var title = svg ? mark.querySelector(":scope > title") : null;
  var readout = title ? svg.closest(".chart-box").querySelector("output.readout") : null;
  if (readout) { readout.textContent = title.textContent; }
});
"""
"""Copies the hovered mark's <title> into its chart's readout line: no waiting for the tooltip."""


def page(title: str, body: str, links: Sequence[PageLink], current: str) -> str:
    """A whole page: the navigation bar (the current page marked), the body, inline style and script."""
    marked = ' aria-current="page"'
    nav = "".join(
        f'<a href="{link.file}"{marked if link.file == current else ""}>{esc(link.name)}</a>' for link in links
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, '
        f'initial-scale=1"><link rel="icon" href="data:,"><title>{esc(title)}</title><style>{STYLE}</style></head>\n'
        f"<body><nav>{nav}</nav>\n<main>\n{body}\n</main>\n<script>{READOUT_SCRIPT}</script></body></html>\n"
    )

"""Hand-written SVG charts with hover readouts: line charts, singular-value spectra, distance heatmaps.

The report opens offline from disk, so a charting library from a CDN is out, and a vendored one
would be a dependency for three kinds of chart. Every hoverable mark carries a ``<title>`` (the
browser's own tooltip, no script needed) and the page's few lines of script copy that text into
the readout under the chart at once (``distchar.report.html``). Colours are the figures' own: the
projection types' palette of ``distchar.plots`` and matplotlib's viridis (layer depth) and magma
(distance, log scale), so an interactive chart reads like the PNG beside it. Coordinates are
rounded to 0.1 px and numbers formatted with fixed specs: the same arrays give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.colors import to_hex

from distchar.plots import TYPE_PALETTE
from distchar.report.html import esc

TYPE_COLOURS = {t: to_hex(c) for t, c in TYPE_PALETTE.items()}
"""Projection type -> the hex colour every PNG figure gives it."""

FONT = 11
READOUT_HINT = "hover a mark for its values"


def _n(value: float) -> str:
    """A pixel coordinate, rounded so that reruns and platforms write the same text."""
    text = f"{value:.1f}"
    return "0" if text == "-0.0" else text.removesuffix(".0")


def number(value: float) -> str:
    """A value in a tooltip or tick label: four significant digits."""
    return f"{value:.4g}"


def colour(map_name: str, fraction: float) -> str:
    """The colour of matplotlib's ``map_name`` at ``fraction`` (0..1), as hex."""
    return to_hex(matplotlib.colormaps[map_name](min(max(fraction, 0.0), 1.0)))


@dataclass(frozen=True)
class Axis:
    """Data range [lo, hi] drawn onto pixels [start, end], linear or log10."""

    lo: float
    hi: float
    start: float
    end: float
    log: bool = False

    @classmethod
    def fit(cls, values: Sequence[float], start: float, end: float, log: bool = False, pad: float = 0.04) -> Axis:
        """An axis over the finite ``values`` (positive ones on a log axis), padded by ``pad`` of its span."""
        data = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
        if not data:
            return cls(1.0, 10.0, start, end, log) if log else cls(0.0, 1.0, start, end, log)
        lo, hi = min(data), max(data)
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        span = hi - lo
        lo, hi = lo - pad * span, hi + pad * span
        return cls(10**lo, 10**hi, start, end, True) if log else cls(lo, hi, start, end, False)

    def _t(self, value: float) -> float:
        return math.log10(value) if self.log else value

    def __call__(self, value: float) -> float:
        lo, hi = self._t(self.lo), self._t(self.hi)
        return self.start + (self._t(value) - lo) / (hi - lo) * (self.end - self.start)

    def ticks(self, count: int = 5) -> list[float]:
        """Round values inside the range: 1-2-5 steps, or decades (with 2 and 5 when they are few)."""
        if self.log:
            first, last = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            steps = (1, 2, 5) if last - first <= 2 else (1,)
            found = [m * 10.0**e for e in range(first, last + 1) for m in steps]
            inside = [t for t in found if self.lo <= t <= self.hi]
            if len(inside) < 3:  # within about a decade: round linear steps read better
                return [t for t in Axis(self.lo, self.hi, self.start, self.end).ticks(count) if t > 0]
            return inside
        raw = (self.hi - self.lo) / count
        step = 10 ** math.floor(math.log10(raw))
        step *= next(m for m in (1, 2, 5, 10) if raw <= step * m)
        first = math.ceil(self.lo / step)
        return [round(i * step, 12) for i in range(first, math.floor(self.hi / step) + 1)]


def _tick_label(value: float) -> str:
    return f"{value:g}"


def frame(x: Axis, y: Axis, x_label: str, y_label: str, title: str, x_ticks: list[float] | None = None) -> list[str]:
    """Grid lines, tick labels, axis labels and the title of a plot area spanned by ``x`` and ``y``."""
    top, bottom, left, right = y.end, y.start, x.start, x.end
    out = [
        f'<rect x="{_n(left)}" y="{_n(top)}" width="{_n(right - left)}" height="{_n(bottom - top)}" '
        'fill="#fbfcfe" stroke="#c8ced8"/>'
    ]
    for t in y.ticks():
        py = _n(y(t))
        out.append(f'<line x1="{_n(left)}" x2="{_n(right)}" y1="{py}" y2="{py}" stroke="#e4e8ef"/>')
        out.append(
            f'<text x="{_n(left - 4)}" y="{py}" text-anchor="end" dominant-baseline="middle">{_tick_label(t)}</text>'
        )
    for t in x.ticks() if x_ticks is None else x_ticks:
        px = _n(x(t))
        out.append(f'<line x1="{px}" x2="{px}" y1="{_n(top)}" y2="{_n(bottom)}" stroke="#e4e8ef"/>')
        out.append(f'<text x="{px}" y="{_n(bottom + FONT + 3)}" text-anchor="middle">{_tick_label(t)}</text>')
    out.append(
        f'<text x="{_n((left + right) / 2)}" y="{_n(bottom + 2 * FONT + 8)}" text-anchor="middle">{esc(x_label)}</text>'
    )
    out.append(
        f'<text transform="translate({_n(left - 40)} {_n((top + bottom) / 2)}) rotate(-90)" '
        f'text-anchor="middle">{esc(y_label)}</text>'
    )
    out.append(f'<text x="{_n(left)}" y="{_n(top - 8)}" class="title">{esc(title)}</text>')
    return out


def svg(width: float, height: float, body: list[str], label: str) -> str:
    """An SVG element whose marks feed the page's hover readout."""
    return (
        f'<svg class="chart hover" width="{_n(width)}" height="{_n(height)}" viewBox="0 0 {_n(width)} '
        f'{_n(height)}" role="img" aria-label="{esc(label)}" font-size="{FONT}">' + "".join(body) + "</svg>"
    )


def with_readout(*charts: str) -> str:
    """Charts side by side over one readout line, which shows the hovered mark's title."""
    return (
        f'<div class="chart-box"><div class="panels">{"".join(charts)}</div>'
        f'<output class="readout">{READOUT_HINT}</output></div>'
    )


def _steps(x_values: Sequence[float]) -> list[float] | None:
    """Integer ticks for integer x values (layers, indices), at most about eight of them."""
    if not x_values or any(float(v) != int(v) for v in x_values):
        return None
    lo, hi = int(min(x_values)), int(max(x_values))
    step = max(1, math.ceil((hi - lo + 1) / 8))
    return list(range(lo, hi + 1, step))


@dataclass(frozen=True)
class Series:
    """One line of a line chart: its name, colour, and (x, y, tooltip) points."""

    name: str
    colour: str
    points: list[tuple[float, float, str]]


def line_chart(
    series: list[Series],
    title: str,
    x_label: str,
    y_label: str,
    log_y: bool = False,
    width: float = 400,
    height: float = 250,
) -> str:
    """Lines with a dot per point; hovering a dot reads its tooltip. Points that cannot be drawn
    (NaN; non-positive on a log axis) break the line instead of being dropped silently into it."""
    left, right, top, bottom = 58, width - 64, 26, height - 42
    xs = [p[0] for s in series for p in s.points]
    x = Axis.fit(xs, left, right, pad=0.03)
    y = Axis.fit([p[1] for s in series for p in s.points], bottom, top, log=log_y)
    body = frame(x, y, x_label, y_label, title, _steps(xs))

    def drawable(value: float) -> bool:
        return math.isfinite(value) and (value > 0 or not log_y)

    for s in series:
        runs, run = [], []
        for px, py, _ in s.points:
            if drawable(py):
                run.append(f"{_n(x(px))},{_n(y(py))}")
            elif run:
                runs.append(run)
                run = []
        runs.append(run)
        body.append(f'<g class="series" stroke="{s.colour}" fill="{s.colour}">')
        body += [f'<polyline points="{" ".join(r)}" fill="none" stroke-width="1.3"/>' for r in runs if len(r) > 1]
        body += [
            f'<circle class="hit" cx="{_n(x(px))}" cy="{_n(y(py))}" r="2.6"><title>{esc(tip)}</title></circle>'
            for px, py, tip in s.points
            if drawable(py)
        ]
        body.append("</g>")
    for i, s in enumerate(series):  # legend, right of the plot
        ly = top + 4 + i * (FONT + 4)
        body.append(
            f'<rect x="{_n(right + 10)}" y="{_n(ly)}" width="10" height="3" fill="{s.colour}"/>'
            f'<text x="{_n(right + 24)}" y="{_n(ly + 3)}" dominant-baseline="middle">{esc(s.name)}</text>'
        )
    return svg(width, height, body, title)


def spectra_panel(
    kind: str,
    values: np.ndarray,
    layers: np.ndarray,
    y_range: tuple[float, float],
    width: float = 250,
    height: float = 230,
) -> str:
    """One projection type's singular values s_i against the index i, a line per layer (viridis:
    dark is the first layer), log scale. A line's tooltip names its layer; under the lines, a band
    per index reads the spread of s_i over the layers, so the readout answers wherever the pointer is."""
    left, right, top, bottom = 52, width - 8, 24, height - 40
    k = values.shape[1]
    x = Axis(0.5, k + 0.5, left, right)
    y = Axis.fit(list(y_range), bottom, top, log=True)
    body = frame(x, y, "index i", "singular value s_i", kind, [1, *(t for t in x.ticks(4) if t >= max(3, k / 8))])
    band = (right - left) / k
    for i in range(k):
        column = values[:, i]
        finite = np.isfinite(column)
        if not finite.any():
            continue
        low, high = int(np.nanargmin(column)), int(np.nanargmax(column))
        tip = (
            f"{kind}, i = {i + 1}: s_i from {number(column[low])} (layer {layers[low]}) to "
            f"{number(column[high])} (layer {layers[high]}), median {number(float(np.nanmedian(column)))}"
        )
        body.append(
            f'<rect class="band" x="{_n(left + i * band)}" y="{_n(top)}" width="{_n(band)}" '
            f'height="{_n(bottom - top)}"><title>{esc(tip)}</title></rect>'
        )
    depth = max(len(layers) - 1, 1)
    for row, (layer, s) in enumerate(zip(layers, values, strict=True)):
        points = [f"{_n(x(i + 1))},{_n(y(v))}" for i, v in enumerate(s) if math.isfinite(v) and v > 0]
        if len(points) < 2:
            continue
        ratio = f", s_1 / s_{k} = {number(s[0] / s[-1])}" if s[-1] > 0 else ""
        tip = f"{kind}, layer {layer}: s_1 = {number(s[0])}, s_{k} = {number(s[-1])}{ratio}"
        body.append(
            f'<polyline class="layer" points="{" ".join(points)}" fill="none" '
            f'stroke="{colour("viridis", row / depth)}" stroke-width="1.2"><title>{esc(tip)}</title></polyline>'
        )
    return svg(width, height, body, f"singular values of {kind} by layer")


def heatmap_panel(kind: str, distances: np.ndarray, layers: np.ndarray, size: float = 210) -> str:
    """One projection type's cosine distances between layers, a cell per layer pair (magma, log
    scale as in the PNG: distances span decades; layer 0 bottom left). Each cell's tooltip reads
    the pair and its distance; a zero (a layer with itself) or undefined distance is drawn grey."""
    n = len(layers)
    left, top, bar = 44, 24, 12
    cell = size / max(n, 1)
    positive = distances[np.isfinite(distances) & (distances > 0)]
    lo, hi = (float(positive.min()), float(positive.max())) if positive.size else (1.0, 1.0)
    span = math.log10(hi) - math.log10(lo) or 1.0

    def fill(value: float) -> str:
        if not (math.isfinite(value) and value > 0):
            return "#d9dde4"
        return colour("magma", (math.log10(value) - math.log10(lo)) / span)

    body = [
        f'<text x="{left}" y="{top - 8}" class="title">{esc(kind)}</text>',
        f'<g class="cells" transform="translate({left} {top}) scale({_n(cell)})">',
    ]
    for i in range(n):
        for j in range(n):
            value = float(distances[i, j])
            words = "undefined" if not math.isfinite(value) else number(value)
            pair = f"layer {layers[i]} with itself" if i == j else f"layers {layers[i]} and {layers[j]}"
            body.append(
                f'<rect x="{i}" y="{n - 1 - j}" width="1" height="1" fill="{fill(value)}">'
                f"<title>{esc(kind)}, {pair}: cosine distance {words}</title></rect>"
            )
    body.append("</g>")
    step = max(1, math.ceil(n / 4))
    ticks = [*(t for t in range(0, n - 1, step) if n - 1 - t >= step / 2), n - 1] if n else []
    for t in ticks:
        centre = (t + 0.5) * cell
        body.append(
            f'<text x="{_n(left + centre)}" y="{_n(top + size + FONT + 2)}" text-anchor="middle">{layers[t]}</text>'
        )
        body.append(
            f'<text x="{left - 4}" y="{_n(top + size - centre)}" text-anchor="end" '
            f'dominant-baseline="middle">{layers[t]}</text>'
        )
    body.append(
        f'<text x="{_n(left + size / 2)}" y="{_n(top + size + 2 * FONT + 6)}" text-anchor="middle">layer</text>'
    )
    x_bar, steps = left + size + 10, 24  # the colour bar: low at the bottom, as in the PNG
    for s in range(steps):
        body.append(
            f'<rect x="{_n(x_bar)}" y="{_n(top + size * (steps - 1 - s) / steps)}" width="{bar}" '
            f'height="{_n(size / steps + 0.3)}" fill="{colour("magma", s / (steps - 1))}"/>'
        )
    for value, py in ((hi, top + 4), (math.sqrt(lo * hi), top + size / 2), (lo, top + size - 4)):
        body.append(f'<text x="{_n(x_bar + bar + 3)}" y="{_n(py)}" dominant-baseline="middle">{number(value)}</text>')
    return svg(left + size + bar + 58, top + size + 2 * FONT + 12, body, f"cosine distances between layers, {kind}")

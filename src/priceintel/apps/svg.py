"""Self-contained SVG charts (no script) for the printable reports: lines per series over a date or number axis
(with an optional shaded band), or bars per category."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from priceintel.apps.charts import SERIES_COLORS

PALETTE = ["#ff9900", "#0071ce", "#cc0000", "#2a9d2a", "#7b3fa0", "#e377c2", "#17becf", "#8c564b"]


def _fmt(v: float) -> str:
    """Short axis label."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.1f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round tick values covering [lo, hi]."""
    if not np.isfinite(lo) or not np.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


@dataclass(frozen=True)
class _Plot:
    """The plot area of an SVG chart and its scales: y over [lo, hi], x over [x0, x1]."""

    left: float
    top: float
    pw: float
    ph: float
    lo: float
    hi: float
    x0: float = 0.0
    x1: float = 1.0

    def py(self, v: float) -> float:
        return self.top + self.ph - (v - self.lo) / (self.hi - self.lo) * self.ph

    def px(self, v: float) -> float:
        return self.left + (v - self.x0) / (self.x1 - self.x0) * self.pw


def _y_range(data: pd.DataFrame, y: str, band: tuple[str, str] | None, kind: str) -> tuple[float, float]:
    """The y range (5% padding; bars include 0) of the values and their band."""
    vals = data[y].astype(float)
    if band:
        vals = pd.concat([vals, data[band[0]].astype(float), data[band[1]].astype(float)]).dropna()
    lo, hi = float(vals.min()), float(vals.max())
    if kind == "bar":
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = (hi - lo) * 0.05 or 1.0
    return lo - pad, hi + pad


def _y_axis(plot: _Plot, y_label: str) -> list[str]:
    """Grid lines with tick labels, and the y axis title."""
    parts = [
        f'<line x1="{plot.left}" x2="{plot.left + plot.pw}" y1="{plot.py(t):.1f}" y2="{plot.py(t):.1f}" '
        f'stroke="#e5e5e5"/><text x="{plot.left - 6}" y="{plot.py(t) + 4:.1f}" font-size="11" '
        f'text-anchor="end">{_fmt(t)}</text>'
        for t in _ticks(plot.lo, plot.hi)
    ]
    if y_label:
        mid = plot.top + plot.ph / 2
        parts.append(
            f'<text x="14" y="{mid}" font-size="11" transform="rotate(-90 14 {mid})" '
            f'text-anchor="middle">{html.escape(y_label)}</text>'
        )
    return parts


def _bars(plot: _Plot, data: pd.DataFrame, x: str, y: str) -> list[str]:
    """One bar per row, x as category labels."""
    esc = html.escape
    bw = plot.pw / max(len(data), 1)
    parts = []
    for i, (label, v) in enumerate(zip(data[x].astype(str), data[y].astype(float))):
        y0, y1 = plot.py(max(v, 0)), plot.py(min(v, 0))
        parts.append(
            f'<rect x="{plot.left + i * bw + bw * 0.15:.1f}" y="{y0:.1f}" width="{bw * 0.7:.1f}" '
            f'height="{max(y1 - y0, 0.5):.1f}" fill="{PALETTE[1]}"><title>{esc(label)}: {v:.3g}</title></rect>'
            f'<text x="{plot.left + (i + 0.5) * bw:.1f}" y="{plot.top + plot.ph + 14}" font-size="10" '
            f'text-anchor="middle">{esc(label[:14])}</text>'
        )
    return parts


def _series(plot: _Plot, i: int, name: Any, part: pd.DataFrame, y: str, band, dots: bool, legend: bool) -> list[str]:
    """One series of a line chart: its band, line, point marks and legend entry."""
    color = SERIES_COLORS.get(str(name), PALETTE[i % len(PALETTE)])
    part = part.sort_values("_x")
    px, py = plot.px, plot.py
    parts = []
    if band and part[band[0]].notna().any():
        b = part.dropna(subset=list(band))
        pts = [f"{px(a):.1f},{py(v):.1f}" for a, v in zip(b["_x"], b[band[1]])]
        pts += [f"{px(a):.1f},{py(v):.1f}" for a, v in zip(b["_x"][::-1], b[band[0]][::-1])]
        parts.append(f'<polygon points="{" ".join(pts)}" fill="{color}" fill-opacity="0.15" stroke="none"/>')
    pts_line = " ".join(f"{px(a):.1f},{py(v):.1f}" for a, v in zip(part["_x"], part[y].astype(float)) if np.isfinite(v))
    w = 2.5 if str(name) == "ours" else 1.5
    parts.append(f'<polyline points="{pts_line}" fill="none" stroke="{color}" stroke-width="{w}"/>')
    if dots:
        parts.extend(
            f'<circle cx="{px(a):.1f}" cy="{py(v):.1f}" r="2.5" fill="{color}"/>'
            for a, v in zip(part["_x"], part[y].astype(float))
            if np.isfinite(v)
        )
    if legend and i < 14:
        ly = plot.top + 12 + i * 16
        parts.append(
            f'<rect x="{plot.left + plot.pw + 10}" y="{ly - 8}" width="12" height="3" fill="{color}"/>'
            f'<text x="{plot.left + plot.pw + 26}" y="{ly - 3}" font-size="11">{html.escape(str(name)[:16])}</text>'
        )
    return parts


def _lines(plot: _Plot, data: pd.DataFrame, x: str, y: str, series: str | None, band) -> list[str]:
    """A date/number x axis and one polyline per series value (optionally a shaded band)."""
    xs = data[x]
    is_time = pd.api.types.is_datetime64_any_dtype(xs)
    xnum = (xs.astype("datetime64[ns]").astype("int64") / 86_400e9) if is_time else xs.astype(float)
    x0, x1 = float(xnum.min()), float(xnum.max())
    if x1 <= x0:  # a single x: centre it
        x0, x1 = x0 - 1, x1 + 1
    plot = replace(plot, x0=x0, x1=x1)
    distinct = sorted(set(xnum.loc[data.index].tolist()))
    parts = []
    xticks = distinct if len(distinct) <= 5 else [x0 + (x1 - x0) * k / 4 for k in range(5)]
    for v in xticks:
        label = pd.Timestamp(round(v * 86_400e9)).strftime("%Y-%m-%d") if is_time else _fmt(v)
        parts.append(
            f'<text x="{plot.px(v):.1f}" y="{plot.top + plot.ph + 16}" font-size="11" text-anchor="middle">'
            f"{label}</text>"
        )
    dots = len(distinct) <= 40  # few points: mark each (a single day would draw no line at all)
    bottom = plot.top + plot.ph
    parts.append(f'<line x1="{plot.left}" x2="{plot.left + plot.pw}" y1="{bottom}" y2="{bottom}" stroke="#999"/>')
    groups = data.assign(_x=xnum.loc[data.index]).groupby(series, sort=True) if series else [("", data.assign(_x=xnum))]
    for i, (name, part) in enumerate(groups):
        parts.extend(_series(plot, i, name, part, y, band, dots, bool(series)))
    return parts


def svg_chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    series: str | None = None,
    title: str = "",
    y_label: str = "",
    kind: str = "line",
    width: int = 900,
    height: int = 300,
    band: tuple[str, str] | None = None,
) -> str:
    """A self-contained SVG chart (no script): lines per series over a date/number x, or bars per x label.

    kind="line": one polyline per `series` value (optionally a shaded `band` of (lo, hi) columns);
    kind="bar": one bar per row, x as category labels.
    """
    left, right, top, bottom = 60, 130, 30, 40
    pw, ph = width - left - right, height - top - bottom
    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{esc(title)}" style="max-width:{width}px">',
        f'<text x="{left}" y="18" font-size="14" font-weight="600">{esc(title)}</text>',
    ]
    data = df.dropna(subset=[y]) if len(df) else df
    if data.empty:
        parts.append(f'<text x="{left}" y="{top + ph / 2}" font-size="13" fill="#666">no data for these filters</text>')
        return "".join(parts) + "</svg>"
    plot = _Plot(left, top, pw, ph, *_y_range(data, y, band, kind))
    parts += _y_axis(plot, y_label)
    parts += _bars(plot, data, x, y) if kind == "bar" else _lines(plot, data, x, y, series, band)
    return "".join(parts) + "</svg>"

"""Exports of the current dashboard view: CSV, Excel (typed, a sheet per table), a printable HTML report
with inline SVG charts, and its PDF printed by headless Debian Chromium."""

from __future__ import annotations

import html
import io
import math
import threading
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from priceintel.apps.queries import (
    Filters,
    _spec,
    chart_frame,
    check_filters,
    iter_rows,
    page,
    summary,
)

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "MAX_EXPORT_ROWS",
    "TITLES",
    "export_frames",
    "report_html",
    "svg_chart",
    "to_csv",
    "to_excel",
    "to_pdf",
]

#: rows an export may hold (an Excel sheet holds 1,048,576); narrower filters are asked for beyond it
MAX_EXPORT_ROWS = 250_000
#: rows of the view's table printed in the HTML/PDF report (the exports hold all of them)
REPORT_ROWS = 100
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TITLES = {
    "prices": "Competitor prices",
    "forecasts": "Price forecasts",
    "elasticity": "Price elasticity",
    "alerts": "Price alerts",
}
PALETTE = ["#ff9900", "#0071ce", "#cc0000", "#2a9d2a", "#7b3fa0", "#e377c2", "#17becf", "#8c564b"]
SERIES_COLORS = {
    "ours": "#111111",
    "amazon": "#ff9900",
    "walmart": "#0071ce",
    "target": "#cc0000",
    "critical": "#cc0000",
    "warning": "#e6a100",
    "info": "#0071ce",
}


# --------------------------------------------------------------------------------------- frames


def _summary_frame(view: str, filters: Filters, figures: dict) -> pd.DataFrame:
    """Two-column table (item, value): the filters, then the headline figures."""
    rows = [(f"filter: {k}", v) for k, v in filters.describe()]
    rows += [(k.replace("_", " "), v) for k, v in figures.items()]
    rows.append(("exported at (UTC)", datetime.now(UTC).replace(tzinfo=None, microsecond=0)))
    return pd.DataFrame(rows, columns=["item", "value"])


def export_frames(engine: Engine, view: str, filters: Filters) -> dict[str, pd.DataFrame]:
    """The whole current view for export: {view: every filtered row, 'chart': the chart data,
    'summary': filters and headline figures}. Rows are streamed from the database in chunks; a view
    holding more than MAX_EXPORT_ROWS rows under the filters is refused with a ValueError."""
    _spec(view)
    check_filters(engine, filters)
    figures = summary(engine, view, filters)
    n = int(figures.get("rows") or 0)
    if n > MAX_EXPORT_ROWS:
        raise ValueError(
            f"the {view} view holds {n:,} rows under these filters; exports are limited to "
            f"{MAX_EXPORT_ROWS:,}: narrow the dates or pick a retailer, category or product"
        )
    chunks = list(iter_rows(engine, view, filters))
    rows = pd.concat(chunks, ignore_index=True) if chunks else page(engine, view, filters, limit=1).rows.iloc[:0]
    return {
        view: rows,
        "chart": chart_frame(engine, view, filters).copy(),
        "summary": _summary_frame(view, filters, figures),
    }


def to_csv(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV (header, no index; dates as YYYY-MM-DD, timestamps ISO, empty for missing)."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            if getattr(s.dt, "tz", None) is not None:
                out[col] = s.dt.strftime("%Y-%m-%dT%H:%M:%S%z")
            elif (s.dropna().dt.normalize() == s.dropna()).all():
                out[col] = s.dt.strftime("%Y-%m-%d")
    return out.to_csv(index=False).encode("utf-8")


def _excel_ready(df: pd.DataFrame) -> pd.DataFrame:
    """Excel cannot hold time zones: timestamps become naive UTC; nullable types become plain objects."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s) and getattr(s.dt, "tz", None) is not None:
            out[col] = s.dt.tz_convert("UTC").dt.tz_localize(None)
        elif isinstance(s.dtype, (pd.BooleanDtype, pd.Int64Dtype)):
            out[col] = s.astype(object).where(s.notna(), None)
        elif s.dtype == object:
            out[col] = s.map(lambda v: v.replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v)
    return out


def _sheet_name(name: str, used: set[str]) -> str:
    """A valid, unique Excel sheet name (≤ 31 chars, no []:*?/\\)."""
    base = "".join(c for c in str(name) if c not in "[]:*?/\\")[:31] or "sheet"
    out, i = base, 2
    while out.lower() in used:
        out = f"{base[:28]}_{i}"
        i += 1
    used.add(out.lower())
    return out


def _column_values(s: pd.Series) -> list:
    """Plain Python cell values of one column: dates as date (an Excel date), timestamps as datetime,
    numbers as int/float, booleans as bool, missing as None."""
    if pd.api.types.is_datetime64_any_dtype(s):
        nn = s.dropna()
        if (nn.dt.normalize() == nn).all():
            return [None if pd.isna(v) else v.date() for v in s]
        return [None if pd.isna(v) else v.to_pydatetime() for v in s]
    if pd.api.types.is_float_dtype(s):
        return [None if math.isnan(v) else float(v) for v in s.to_numpy()]
    return [None if _missing(v) else (v.item() if isinstance(v, np.generic) else v) for v in s.astype(object)]


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def to_excel(frames: dict[str, pd.DataFrame]) -> bytes:
    """An .xlsx workbook with one sheet per frame: typed cells (dates are Excel dates, numbers numbers,
    booleans booleans), a bold shaded frozen header with an auto-filter, and column widths fitted to the
    content. Written in openpyxl's streaming (write-only) mode."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    if not frames:
        raise ValueError("to_excel: no frames to write")
    wb = Workbook(write_only=True)
    used: set[str] = set()
    font, fill = Font(bold=True, color="FFFFFF"), PatternFill("solid", fgColor="1F3A5F")
    for name, df in frames.items():
        data = _excel_ready(df)
        ws = wb.create_sheet(_sheet_name(name, used))
        cols = [_column_values(data[c]) for c in data.columns]
        for i, col in enumerate(data.columns, start=1):
            s = data[col]
            if pd.api.types.is_datetime64_any_dtype(s):
                nn = s.dropna()
                width = 11 if (nn.dt.normalize() == nn).all() else 20
            elif pd.api.types.is_float_dtype(s):
                width = 12
            else:
                lens = s.head(500).dropna().astype(str).str.len()
                width = int(min(60, max(8, lens.max() if len(lens) else 8)))
            ws.column_dimensions[get_column_letter(i)].width = max(width, len(str(col)) + 2)
        ws.freeze_panes = "A2"
        if len(data.columns):
            ws.auto_filter.ref = f"A1:{get_column_letter(len(data.columns))}{len(data) + 1}"
        header = []
        for col in data.columns:
            cell = WriteOnlyCell(ws, value=str(col))
            cell.font, cell.fill = font, fill
            header.append(cell)
        ws.append(header)
        for row in zip(*cols):
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ SVG


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
    vals = data[y].astype(float)
    if band:
        vals = pd.concat([vals, data[band[0]].astype(float), data[band[1]].astype(float)]).dropna()
    lo, hi = float(vals.min()), float(vals.max())
    if kind == "bar":
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad

    def py(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph

    for t in _ticks(lo, hi):
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#e5e5e5"/>'
            f'<text x="{left - 6}" y="{py(t) + 4:.1f}" font-size="11" text-anchor="end">{_fmt(t)}</text>'
        )
    if y_label:
        parts.append(
            f'<text x="14" y="{top + ph / 2}" font-size="11" transform="rotate(-90 14 {top + ph / 2})" '
            f'text-anchor="middle">{esc(y_label)}</text>'
        )
    if kind == "bar":
        n = len(data)
        bw = pw / max(n, 1)
        for i, (label, v) in enumerate(zip(data[x].astype(str), data[y].astype(float))):
            y0, y1 = py(max(v, 0)), py(min(v, 0))
            parts.append(
                f'<rect x="{left + i * bw + bw * 0.15:.1f}" y="{y0:.1f}" width="{bw * 0.7:.1f}" '
                f'height="{max(y1 - y0, 0.5):.1f}" fill="{PALETTE[1]}"><title>{esc(label)}: {v:.3g}</title></rect>'
                f'<text x="{left + (i + 0.5) * bw:.1f}" y="{top + ph + 14}" font-size="10" '
                f'text-anchor="middle">{esc(label[:14])}</text>'
            )
        return "".join(parts) + "</svg>"
    xs = data[x]
    is_time = pd.api.types.is_datetime64_any_dtype(xs)
    xnum = (xs.astype("datetime64[ns]").astype("int64") / 86_400e9) if is_time else xs.astype(float)
    x0, x1 = float(xnum.min()), float(xnum.max())
    if x1 <= x0:  # a single x: centre it
        x0, x1 = x0 - 1, x1 + 1
    distinct = sorted(set(xnum.loc[data.index].tolist()))

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * pw

    xticks = distinct if len(distinct) <= 5 else [x0 + (x1 - x0) * k / 4 for k in range(5)]
    for v in xticks:
        label = pd.Timestamp(round(v * 86_400e9)).strftime("%Y-%m-%d") if is_time else _fmt(v)
        parts.append(f'<text x="{px(v):.1f}" y="{top + ph + 16}" font-size="11" text-anchor="middle">{label}</text>')
    dots = len(distinct) <= 40  # few points: mark each (a single day would draw no line at all)
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#999"/>')
    groups = data.assign(_x=xnum.loc[data.index]).groupby(series, sort=True) if series else [("", data.assign(_x=xnum))]
    for i, (name, part) in enumerate(groups):
        color = SERIES_COLORS.get(str(name), PALETTE[i % len(PALETTE)])
        part = part.sort_values("_x")
        if band and part[band[0]].notna().any():
            b = part.dropna(subset=list(band))
            pts = [f"{px(a):.1f},{py(v):.1f}" for a, v in zip(b["_x"], b[band[1]])]
            pts += [f"{px(a):.1f},{py(v):.1f}" for a, v in zip(b["_x"][::-1], b[band[0]][::-1])]
            parts.append(f'<polygon points="{" ".join(pts)}" fill="{color}" fill-opacity="0.15" stroke="none"/>')
        pts = " ".join(f"{px(a):.1f},{py(v):.1f}" for a, v in zip(part["_x"], part[y].astype(float)) if np.isfinite(v))
        w = 2.5 if str(name) == "ours" else 1.5
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{w}"/>')
        if dots:
            parts.extend(
                f'<circle cx="{px(a):.1f}" cy="{py(v):.1f}" r="2.5" fill="{color}"/>'
                for a, v in zip(part["_x"], part[y].astype(float))
                if np.isfinite(v)
            )
        if series and i < 14:
            ly = top + 12 + i * 16
            parts.append(
                f'<rect x="{left + pw + 10}" y="{ly - 8}" width="12" height="3" fill="{color}"/>'
                f'<text x="{left + pw + 26}" y="{ly - 3}" font-size="11">{esc(str(name)[:16])}</text>'
            )
    return "".join(parts) + "</svg>"


def _charts(view: str, chart: pd.DataFrame, filters: Filters) -> list[str]:
    """The report's SVG charts of one view."""
    if view == "prices":
        return [
            svg_chart(chart, "ds", "mean_price", "series", "Mean price per day", "price"),
            svg_chart(
                chart[chart["series"] != "ours"],
                "ds",
                "mean_gap_pct",
                "series",
                "Mean gap to our price (%)",
                "% vs ours",
            ),
        ]
    if view == "forecasts":
        title = "Forecast with 80% band" if filters.skus else "Mean forecast change vs last price (%), 80% band"
        return [
            svg_chart(chart, "ds", "value", "series", title, "price" if filters.skus else "%", band=("lo_80", "hi_80"))
        ]
    if view == "elasticity":
        return [
            svg_chart(
                chart, "category", "mean_elasticity", None, "Mean elasticity per category", "elasticity", kind="bar"
            ),
            svg_chart(
                chart, "category", "mean_change_pct", None, "Mean recommended change per category (%)", "%", kind="bar"
            ),
        ]
    return [svg_chart(chart, "ds", "n", "series", "Alerts per day and severity", "alerts")]


# ----------------------------------------------------------------------------------------- report

REPORT_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #111; margin: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 18px 0 6px; }
.meta { color: #555; font-size: 12px; margin-bottom: 12px; }
table { border-collapse: collapse; font-size: 11px; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 5px; text-align: left; vertical-align: top; }
th { background: #1f3a5f; color: #fff; }
table.rows td { max-width: 320px; overflow-wrap: anywhere; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv { width: auto; min-width: 320px; } table.kv td:first-child { color: #555; }
.charts svg { display: block; margin: 8px 0; page-break-inside: avoid; }
.note { color: #555; font-size: 11px; }
@page { size: A4 landscape; margin: 12mm; }
@media print { body { margin: 0; } tr { page-break-inside: avoid; } thead { display: table-header-group; } }
"""


def cell_text(v: Any) -> tuple[str, bool]:
    """(display text, is_number) of one table cell: yes/no, day or minute timestamps, 1,234.50, blanks for NULL."""
    if v is None or (not isinstance(v, (str, bytes, list, tuple, dict)) and pd.isna(v)):
        return "", False
    if isinstance(v, (bool, np.bool_)):  # rows of a typed page hold numpy scalars
        return ("yes" if v else "no"), False
    if isinstance(v, (float, np.floating)):
        return f"{v:,.2f}", True
    if isinstance(v, (int, np.integer)):
        return f"{v:,}", True
    if isinstance(v, pd.Timestamp):
        day = v == v.normalize() and v.tzinfo is None
        return v.strftime("%Y-%m-%d" if day else "%Y-%m-%d %H:%M"), False
    return str(v), False


def html_table(df: pd.DataFrame, css: str = "", empty: str | None = None) -> str:
    """An escaped HTML table of a frame (numbers in `td.num`); `empty`: text of the one row shown when there are
    none."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for rec in df.itertuples(index=False):
        cells = []
        for v in rec:
            text, num = cell_text(v)
            cells.append(f'<td class="num">{html.escape(text)}</td>' if num else f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body and empty is not None:
        body.append(f'<tr><td class="pi-empty" colspan="{max(len(df.columns), 1)}">{html.escape(empty)}</td></tr>')
    return f'<table class="{html.escape(css)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


#: columns of each view's printed table (the exports hold every column)
REPORT_COLUMNS = {
    "prices": ["ds", "retailer", "sku", "name", "category", "price", "in_stock", "promo", "our_price", "gap_pct"],
    "forecasts": [
        "ds",
        "retailer",
        "sku",
        "name",
        "chosen_model",
        "yhat",
        "lo_80",
        "hi_80",
        "lo_95",
        "hi_95",
        "last_price",
        "change_pct",
        "p_change",
    ],
    "elasticity": [
        "sku",
        "name",
        "category",
        "elasticity",
        "ci_lo",
        "ci_hi",
        "elasticity_pooled",
        "current_price",
        "recommended_price",
        "change_pct",
        "expected_profit",
        "reason",
    ],
    "alerts": [
        "alert_id",
        "ds",
        "severity",
        "state",
        "kind",
        "retailer",
        "sku",
        "name",
        "price",
        "reference_price",
        "reason",
    ],
}


def report_html(engine: Engine, view: str, filters: Filters) -> str:
    """A self-contained printable HTML report of the view: title, filters, headline figures, SVG charts
    and the first REPORT_ROWS rows of its table (no script, no external resource)."""
    _spec(view)
    check_filters(engine, filters)
    figures = summary(engine, view, filters)
    chart = chart_frame(engine, view, filters)
    first = page(engine, view, filters, limit=REPORT_ROWS)
    shown = first.rows[[c for c in REPORT_COLUMNS[view] if c in first.rows]]
    kv = pd.DataFrame([(k, v) for k, v in filters.describe()], columns=["filter", "value"])
    figs = pd.DataFrame([(k.replace("_", " "), v) for k, v in figures.items()], columns=["figure", "value"])
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    n = int(figures.get("rows") or 0)
    more = (
        f'<p class="note">The first {len(first.rows)} of {n:,} rows; the CSV and Excel exports hold all.</p>'
        if first.has_more
        else ""
    )
    title = TITLES.get(view, view)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{REPORT_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<div class="meta">Price intelligence workbench · generated {now}</div>
<h2>Filters</h2>{html_table(kv, "kv filters")}
<h2>Summary</h2>{html_table(figs, "kv summary")}
<h2>Charts</h2><div class="charts">{"".join(_charts(view, chart, filters))}</div>
<h2>{html.escape(title)} ({n:,} rows)</h2>{html_table(shown, "rows")}{more}
</body></html>"""


# -------------------------------------------------------------------------------------------- PDF


def _print_pdf(source: str, timeout_ms: int) -> bytes:
    """Print HTML to PDF with sync Playwright and Debian Chromium (in the calling thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            pg = browser.new_page()
            pg.route(
                "**/*",
                lambda route: (
                    route.abort() if not route.request.url.startswith(("data:", "about:")) else route.continue_()
                ),
            )
            pg.set_content(source, wait_until="load", timeout=timeout_ms)
            return pg.pdf(
                format="A4",
                landscape=True,
                print_background=True,
                margin={"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"},
            )
        finally:
            browser.close()


def to_pdf(source: str, timeout: float = 60.0) -> bytes:
    """The PDF of an HTML document printed by headless /usr/bin/chromium (no network: external requests
    are refused). Runs Playwright in a worker thread, so it also works inside a running asyncio loop
    (a Voila/Jupyter kernel)."""
    if not isinstance(source, str) or not source.strip():
        raise ValueError("to_pdf: the HTML to print is empty")
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["pdf"] = _print_pdf(source, int(timeout * 1000))
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = err

    t = threading.Thread(target=work, name="priceintel-pdf", daemon=True)
    t.start()
    t.join(timeout + 30)
    if t.is_alive():
        raise RuntimeError(f"to_pdf: Chromium did not print within {timeout + 30:.0f} s")
    if "error" in result:
        err = result["error"]
        raise RuntimeError(f"to_pdf: printing with {CHROMIUM} failed: {' '.join(str(err).split())[:300]}") from err
    return result["pdf"]

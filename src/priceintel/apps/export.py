"""Exports of the current dashboard view: CSV, Excel (typed, a sheet per table), a printable HTML report
with inline SVG charts, and its PDF printed by headless Debian Chromium."""

from __future__ import annotations

import html
import io
import json
import math
import os
import threading
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from priceintel.apps.filters import Filters
from priceintel.apps.queries import chart_frame, check_filters, iter_rows, page, summary
from priceintel.apps.specs import view_spec
from priceintel.apps.svg import svg_chart
from priceintel.items import clean_text, formula_like, safe_frame

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "MAX_EXPORT_ROWS",
    "TITLES",
    "chromium_args",
    "export_frames",
    "report_html",
    "to_csv",
    "to_excel",
    "to_pdf",
]

#: rows an export may hold (an Excel sheet holds 1,048,576); narrower filters are asked for beyond it
MAX_EXPORT_ROWS = 250_000
#: rows of the view's table printed in the HTML/PDF report (the exports hold all of them)
REPORT_ROWS = 100
CHROMIUM = "/usr/bin/chromium"
#: Chromium's flags when printing (`chromium_args` adds --no-sandbox for root only)
CHROMIUM_ARGS = [
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


# --------------------------------------------------------------------------------------- frames


def _summary_frame(view: str, filters: Filters, figures: dict) -> pd.DataFrame:
    """Two-column table (item, value): the filters, then the headline figures."""
    rows: list[tuple[str, Any]] = [(f"filter: {k}", v) for k, v in filters.describe()]
    rows += [(k.replace("_", " "), v) for k, v in figures.items()]
    rows.append(("exported at (UTC)", datetime.now(UTC).replace(tzinfo=None, microsecond=0)))
    return pd.DataFrame(rows, columns=["item", "value"])


def export_frames(engine: Engine, view: str, filters: Filters) -> dict[str, pd.DataFrame]:
    """The whole current view for export: {view: every filtered row, 'chart': the chart data,
    'summary': filters and headline figures}. Rows are streamed from the database in chunks; a view
    holding more than MAX_EXPORT_ROWS rows under the filters is refused with a ValueError."""
    view_spec(view)
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


def to_csv(df: pd.DataFrame, header: bool = True) -> bytes:
    """UTF-8 CSV (header, no index, CRLF line ends; dates as YYYY-MM-DD, timestamps ISO, empty for missing).

    Text is made safe for spreadsheets (`items.safe_frame`): control characters are removed and a text cell
    that a spreadsheet would run as a formula (starting with = + - @ tab or CR) gets a leading single quote;
    numeric columns keep their numbers (a negative price stays -1.5). `header=False`: rows only (the next chunk
    of a streamed export)."""
    out = safe_frame(df)
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            if getattr(s.dt, "tz", None) is not None:
                out[col] = s.dt.strftime("%Y-%m-%dT%H:%M:%S%z")
            elif (s.dropna().dt.normalize() == s.dropna()).all():
                out[col] = s.dt.strftime("%Y-%m-%d")
    # RFC 4180 line ends: a field holding a CR or LF is then quoted (with "\n" ends a bare CR is not, and a
    # spreadsheet would start a new row there, which could begin with a formula)
    return out.to_csv(index=False, header=header, lineterminator="\r\n").encode("utf-8")


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


#: text openpyxl would store as an error cell instead of a string
_EXCEL_ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})


def _text_cell(ws: Any, value: Any) -> Any:
    """An Excel cell value for one exported value: text without control characters (openpyxl refuses them);
    text a spreadsheet would run as a formula (or read as an error code) becomes a string cell marked
    quote-prefixed, never a formula, showing exactly the text. Other values are returned unchanged."""
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, default=str, ensure_ascii=False)
    if not isinstance(value, str):
        return value
    text = clean_text(value)
    if not (formula_like(text) or text in _EXCEL_ERROR_CODES):
        return text
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"  # openpyxl makes a str starting with "=" a formula
    cell.quotePrefix = True  # Excel keeps it text even when the cell is edited
    return cell


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
        for j, c in enumerate(data.columns):
            if not (pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_datetime64_any_dtype(data[c])):
                cols[j] = [_text_cell(ws, v) for v in cols[j]]
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
            cell = WriteOnlyCell(ws, value=clean_text(str(col)))
            cell.data_type = "s"
            cell.font, cell.fill = font, fill
            header.append(cell)
        ws.append(header)
        for row in zip(*cols):
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---------------------------------------------------------------------------------- report charts


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
            svg_chart(chart, "ds", "value", "series", title, "price" if filters.skus else "%", band=("lo-80", "hi-80"))
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
        "lo-80",
        "hi-80",
        "lo-95",
        "hi-95",
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
    view_spec(view)
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


def chromium_args(euid: int | None = None) -> list[str]:
    """Chromium's flags for printing: its sandbox stays on, except for root (`euid` 0), where Chromium cannot
    start sandboxed and --no-sandbox is added."""
    euid = os.geteuid() if euid is None else euid
    return (["--no-sandbox"] if euid == 0 else []) + CHROMIUM_ARGS


def _only_data_urls(route: Any) -> None:
    """Route handler of the printing page: data: URIs load, every other request (http(s), file:, …) is refused."""
    if route.request.url.startswith("data:"):
        route.continue_()
    else:
        route.abort()


def _print_pdf(source: str, timeout_ms: int) -> bytes:
    """Print HTML to PDF with sync Playwright and Debian Chromium (in the calling thread): JavaScript off,
    Chromium sandboxed (unless root), no request leaves the page but data: URIs, no service worker, no
    download."""
    from playwright.sync_api import sync_playwright

    args = chromium_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=args, headless=True, chromium_sandbox="--no-sandbox" not in args
        )
        try:
            context = browser.new_context(java_script_enabled=False, service_workers="block", accept_downloads=False)
            context.route("**/*", _only_data_urls)
            pg = context.new_page()
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
    """The PDF of an HTML document printed by headless /usr/bin/chromium (JavaScript off, sandboxed unless
    root, no network: every request but a data: URI is refused; the charts are inline SVG and need no
    script). Runs Playwright in a worker thread, so it also works inside a running asyncio loop (a Voila/Jupyter
    kernel)."""
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

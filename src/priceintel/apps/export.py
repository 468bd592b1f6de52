"""Exports of the current dashboard view: CSV, Excel (typed, a sheet per table), a printable HTML report
with inline SVG charts, and its PDF printed by headless Debian Chromium."""

from __future__ import annotations

import html
import io
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from priceintel.apps.filters import Filters
from priceintel.apps.queries import chart_frame, check_filters, iter_rows, page, summary
from priceintel.apps.specs import view_spec
from priceintel.apps.svg import svg_chart
from priceintel.items import safe_frame

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "MAX_EXPORT_ROWS",
    "TITLES",
    "chromium_args",
    "export_frames",
    "parquet_chunks",
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


#: a view column's dtype kind (apps.specs) -> its Parquet type
_ARROW_TYPES = {"date": "date32", "ts": "timestamp[us, tz=UTC]", "str": "string", "float": "float64",
                "int": "int64", "bool": "bool"}  # fmt: skip


def parquet_schema(columns: dict[str, str]) -> Any:
    """The Arrow schema of a view's typed columns (`ViewSpec.columns`: name -> date|ts|str|float|int|bool)."""
    import pyarrow as pa

    types = {"date32": pa.date32(), "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"), "string": pa.string(),
             "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_()}  # fmt: skip
    return pa.schema([(name, types[_ARROW_TYPES[kind]]) for name, kind in columns.items()])


class _Drain(io.RawIOBase):
    """A write-only file whose bytes are taken out as they come (`take`), so a Parquet file streams."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._parts.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


def parquet_chunks(frames: Iterator[pd.DataFrame], columns: dict[str, str]) -> Iterator[bytes]:
    """A Parquet file (zstd) of typed frames, streamed: one row group per frame, its bytes yielded as soon as it
    is written (the footer last), so an export of any size holds one chunk in memory at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema(columns)
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        for frame in frames:
            data = frame[list(columns)].copy()
            for name, kind in columns.items():
                if kind == "date":
                    data[name] = data[name].dt.date.astype(object).where(data[name].notna(), None)
            writer.write_table(pa.Table.from_pandas(data, schema=schema, preserve_index=False))
            yield sink.take()
    finally:
        writer.close()
    yield sink.take()


def to_excel(frames: dict[str, pd.DataFrame]) -> bytes:
    """An .xlsx workbook with one sheet per frame (`apps.xlsx`: typed cells, never a formula, written
    column-wise in chunks of rows)."""
    from priceintel.apps import xlsx

    return xlsx.to_excel(frames)


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

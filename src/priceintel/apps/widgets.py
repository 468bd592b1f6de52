"""Shared pieces of the stakeholder apps: landing page, filter bar, paginated table, summary cards,
chart and export buttons, all driven by priceintel.apps.views (database-side filters and keyset pages).

Layout: one CSS block (APP_CSS) with a phone breakpoint; filters wrap and stack below 600 px, tables
scroll sideways inside their own box, so the page itself never scrolls sideways.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

#: (title, notebook, audience note, description) of every app on the landing page
APPS = [
    (
        "Price monitor",
        "price_monitor.ipynb",
        "",
        "Competitor prices next to ours per day: gaps, stock and promotions, with CSV / Excel / PDF export.",
    ),
    (
        "Forecasts",
        "forecasts.ipynb",
        "",
        "Where each competitor price is heading: chosen model, 80% and 95% bands, backtests.",
    ),
    (
        "Elasticity",
        "elasticity.ipynb",
        "",
        "How demand reacts to price, and the recommended price with its reason; what-if prices.",
    ),
    (
        "Alerts",
        "alerts.ipynb",
        "",
        "Price drops, undercuts and stock-outs: filter, acknowledge, resolve; edit the alert rules.",
    ),
    (
        "Match review",
        "match_review.ipynb",
        "for data scientists",
        "Confirm or reject the product matches the matcher was unsure about.",
    ),
]

APP_CSS = """<style>
.pi-app { width: 100%; max-width: 1400px; box-sizing: border-box; font-size: 14px; }
.pi-app h2 { font-size: 20px; margin: 8px 0; } .pi-app h3 { font-size: 16px; margin: 12px 0 6px; }
.pi-filters { display: flex; flex-flow: row wrap; gap: 6px 16px; align-items: flex-end; }
.pi-filters .widget-label { min-width: 0 !important; }
.pi-row { display: flex; flex-flow: row wrap; gap: 6px 12px; align-items: center; }
.pi-cards { display: flex; flex-flow: row wrap; gap: 10px; margin: 8px 0; }
.pi-card { background: #f4f6f8; border-radius: 8px; padding: 8px 12px; flex: 0 1 150px; line-height: 1.3; }
.pi-app .widget-html-content { line-height: 1.4; }
.pi-card .v { font-size: 20px; font-weight: 600; } .pi-card .k { color: #616e7c; font-size: 12px; }
.pi-table-box { width: 100%; max-width: 100%; box-sizing: border-box; overflow-x: auto;
                -webkit-overflow-scrolling: touch;
                border: 1px solid #e4e7eb; border-radius: 6px; }
table.pi-table { border-collapse: collapse; font-size: 13px; white-space: nowrap; width: 100%; }
table.pi-table th { position: sticky; top: 0; background: #f4f6f8; }
table.pi-table th, table.pi-table td { padding: 4px 8px; border-bottom: 1px solid #eee; text-align: left; }
table.pi-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pi-downloads a { display: inline-block; margin: 4px 10px 4px 0; padding: 4px 8px; background: #e6f4ea;
                  border-radius: 4px; color: #1e6b34; text-decoration: none; }
.pi-msg-err { color: #9b1c1c; } .pi-empty { color: #616e7c; }
.pi-landing { max-width: 1100px; }
.pi-apps { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 12px; }
.pi-apps a.pi-app-card { display: block; padding: 14px; border: 1px solid #d9e2ec; border-radius: 10px;
                         text-decoration: none; color: inherit; background: #fff; }
.pi-apps a.pi-app-card:hover { border-color: #1f6feb; }
.pi-app-card h3 { margin: 0 0 6px; color: #1f6feb; }
.pi-app-card p { margin: 0; color: #3e4c59; line-height: 1.45; }
.pi-app-card .aud { font-size: 12px; color: #8a5a00; }
.pi-run { padding: 10px 14px; border-radius: 8px; margin: 10px 0 16px; background: #f4f6f8; }
.pi-run .status-success { color: #1e6b34; font-weight: 600; }
.pi-run .status-failed { color: #9b1c1c; font-weight: 600; }
.pi-run .status-running { color: #8a5a00; font-weight: 600; }
.pi-topbar { display: flex; justify-content: space-between; align-items: center; flex-wrap: wrap; gap: 6px; }
.jp-OutputArea-output, .widget-output, .jp-RenderedHTMLCommon { max-width: 100%; overflow-x: auto; }
.pi-app .widget-html-content { max-width: 100%; overflow-x: auto; }
.pi-app .widget-dropdown, .pi-app .widget-text, .pi-app .widget-hbox { max-width: 100%; }
.pi-nav { margin-bottom: 4px; font-size: 13px; } .pi-nav a { text-decoration: none; color: #1f6feb; }
@media (max-width: 600px) {
  .pi-filters > .widget-inline-hbox, .pi-filters > .widget-box, .pi-filters > .jupyter-widgets,
  .pi-filters > * { width: 100% !important; max-width: 100% !important; flex: 1 1 100% !important; }
  .pi-filters select, .pi-filters input { width: 100% !important; }
  .pi-card { flex: 1 1 40%; padding: 6px 10px; } .pi-card .v { font-size: 16px; }
  .pi-app h2 { font-size: 18px; }
}
</style>"""

#: columns of dashboard pages that are keys for the database, not for people
_INTERNAL = {"neg_day", "date_key", "listing_id", "product_id", "unique_id"}


# --- landing page ------------------------------------------------------------------------------


def latest_run(engine=None, reports_dir: Path | None = None) -> dict | None:
    """The most recent pipeline run: task, status, started/finished (UTC), duration; None when there is none.

    Read from the pipeline_run table (a whole run is task 'pipeline'; a pipeline built without the CLI records
    its 'load' task), else from reports/last_run.json.
    """
    import sqlalchemy as sa

    if engine is not None:
        try:
            with engine.connect() as conn:
                row = (
                    conn.execute(
                        sa.text(
                            "SELECT run_id, task, status, started_at, finished_at, counts, errors FROM pipeline_run "
                            "ORDER BY (task = 'pipeline') DESC, started_at DESC, run_id DESC LIMIT 1"
                        )
                    )
                    .mappings()
                    .first()
                )
        except sa.exc.SQLAlchemyError:
            row = None
        if row is not None:
            out = dict(row)
            if out["finished_at"] is not None:
                out["seconds"] = (out["finished_at"] - out["started_at"]).total_seconds()
            out["source"] = "database"
            return out
    from priceintel import config

    path = (reports_dir or config.reports_dir()) / "last_run.json"
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
        finished = pd.Timestamp(data["finished_at"]).to_pydatetime() if data.get("finished_at") else None
        return {
            "run_id": None,
            "task": "pipeline",
            "status": data.get("status", "unknown"),
            "started_at": None,
            "finished_at": finished,
            "errors": {"error": data["error"]} if data.get("error") else None,
            "source": str(path),
        }
    return None


def _when(ts: datetime | None) -> str:
    """'2026-11-26 04:05 UTC' (or an em dash)."""
    if ts is None:
        return "—"
    ts = pd.Timestamp(ts)
    ts = ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def run_html(run: dict | None) -> str:
    """The 'latest pipeline run' panel of the landing page."""
    if run is None:
        return (
            '<div class="pi-run" id="pi-latest-run">No pipeline run recorded yet: run <code>make demo</code> '
            "or <code>priceintel run</code>.</div>"
        )
    status = html.escape(str(run.get("status")))
    parts = [
        f"<b>Latest pipeline run</b>{' #' + str(run['run_id']) if run.get('run_id') else ''} "
        f'({html.escape(str(run.get("task")))}): <span class="status-{status}">{status}</span>',
        f'finished <span class="run-time">{_when(run.get("finished_at"))}</span>'
        if run.get("finished_at")
        else f"started {_when(run.get('started_at'))}",
    ]
    if run.get("seconds") is not None:
        parts.append(f"took {run['seconds']:.0f} s")
    err = (run.get("errors") or {}).get("error") if isinstance(run.get("errors"), dict) else None
    if err:
        parts.append(f'<span class="status-failed">{html.escape(str(err))}</span>')
    return '<div class="pi-run" id="pi-latest-run">' + " · ".join(parts) + "</div>"


def landing_html(run: dict | None, apps: list = APPS) -> str:
    """The landing page: title, sign-out link, latest run and one card per app (relative links)."""
    cards = "".join(
        f'<a class="pi-app-card" href="{html.escape(nb)}" data-app="{html.escape(Path(nb).stem)}">'
        f"<h3>{html.escape(title)}</h3>"
        + (f'<div class="aud">{html.escape(aud)}</div>' if aud else "")
        + f"<p>{html.escape(desc)}</p></a>"
        for title, nb, aud, desc in apps
    )
    return (
        f'<div class="pi-app pi-landing"><div class="pi-topbar"><h2>Price Intelligence</h2>'
        f'<a class="pi-logout" href="../../logout">Sign out</a></div>'
        f'{run_html(run)}<div class="pi-apps">{cards}</div></div>'
    )


def landing(engine=None):
    """The landing-page widget (notebooks/apps/index.ipynb)."""
    import ipywidgets as w

    from priceintel.db.engine import get_engine

    engine = engine or get_engine()
    return w.HTML(APP_CSS + landing_html(latest_run(engine)))


# --- formatting --------------------------------------------------------------------------------


def _as_date(v: Any) -> date | None:
    """A date from a date, Timestamp or ISO string (None for None/NaT)."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return pd.Timestamp(v).date()


def frame_html(df: pd.DataFrame, css_class: str = "pi-table") -> str:
    """An escaped HTML table (numbers right-aligned) inside a box that scrolls sideways on its own."""
    from priceintel.apps.export import html_table

    df = df[[c for c in df.columns if c not in _INTERNAL]]
    return f'<div class="pi-table-box">{html_table(df, css_class, empty="no rows")}</div>'


#: friendlier names of dashboard.summary keys on the cards
CARD_LABELS = {
    "rows": "rows",
    "first_day": "from",
    "last_day": "to",
    "mean_gap_pct": "mean gap vs ours",
    "in_stock_share": "in stock",
    "promo_share": "on promotion",
    "mean_change_pct": "mean change",
    "mean_p_change": "P(price changes)",
    "run_id": "model run",
    "window_start": "estimated from",
    "window_end": "estimated to",
    "identified": "identified",
}


def summary_html(summary: dict) -> str:
    """Headline numbers as cards."""
    from priceintel.apps.export import cell_text

    cards = []
    for k, v in summary.items():
        if isinstance(v, (dict, list, tuple)):
            continue
        v = v.item() if hasattr(v, "item") else v
        key = str(k)
        if isinstance(v, float) and (key.endswith("_share") or key.endswith("p_change")):
            text = f"{v:.0%}"
        elif isinstance(v, float) and key.endswith("_pct"):
            text = f"{v:+.1f}%"
        elif isinstance(v, int) and key == "run_id":
            text = f"#{v}"
        else:
            text, _ = cell_text(v)
        label = CARD_LABELS.get(key, key.replace("_", " "))
        cards.append(
            f'<div class="pi-card" data-key="{html.escape(key)}"><div class="v">{html.escape(text or "—")}'
            f'</div><div class="k">{html.escape(label)}</div></div>'
        )
    return '<div class="pi-cards">' + "".join(cards) + "</div>"


def download_link(data: bytes, filename: str, mime: str) -> str:
    """An <a download> with the file in a data: URI (the browser saves it; nothing stays on the server)."""
    b64 = base64.b64encode(data).decode("ascii")
    size = f"{len(data) / 1024:,.0f} kB" if len(data) >= 1024 else f"{len(data)} B"
    return (
        f'<a class="pi-download" download="{html.escape(filename)}" href="data:{mime};base64,{b64}">'
        f"⬇ {html.escape(filename)} ({size})</a>"
    )


# --- the dashboard block -----------------------------------------------------------------------


class DashboardPanel:
    """Filters + summary cards + chart + keyset-paginated table + CSV/Excel/PDF export of one dashboard view.

    `figure(df)` turns dashboard.chart_frame into a plotly figure (None: no chart).
    """

    PAGE_SIZES = (25, 50, 100)

    def __init__(
        self, engine, view: str, title: str, figure: Callable[[pd.DataFrame], Any] | None = None, page_size: int = 25
    ):
        import ipywidgets as w

        from priceintel.apps import views as dashboard

        self.engine, self.view, self.title, self.figure = engine, view, title, figure
        self.dash = dashboard
        opts = dashboard.filter_options(engine)
        self.options = opts
        self._products = {label: sku for label, sku in opts.get("products", [])}
        self._skus = set(self._products.values())
        lab = {"description_width": "initial"}
        # the date range starts as this view's own span (prices: observed days, forecasts: forecast days, ...)
        lo, hi = self.span = self._view_span()
        self.start = w.DatePicker(description="From", value=lo, style=lab, layout=w.Layout(width="auto")).add_class(
            "pi-filter-start"
        )
        self.end = w.DatePicker(description="To", value=hi, style=lab, layout=w.Layout(width="auto")).add_class(
            "pi-filter-end"
        )
        self.retailers = w.SelectMultiple(
            options=list(opts.get("retailers", [])),
            description="Retailers",
            rows=min(4, max(2, len(opts.get("retailers", [])))),
            style=lab,
            layout=w.Layout(width="auto"),
        ).add_class("pi-filter-retailers")
        self.categories = w.SelectMultiple(
            options=list(opts.get("categories", [])),
            description="Categories",
            rows=min(4, max(2, len(opts.get("categories", [])))),
            style=lab,
            layout=w.Layout(width="auto"),
        ).add_class("pi-filter-categories")
        self.product = w.Combobox(
            options=list(self._products),
            placeholder="all (type a SKU or name)",
            description="Product",
            ensure_option=False,
            style=lab,
            layout=w.Layout(width="auto", min_width="260px"),
        ).add_class("pi-filter-product")
        self.reset_btn = w.Button(description="Reset filters", layout=w.Layout(width="auto")).add_class("pi-reset")
        self.page_size = w.Dropdown(
            options=list(self.PAGE_SIZES), value=page_size, description="Rows", style=lab, layout=w.Layout(width="auto")
        ).add_class("pi-page-size")
        self.prev_btn = w.Button(description="‹ Prev", layout=w.Layout(width="auto")).add_class("pi-prev")
        self.next_btn = w.Button(description="Next ›", layout=w.Layout(width="auto")).add_class("pi-next")
        self.status = w.HTML().add_class("pi-page-status")
        self.message = w.HTML()
        self.cards = w.HTML().add_class("pi-summary")
        self.chart = w.Output()
        self.table = w.HTML().add_class("pi-page")
        self.export_buttons = {
            kind: w.Button(description=label, icon="download", layout=w.Layout(width="auto")).add_class(
                f"pi-export-{kind}"
            )
            for kind, label in (("csv", "CSV"), ("xlsx", "Excel"), ("pdf", "PDF report"))
        }
        self.downloads = w.HTML().add_class("pi-downloads")
        self._cursors: list = [None]  # cursor of each page shown so far (Prev pops)
        self._page = None
        self._sku: str | None = None
        self._hold = False
        self._fig = None
        for wid in (self.start, self.end, self.retailers, self.categories):
            wid.observe(lambda _: self.refresh(), names="value")
        self.product.observe(self._product_typed, names="value")
        self.page_size.observe(lambda _: self.first_page(), names="value")
        self.prev_btn.on_click(lambda _: self.prev_page())
        self.next_btn.on_click(lambda _: self.next_page())
        self.reset_btn.on_click(lambda _: self.reset())
        for kind, btn in self.export_buttons.items():
            btn.on_click(lambda _, k=kind: self.export(k))
        self.widget = (
            w.VBox(
                [
                    w.HTML(f"<h2>{html.escape(title)}</h2>"),
                    w.Box(
                        [self.start, self.end, self.retailers, self.categories, self.product, self.reset_btn]
                    ).add_class("pi-filters"),
                    self.message,
                    self.cards,
                    self.chart,
                    w.Box([self.prev_btn, self.next_btn, self.page_size, self.status]).add_class("pi-row"),
                    self.table,
                    w.Box([w.HTML("<b>Export this view:</b>"), *self.export_buttons.values()]).add_class("pi-row"),
                    self.downloads,
                ]
            )
            .add_class("pi-dashboard")
            .add_class(f"pi-view-{view}")
        )
        self.refresh()

    # filters ---------------------------------------------------------------------------------

    def filters(self):
        """The dashboard.Filters the widgets describe now."""
        return self.dash.Filters(
            start=self.start.value,
            end=self.end.value,
            retailers=tuple(self.retailers.value),
            categories=tuple(self.categories.value),
            skus=(self._sku,) if self._sku else (),
        )

    def _product_typed(self, change: dict) -> None:
        text = (change["new"] or "").strip()
        sku = self._products.get(text) or (text if text in self._skus else None)
        if text and sku is None:
            return  # still typing: keep the current filter
        if sku != self._sku:
            self._sku = sku
            self.refresh()

    def _view_span(self) -> tuple[date | None, date | None]:
        """First and last day of this view's data now (days loaded since the app opened included)."""
        opts = self.dash.filter_options(self.engine)
        whole = self.dash.summary(self.engine, self.view, self.dash.Filters())
        lo = _as_date(whole.get("first_day") or whole.get("window_start")) or opts.get("min_date")
        hi = _as_date(whole.get("last_day") or whole.get("window_end")) or opts.get("max_date")
        return lo, hi

    def reset(self) -> None:
        """Back to every retailer, category and product over the whole date range (as it is now)."""
        self.span = self._view_span()
        self._hold = True
        try:
            self.start.value, self.end.value = self.span
            self.retailers.value, self.categories.value = (), ()
            self.product.value, self._sku = "", None
        finally:
            self._hold = False
        self.refresh()

    # data ------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Filters changed: new summary, chart and first page; old download links go (they were another view)."""
        if self._hold:
            return
        self.downloads.value = ""
        try:
            f = self.filters()
        except ValueError as exc:  # e.g. "From" after "To": say so, show nothing stale
            self.message.value = f'<div class="pi-msg-err">{html.escape(str(exc))}</div>'
            self.cards.value = self.table.value = self.status.value = ""
            if self._fig is not None:
                self._fig.data = ()
            self._page, self._cursors = None, [None]
            self.prev_btn.disabled = self.next_btn.disabled = True
            for btn in self.export_buttons.values():
                btn.disabled = True
            return
        self.message.value = ""
        for btn in self.export_buttons.values():
            btn.disabled = False
        if self.figure is not None:
            self._draw(self.figure(self.dash.chart_frame(self.engine, self.view, f)))
        self.first_page()
        # the figures come last: once they show the new filters, chart and table already do
        self.cards.value = summary_html(self.dash.summary(self.engine, self.view, f))

    def _draw(self, new) -> None:
        """Show a new chart. The first one is displayed; later ones replace its traces and layout in place, so
        the chart keeps its on-screen size (a freshly displayed plot in a re-filled output would not)."""
        if self._fig is None:
            if new is None:
                return
            from IPython.display import display

            self._fig = new
            with self.chart:
                display(new)
            return
        self._fig.data = ()
        with self._fig.batch_update():
            if new is None:
                self._fig.layout.title.text = "No data for these filters"
                return
            self._fig.update_layout(new.layout.to_plotly_json())
            for trace in new.data:
                self._fig.add_trace(trace)

    def _show(self, after) -> None:
        self._page = self.dash.page(self.engine, self.view, self.filters(), after=after, limit=self.page_size.value)
        n = len(self._page.rows)
        first = (len(self._cursors) - 1) * self.page_size.value + 1
        self.status.value = (
            f'<span class="pi-status">page {len(self._cursors)} · rows {first if n else 0}–'
            f"{first + n - 1 if n else 0}</span>"
        )
        self.table.value = frame_html(self._page.rows, f"pi-table pi-table-{self.view}")
        self.prev_btn.disabled = len(self._cursors) <= 1
        self.next_btn.disabled = not self._page.has_more

    def first_page(self) -> None:
        """Page 1 of the current filters."""
        self._cursors = [None]
        self._show(None)

    def next_page(self) -> None:
        """The page after the current one (keyset cursor from the database)."""
        if self._page is None or not self._page.has_more:
            return
        self._cursors.append(self._page.next_cursor)
        self._show(self._page.next_cursor)

    def prev_page(self) -> None:
        """The page before (re-read from its stored cursor)."""
        if len(self._cursors) <= 1:
            return
        self._cursors.pop()
        self._show(self._cursors[-1])

    # exports ---------------------------------------------------------------------------------

    def filename(self, ext: str) -> str:
        """e.g. prices_2026-07-01_2026-09-30.csv"""
        f = self.filters()
        span = "_".join(d.isoformat() for d in (f.start, f.end) if isinstance(d, date))
        return f"{self.view}{'_' + span if span else ''}.{ext}"

    def export_bytes(self, kind: str) -> tuple[bytes, str, str]:
        """(content, filename, mime) of the current view as csv | xlsx | pdf."""
        f = self.filters()
        if kind == "csv":
            frames = self.dash.export_frames(self.engine, self.view, f)
            return self.dash.to_csv(next(iter(frames.values()))), self.filename("csv"), "text/csv"
        if kind == "xlsx":
            frames = self.dash.export_frames(self.engine, self.view, f)
            return (
                self.dash.to_excel(frames),
                self.filename("xlsx"),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        if kind == "pdf":
            return (
                self.dash.to_pdf(self.dash.report_html(self.engine, self.view, f)),
                self.filename("pdf"),
                "application/pdf",
            )
        raise ValueError(f"export kind {kind!r}: csv, xlsx or pdf")

    def export(self, kind: str) -> None:
        """Build one export of the current view and offer it as a download link."""
        from priceintel import PriceIntelError

        btn = self.export_buttons[kind]
        btn.disabled = True
        try:
            data, name, mime = self.export_bytes(kind)
            self.downloads.value = download_link(data, name, mime)
        except (PriceIntelError, ValueError, RuntimeError) as exc:  # too many rows, Chromium failed: say why
            self.downloads.value = f'<div class="pi-msg-err">{html.escape(str(exc))}</div>'
        finally:
            btn.disabled = False


# --- charts of the dashboard views -------------------------------------------------------------

SERIES_COLORS = {
    "ours": "#111111",
    "amazon": "#ff9900",
    "walmart": "#0071ce",
    "target": "#cc0000",
    "critical": "#cc0000",
    "warning": "#e6a100",
    "info": "#0071ce",
}


def _layout(fig, title: str, y_title: str) -> None:
    """Compact, phone-friendly layout: legend below, small margins, width follows the box."""
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=340,
        autosize=True,
        margin={"l": 45, "r": 10, "t": 40, "b": 30},
        yaxis_title=y_title,
        legend={"orientation": "h", "y": -0.15},
        template="plotly_white",
    )


def responsive(fig):
    """A plotly FigureWidget that fills its box and follows window resizes (phone <-> desktop)."""
    fig._config = {**(fig._config or {}), "responsive": True, "displaylogo": False}
    return fig


#: one day on a Plotly date axis (milliseconds)
DAY_MS = 86_400_000


def _day_axis(fig, days: pd.Series) -> None:
    """A date x axis of whole days. With a single day Plotly would zoom to milliseconds ("23:59:59.9996"): show
    that day between its neighbours instead. Every setting is explicit, so a chart updated in place (see
    DashboardPanel._draw) drops the single-day range when the next filters span more days."""
    distinct = pd.to_datetime(pd.Series(days)).dropna().dt.normalize().unique()
    if len(distinct) == 1:
        day = pd.Timestamp(distinct[0])
        fig.update_xaxes(
            type="date",
            autorange=False,
            tickmode="linear",
            tick0=day.strftime("%Y-%m-%d"),
            dtick=DAY_MS,
            tickformat="%b %d, %Y",
            range=[
                (day - pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
                (day + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
            ],
        )
    else:
        fig.update_xaxes(type="date", autorange=True, tickmode="auto", tickformat="")


def view_figure(view: str, df: pd.DataFrame):
    """The plotly chart of a dashboard view from dashboard.chart_frame (None when there is nothing to draw)."""
    import plotly.graph_objects as go

    if df is None or df.empty:
        return None
    fig = responsive(go.FigureWidget())
    if view in ("prices", "forecasts"):
        ycol = "mean_price" if view == "prices" else "value"
        per_listing = view == "forecasts" and not df["series"].isin(list(SERIES_COLORS)).all()
        for series, part in df.groupby("series", sort=True):
            x = pd.to_datetime(part["ds"]).dt.strftime("%Y-%m-%d").tolist()
            color = SERIES_COLORS.get(series)
            if view == "forecasts":
                fig.add_scatter(
                    x=x + x[::-1],
                    y=part["hi_80"].tolist() + part["lo_80"].tolist()[::-1],
                    fill="toself",
                    mode="lines",
                    line={"width": 0},
                    opacity=0.2,
                    showlegend=False,
                    hoverinfo="skip",
                    fillcolor=color,
                    name=f"{series} 80%",
                )
            fig.add_scatter(
                x=x,
                y=part[ycol],
                name=str(series),
                mode="lines" if len(x) > 1 else "lines+markers",
                line={
                    "color": color,
                    "width": 3 if series == "ours" else 1.5,
                    "shape": "hv" if view == "prices" else "linear",
                },
            )
        if view == "prices":
            _layout(fig, "Mean price per day (ours in black)", "price")
        else:
            _layout(
                fig,
                "Forecast per listing (80% band)"
                if per_listing
                else "Mean forecast change vs last price, per retailer (80% band)",
                "price" if per_listing else "change %",
            )
        _day_axis(fig, df["ds"])
    elif view == "elasticity":
        fig.add_bar(
            x=df["category"],
            y=df["mean_elasticity"],
            name="mean elasticity",
            marker_color="#1f6feb",
            customdata=df[["n_products", "mean_change_pct"]].to_numpy(),
            hovertemplate="%{x}: %{y:.2f} (%{customdata[0]} products, "
            "recommended change %{customdata[1]:.1f}%)<extra></extra>",
        )
        _layout(fig, "Mean own-price elasticity per category", "elasticity")
    else:
        for series, part in df.groupby("series", sort=True):
            fig.add_bar(
                x=pd.to_datetime(part["ds"]).dt.strftime("%Y-%m-%d").tolist(),
                y=part["n"],
                name=str(series),
                marker_color=SERIES_COLORS.get(series),
                width=0.8 * DAY_MS,
            )  # a day wide, even alone
        _layout(fig, "Alerts per day by severity", "alerts")
        fig.update_layout(barmode="stack")
        _day_axis(fig, df["ds"])
    return fig


def dashboard_panel(engine, view: str, title: str) -> DashboardPanel:
    """The DashboardPanel of one view with its chart."""
    return DashboardPanel(engine, view, title, figure=lambda df: view_figure(view, df))


#: Plotly draws a chart that is created before the page is laid out at its default 700 px; "responsive" charts
#: re-fit on a window resize, so the page sends two (an image that fails to load runs its onerror handler:
#: the only way an HTML widget can run a line of script)
REFIT_CHARTS = (
    '<img src="data:," alt="" style="display:none" onerror="[600, 2500].forEach('
    "t => setTimeout(() => window.dispatchEvent(new Event('resize')), t))\">"
)


def nav_html(title: str = "") -> str:
    """Top bar of every app: back to the landing page, sign out (relative links: any base URL works)."""
    return (
        f'<div class="pi-topbar pi-nav"><a href="index.ipynb" class="pi-home">← All apps</a>'
        f'<span>{html.escape(title)}</span><a class="pi-logout" href="../../logout">Sign out</a></div>' + REFIT_CHARTS
    )


def app_page(
    engine, view: str, title: str, detail: list | None = None, css: str = "", panel: DashboardPanel | None = None
):
    """One app: navigation, the dashboard block of `view` (filters, figures, chart, pages, exports), then the
    app's own detail widgets under a divider."""
    import ipywidgets as w

    panel = panel or dashboard_panel(engine, view, title)
    parts = [w.HTML(APP_CSS + css + nav_html()), panel.widget]
    if detail:
        parts += [w.HTML('<hr style="margin: 24px 0 8px">'), *detail]
    return w.VBox(parts, layout=w.Layout(width="100%")).add_class("pi-app")

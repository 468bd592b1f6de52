"""Shared pieces of the stakeholder apps: filter bar, paginated table, summary cards, chart and export buttons
(`DashboardPanel`; every export is counted in the tenant's usage, `meter_export`), navigation and the app page, all
driven by priceintel.apps.views (database-side filters and keyset pages). The landing page is `apps.landing`, the
views' plotly charts `apps.charts`.

Layout: one CSS block (APP_CSS) with a phone breakpoint; filters wrap and stack below 600 px, tables
scroll sideways inside their own box, so the page itself never scrolls sideways.
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

from priceintel.apps.charts import view_figure

if TYPE_CHECKING:
    from priceintel.apps.queries import Page

log = logging.getLogger(__name__)

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


def meter_export(engine) -> bool:
    """Count one export of the kernel's tenant today in `tenant_usage` (`db.usage`); True when recorded. A failure
    is logged and swallowed: metering never breaks a download."""
    from priceintel.db import usage

    try:
        usage.record(engine, exports=1)
    except Exception:  # the database refused or is gone: the user still gets the file
        log.warning("could not record an export in tenant_usage", exc_info=True)
        return False
    return True


def download_link(data: bytes, filename: str, mime: str) -> str:
    """An <a download> with the file in a data: URI (the browser saves it; nothing stays on the server)."""
    b64 = base64.b64encode(data).decode("ascii")
    size = f"{len(data) / 1024:,.0f} kB" if len(data) >= 1024 else f"{len(data)} B"
    return (
        f'<a class="pi-download" download="{html.escape(filename)}" href="data:{mime};base64,{b64}">'
        f"⬇ {html.escape(filename)} ({size})</a>"
    )


# --- the dashboard block -----------------------------------------------------------------------


def _pick_many(w: Any, options: list, label: str, style: dict):
    """A multi-select filter (`pi-filter-<label>`), 2-4 rows high."""
    return w.SelectMultiple(
        options=options,
        description=label,
        rows=min(4, max(2, len(options))),
        style=style,
        layout=w.Layout(width="auto"),
    ).add_class(f"pi-filter-{label.lower()}")


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
        self._filter_widgets(w)
        self._page_widgets(w, page_size)
        self._cursors: list = [None]  # cursor of each page shown so far (Prev pops)
        self._page: Page | None = None
        self._sku: str | None = None
        self._hold = False
        self._fig = None
        self._connect()
        self.widget = self._layout(w)
        self.refresh()

    def _filter_widgets(self, w) -> None:
        """Date range, retailers, categories, product and reset; the dates start as this view's own span."""
        opts = self.options
        lab = {"description_width": "initial"}
        # the date range starts as this view's own span (prices: observed days, forecasts: forecast days, ...)
        lo, hi = self.span = self._view_span()
        self.start = w.DatePicker(description="From", value=lo, style=lab, layout=w.Layout(width="auto")).add_class(
            "pi-filter-start"
        )
        self.end = w.DatePicker(description="To", value=hi, style=lab, layout=w.Layout(width="auto")).add_class(
            "pi-filter-end"
        )
        self.retailers = _pick_many(w, list(opts.get("retailers", [])), "Retailers", lab)
        self.categories = _pick_many(w, list(opts.get("categories", [])), "Categories", lab)
        self.product = w.Combobox(
            options=list(self._products),
            placeholder="all (type a SKU or name)",
            description="Product",
            ensure_option=False,
            style=lab,
            layout=w.Layout(width="auto", min_width="260px"),
        ).add_class("pi-filter-product")
        self.reset_btn = w.Button(description="Reset filters", layout=w.Layout(width="auto")).add_class("pi-reset")

    def _page_widgets(self, w, page_size: int) -> None:
        """Page size, previous/next, status, messages, summary cards, chart, table and export buttons."""
        lab = {"description_width": "initial"}
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

    def _connect(self) -> None:
        """Every control's handler."""
        for wid in (self.start, self.end, self.retailers, self.categories):
            wid.observe(lambda _: self.refresh(), names="value")
        self.product.observe(self._product_typed, names="value")
        self.page_size.observe(lambda _: self.first_page(), names="value")
        self.prev_btn.on_click(lambda _: self.prev_page())
        self.next_btn.on_click(lambda _: self.next_page())
        self.reset_btn.on_click(lambda _: self.reset())
        for kind, btn in self.export_buttons.items():
            btn.on_click(lambda _, k=kind: self.export(k))

    def _layout(self, w):
        """The dashboard block: title, filters, message, cards, chart, pager, table, export buttons, downloads."""
        return (
            w.VBox(
                [
                    w.HTML(f"<h2>{html.escape(self.title)}</h2>"),
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
            .add_class(f"pi-view-{self.view}")
        )

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
        return view_span(self.engine, self.view)

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
            meter_export(self.engine)  # the tenant's exports of the day (the usage page, /v1/usage)
        except (PriceIntelError, ValueError, RuntimeError) as exc:  # too many rows, Chromium failed: say why
            self.downloads.value = f'<div class="pi-msg-err">{html.escape(str(exc))}</div>'
        finally:
            btn.disabled = False


def view_span(engine, view: str) -> tuple[date | None, date | None]:
    """First and last day of `view`'s data now: where an app's date filter starts."""
    from priceintel.apps import views as dashboard

    opts = dashboard.filter_options(engine)
    whole = dashboard.summary(engine, view, dashboard.Filters())
    lo = _as_date(whole.get("first_day") or whole.get("window_start")) or opts.get("min_date")
    hi = _as_date(whole.get("last_day") or whole.get("window_end")) or opts.get("max_date")
    return lo, hi


def first_paint(view: str, title: str, engine=None, page_size: int = DashboardPanel.PAGE_SIZES[0]) -> None:
    """The first page of `view`, at once, as the page's first paint (`show_preview`): the title and the rows the
    app's table starts with (a table of class `pi-first-paint-table`, so selectors of the live table never count it).

    An app notebook calls it in a cell of its own before the app: Voila sends each cell's output as soon as that
    cell has run, so the rows arrive before the app has built its widgets. The queries are the app's own first
    ones, so the app finds them in the views' cache."""
    from priceintel.apps import views as dashboard
    from priceintel.db.engine import get_engine

    engine = engine or get_engine()
    lo, hi = view_span(engine, view)
    page = dashboard.page(engine, view, dashboard.Filters(start=lo, end=hi), limit=page_size)
    n = len(page.rows)
    status = f'<span class="pi-status">page 1 · rows {1 if n else 0}–{n}</span>'
    table = frame_html(page.rows, "pi-table pi-first-paint-table")
    show_preview(f"{nav_html()}<h2>{html.escape(title)}</h2>{status}{table}")


def dashboard_panel(engine, view: str, title: str) -> DashboardPanel:
    """The DashboardPanel of one view with its chart."""
    return DashboardPanel(engine, view, title, figure=lambda df: view_figure(view, df))


#: Plotly draws a chart that is created before the page is laid out at its default 700 px; "responsive" charts
#: re-fit on a window resize, so the page sends two (an image that fails to load runs its onerror handler:
#: the only way an HTML widget can run a line of script). A chart still redrawing (a listing just switched)
#: can miss a real resize (a phone turned, a window narrowed), so each real resize is followed by a second one
#: 0.7 s later (seen in CI: a forecast chart kept its desktop width on a phone).
REFIT_CHARTS = (
    '<img src="data:," alt="" style="display:none" onerror="'
    "if (!window.__piRefit) { window.__piRefit = 1; var k; window.addEventListener('resize', function (e) {"
    " if (e.isTrusted) { clearTimeout(k); k = setTimeout(function () {"
    " window.dispatchEvent(new Event('resize')); }, 700); } }); }"
    " [600, 2500].forEach(t => setTimeout(() => window.dispatchEvent(new Event('resize')), t))\">"
)


#: the sign-out button: a POST to /logout with the XSRF token, which the form copies from the `_xsrf` cookie
#: when sent (the kernel that renders this widget never sees the token; an inline handler is the one script an
#: HTML widget runs). Without that cookie it opens /logout, which asks to confirm with a server-made form.
SIGNOUT_FORM = (
    '<form class="pi-signout" method="post" action="../../logout" style="margin: 0" '
    'onsubmit="var m = document.cookie.match(/(?:^|;\\s*)_xsrf=([^;]+)/); '
    'if (!m) { window.location.href = this.action; return false; } this._xsrf.value = m[1];">'
    '<input type="hidden" name="_xsrf" value="">'
    '<button type="submit" class="pi-logout" style="background: none; border: 0; padding: 0; font: inherit; '
    'color: #1f6feb; cursor: pointer">Sign out</button></form>'
)


#: in the apps' widgets only: once they render, the first paint (`show_preview`) goes, from the page (the one line
#: of script an HTML widget can run: an image that fails to load runs its onerror handler)
PREVIEW_DONE = (
    "<style>.pi-first-paint { display: none; }</style>"
    '<img src="data:," alt="" style="display:none" '
    "onerror=\"document.querySelectorAll('#pi-first-paint, .pi-first-paint').forEach(function (e) { e.remove(); })\">"
)
#: in every preview: where the apps' template has painted it already, Voila's own (hidden) copy removes itself when
#: drawn, so the page holds one (elsewhere, e.g. Voila's preview in JupyterLab, the copy stays: the only one)
_PREVIEW_ONCE = (
    '<img src="data:," alt="" style="display:none" '
    "onerror=\"if (document.getElementById('pi-first-paint')) document.querySelectorAll("
    "'#rendered_cells .pi-first-paint').forEach(function (e) { e.remove(); })\">"
)


def preview_html(body: str) -> str:
    """`body` as a first-paint block: the apps' CSS, class `pi-first-paint` (the apps' Voila template writes such an
    output into the page's HTML; `jupyter/voila/templates/priceintel/index.html.j2`)."""
    return f'<div class="pi-first-paint">{_PREVIEW_ONCE}{APP_CSS}<div class="pi-app">{body}</div></div>'


def show_preview(body: str) -> bool:
    """Display `preview_html(body)` as a plain HTML output of the running cell.

    Voila draws outputs with JavaScript once its scripts have loaded, and the widgets need the kernel's socket
    and their state after that: seconds after the page arrived. The apps' Voila template writes a preview into the
    page's HTML itself, so the viewer sees the data as soon as the page arrives; the app's widgets remove it when
    they appear (`PREVIEW_DONE` is part of their first HTML). Outside a kernel (a test calling the app function)
    nothing is displayed; False then."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    if get_ipython() is None:
        return False
    from IPython.display import HTML, display

    display(HTML(preview_html(body)))
    return True


def nav_html(title: str = "") -> str:
    """Top bar of every app: back to the landing page, sign out (relative links: any base URL works)."""
    return (
        f'<div class="pi-topbar pi-nav"><a href="index.ipynb" class="pi-home">← All apps</a>'
        f"<span>{html.escape(title)}</span>{SIGNOUT_FORM}</div>" + REFIT_CHARTS
    )


def refreshing_page(name: str, title: str, heading: str, render: Callable[[], str], css: str = ""):
    """A one-block app page: navigation, a heading, HTML from `render()` (class `pi-<name>-body`) and a Refresh
    button (`pi-<name>-refresh`) that renders it again (the page's checks, e.g. of the user's role, run again)."""
    import ipywidgets as w

    body = w.HTML(render()).add_class(f"pi-{name}-body")
    refresh = w.Button(description="Refresh", icon="refresh", layout=w.Layout(width="auto"))
    refresh.add_class(f"pi-{name}-refresh")

    def _refresh(_: Any) -> None:
        body.value = render()

    refresh.on_click(_refresh)
    parts = [w.HTML(APP_CSS + css + nav_html(title)), w.HTML(f"<h2>{html.escape(heading)}</h2>"), body,
             w.Box([refresh]).add_class("pi-row")]  # fmt: skip
    return w.VBox(parts, layout=w.Layout(width="100%")).add_class("pi-app").add_class(f"pi-{name}")


def app_page(
    engine, view: str, title: str, detail: list | None = None, css: str = "", panel: DashboardPanel | None = None
):
    """One app: navigation, the dashboard block of `view` (filters, figures, chart, pages, exports), then the
    app's own detail widgets under a divider."""
    import ipywidgets as w

    panel = panel or dashboard_panel(engine, view, title)
    parts = [w.HTML(PREVIEW_DONE + APP_CSS + css + nav_html()), panel.widget]
    if detail:
        parts += [w.HTML('<hr style="margin: 24px 0 8px">'), *detail]
    return w.VBox(parts, layout=w.Layout(width="100%")).add_class("pi-app")

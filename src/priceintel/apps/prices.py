"""Voila apps: a widget panel plus one callback into priceintel (the notebooks in notebooks/apps call these)."""

from __future__ import annotations

import html

import pandas as pd

from priceintel.apps.charts import SERIES_COLORS, detail_layout
from priceintel.apps.widgets import PREVIEW_DONE
from priceintel.db.queries import MATCHED

APP_CSS = """<style>
table.latest-prices { border-collapse: collapse; width: 100%; max-width: 720px; font-size: 14px; }
table.latest-prices th, table.latest-prices td { padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; }
table.latest-prices td:nth-child(3), table.latest-prices td:nth-child(6) { text-align: right; }
</style>"""


def product_options(engine) -> list[tuple[str, str]]:
    """(label, sku) for every product that has at least one matched listing."""
    sql = f"""
        select p.sku, p.name, p.brand
        from dim_product p
        where exists (select 1 from product_match m where m.product_id = p.product_id
                      and m.status {MATCHED})
        order by p.sku
    """
    df = pd.read_sql(sql, engine)
    return [(f"{r.sku} · {r.brand} {r.name}", r.sku) for r in df.itertuples()]


def price_history(engine, sku: str) -> pd.DataFrame:
    """Daily prices of one product: each matched competitor listing plus our own price ("ours")."""
    from priceintel.db import queries

    return queries.price_history(engine, sku).drop(columns="item_id")


def latest_table(history: pd.DataFrame) -> pd.DataFrame:
    """Latest observation per retailer with the gap to our price."""
    if history.empty:
        return pd.DataFrame(columns=["retailer", "date", "price", "in_stock", "promo", "vs_ours_pct"])
    last = history.sort_values("ds").groupby("retailer").tail(1).set_index("retailer")
    ours = last["price"].get("ours")
    out = last.reset_index()[["retailer", "ds", "price", "in_stock", "promo"]].rename(columns={"ds": "date"})
    out["date"] = out["date"].dt.date
    out["vs_ours_pct"] = ((out["price"] / ours - 1) * 100).round(1) if ours else None
    return out.sort_values("price", na_position="last").reset_index(drop=True)


def table_html(df: pd.DataFrame, css_class: str) -> str:
    """A small, escaped HTML table (no index) with a CSS class for styling and tests."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for v in rec:
            if isinstance(v, float):
                v = "" if pd.isna(v) else f"{v:,.2f}"
            cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def history_figure(history: pd.DataFrame, title: str = ""):
    """Plotly step chart: one line per retailer, our price in black."""
    import plotly.graph_objects as go

    fig = go.FigureWidget()
    fig._config = {"responsive": True, "displaylogo": False}  # fills its box on a phone too
    for retailer, part in history.groupby("retailer"):
        fig.add_scatter(
            x=part["ds"].dt.strftime("%Y-%m-%d").tolist(),
            y=part["price"],
            name=retailer,
            mode="lines",
            line={"shape": "hv", "color": SERIES_COLORS.get(retailer), "width": 3 if retailer == "ours" else 1.5},
        )
    detail_layout(fig, title)
    return fig


def price_monitor(engine=None):
    """The price-monitor app: the filtered, paginated, exportable prices view, then one product's
    history chart and latest-price table."""
    import ipywidgets as w

    from priceintel.db.engine import get_engine

    engine = engine or get_engine()
    options = product_options(engine)
    if not options:
        return w.HTML(
            PREVIEW_DONE + "<p class='empty'>No matched products in the database yet: run <code>make demo</code>.</p>"
        )
    picker = w.Dropdown(
        options=options, description="Product", layout=w.Layout(width="95%", max_width="640px")
    ).add_class("pm-product")
    chart = w.Output()
    table = w.HTML()

    def show(sku: str) -> None:
        hist = price_history(engine, sku)
        label = dict((v, k) for k, v in options)[sku]
        fig = history_figure(hist, title=label)
        chart.clear_output(wait=True)
        with chart:
            from IPython.display import display

            display(fig)
        table.value = table_html(latest_table(hist), "latest-prices")

    picker.observe(lambda change: show(change["new"]), names="value")
    show(picker.value)
    from priceintel.apps.widgets import app_page

    detail = w.VBox(
        [w.HTML("<h2>One product: daily prices</h2>"), picker, chart, w.HTML("<h3>Latest prices</h3>"), table],
        layout=w.Layout(width="100%"),
    ).add_class("pm-detail")
    return app_page(engine, "prices", "Competitor prices", [detail], css=APP_CSS)

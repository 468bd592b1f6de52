"""The forecasts app (notebooks/apps/forecasts.ipynb): product + retailer picker, history with the
stored forecast and its 80/95% bands, the series' backtest table and every model compared."""

from __future__ import annotations

import html

import pandas as pd

from priceintel.apps.charts import detail_layout
from priceintel.apps.prices import table_html
from priceintel.apps.widgets import PREVIEW_DONE
from priceintel.db.queries import MATCHED
from priceintel.forecast import store as forecast_store

APP_CSS = """<style>
table.backtest, table.models { border-collapse: collapse; width: 100%; max-width: 860px; font-size: 13px; }
table.backtest th, table.backtest td, table.models th, table.models td {
  padding: 3px 6px; border-bottom: 1px solid #ddd; text-align: right; }
table.backtest td:first-child, table.models td:first-child { text-align: left; }
.fc-note { font-size: 14px; margin: 4px 0; }
</style>"""

SHOW = ["model", "horizon", "n", "mae", "rmse", "smape", "mase", "coverage_80", "coverage_95", "winkler_95"]


def listing_options(engine, run_id: int) -> pd.DataFrame:
    """Forecast series of a run joined to their product and retailer: sku, label, retailer, unique_id."""
    sql = f"""
        select p.sku, p.brand, p.name, r.retailer, s.unique_id
        from forecast_series s
        join dim_retailer r on s.unique_id like r.retailer || ':%%'
        join dim_listing l on l.retailer_id = r.retailer_id and r.retailer || ':' || l.item_id = s.unique_id
        join product_match m on m.listing_id = l.listing_id and m.status {MATCHED}
        join dim_product p on p.product_id = m.product_id
        where s.run_id = %(r)s
        order by p.sku, r.retailer
    """
    df = pd.read_sql(sql, engine, params={"r": run_id})
    df["label"] = df["sku"] + " · " + df["brand"].fillna("") + " " + df["name"].fillna("")
    return df


def listing_history(engine, unique_id: str) -> pd.DataFrame:
    """Daily observed prices of one listing (`retailer:item_id`)."""
    sql = """
        select d.date as ds, f.price::float as y, f.promo
        from fact_price f
        join dim_listing l using (listing_id)
        join dim_retailer r using (retailer_id)
        join dim_date d using (date_key)
        where r.retailer || ':' || l.item_id = %(u)s
        order by 1
    """
    df = pd.read_sql(sql, engine, params={"u": unique_id})
    df["ds"] = pd.to_datetime(df["ds"])
    return df


def series_view(engine, run_id: int, unique_id: str) -> dict:
    """Everything the app shows for one series: history, forecasts, backtest table, models compared."""
    series = forecast_store.read_series(engine, run_id).set_index("unique_id")
    if unique_id not in series.index:
        raise forecast_store.ForecastError(f"series {unique_id!r} is not in forecast run {run_id}")
    met = forecast_store.read_metrics(engine, run_id, unique_id)
    overall = forecast_store.read_metrics(engine, run_id, forecast_store.OVERALL)
    h = int(met["horizon"].max()) if len(met) else None
    return {
        "history": listing_history(engine, unique_id),
        "forecast": forecast_store.read_forecasts(engine, run_id, unique_id),
        "chosen_model": series.loc[unique_id, "chosen_model"],
        "p_change": float(series.loc[unique_id, "p_change"]),
        "backtest": met[met["horizon"] == h][SHOW].reset_index(drop=True) if h else met,
        "models": overall[overall["horizon"] == overall["horizon"].max()][SHOW].reset_index(drop=True),
    }


def _line(fig, frame: pd.DataFrame, y: str, name: str, line: dict) -> None:
    """One line trace of `frame[y]` over its days."""
    fig.add_scatter(x=frame["ds"].dt.strftime("%Y-%m-%d").tolist(), y=frame[y], name=name, mode="lines", line=line)


def forecast_figure(history: pd.DataFrame, forecast: pd.DataFrame, title: str = ""):
    """Plotly chart: observed prices, the chosen forecast with 95% and 80% bands, the naive baseline."""
    import plotly.graph_objects as go

    fig = go.FigureWidget()
    fig._config = {"responsive": True, "displaylogo": False}  # fills its box on a phone too
    _line(fig, history, "y", "observed", {"shape": "hv", "color": "#111111"})
    ch = forecast[forecast["model"] == "chosen"]
    x = ch["ds"].dt.strftime("%Y-%m-%d").tolist()
    for lv, alpha in ((95, 0.15), (80, 0.3)):
        fig.add_scatter(
            x=x + x[::-1],
            y=list(ch[f"hi-{lv}"]) + list(ch[f"lo-{lv}"])[::-1],
            fill="toself",
            mode="lines",
            line={"width": 0},
            fillcolor=f"rgba(0,113,206,{alpha})",
            name=f"{lv}% interval",
            hoverinfo="skip",
        )
    _line(fig, ch, "yhat", "forecast (chosen model)", {"color": "#0071ce"})
    nv = forecast[forecast["model"] == "naive"]
    if len(nv):
        _line(fig, nv, "yhat", "naive", {"dash": "dot", "color": "#888888"})
    detail_layout(fig, title)
    return fig


def forecasts_app(engine=None, run_id: int | None = None):
    """The forecasts panel: product and retailer pickers, chart, backtest table, models compared."""
    import ipywidgets as w
    from IPython.display import display

    from priceintel.db.engine import get_engine

    engine = engine or get_engine()
    run_id = run_id or forecast_store.latest_run_id(engine)
    if run_id is None:
        return w.HTML(
            PREVIEW_DONE + "<p class='empty'>No forecast run in the database yet: run <code>make demo</code>.</p>"
        )
    opts = listing_options(engine, run_id)
    if opts.empty:
        return w.HTML(PREVIEW_DONE + f"<p class='empty'>Forecast run {run_id} has no matched listings.</p>")
    products = list(dict.fromkeys(zip(opts["label"], opts["sku"])))
    product = w.Dropdown(options=products, description="Product", layout=w.Layout(width="95%", max_width="640px"))
    retailer = w.Dropdown(options=[], description="Retailer", layout=w.Layout(width="95%", max_width="320px"))
    chart, note, backtest, models = w.Output(), w.HTML(), w.HTML(), w.HTML()
    run = forecast_store.read_run(engine, run_id)

    def show(*_):
        if retailer.value is None:
            return
        view = series_view(engine, run_id, retailer.value)
        label = dict((v, k) for k, v in products)[product.value]
        chart.clear_output(wait=True)
        with chart:
            display(forecast_figure(view["history"], view["forecast"], title=label))
        note.value = (
            f"<p class='fc-note'>Chosen model: <b>{html.escape(view['chosen_model'])}</b> "
            f"(on backtest windows before each cut-off) · P(price changes within {run['horizon']} "
            f"{html.escape(run['freq'])}): <b>{view['p_change']:.0%}</b> · run {run_id}, "
            f"code {html.escape(run['code_version'])}</p>"
        )
        backtest.value = table_html(view["backtest"], "backtest")
        models.value = table_html(view["models"], "models")

    def pick_product(*_):
        part = opts[opts["sku"] == product.value]
        retailer.options = list(zip(part["retailer"], part["unique_id"]))
        retailer.value = part["unique_id"].iloc[0]

    product.observe(pick_product, names="value")
    retailer.observe(show, names="value")
    pick_product()
    show()
    from priceintel.apps.widgets import app_page

    detail = w.VBox(
        [
            w.HTML("<h2>One listing: forecast and backtest</h2>"),
            product,
            retailer,
            note,
            chart,
            w.HTML("<h3>Backtest of this listing (held-out windows)</h3>"),
            backtest,
            w.HTML("<h3>All models compared (every series, same windows)</h3>"),
            models,
        ],
        layout=w.Layout(width="100%"),
    ).add_class("fc-detail")
    return app_page(engine, "forecasts", "Price forecasts", [detail], css=APP_CSS)
